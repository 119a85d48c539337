"""The user's own code: the folder their modules are imported from."""

from __future__ import annotations

import os
import sys
import sysconfig
import traceback
from pathlib import Path
from types import TracebackType


def import_from_cwd() -> None:
    """Like ``python -m``: modules in the current folder (a user's model, dataset,
    callbacks) are importable by every verb and API call that builds or checks components."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def user_frame(tb: TracebackType | None) -> str | None:
    """``file:line`` of the last frame of a traceback in the user's own code: not in
    sweeptrainer, not in an installed package or Python's library. Where an error in a
    user's model or dataset constructor really is."""
    ours = Path(__file__).resolve().parent
    installed = {Path(p).resolve() for p in {sysconfig.get_path("purelib"),
                 sysconfig.get_path("platlib"), sysconfig.get_path("stdlib")} if p}  # fmt: skip
    found = None
    for frame in traceback.extract_tb(tb):
        path = Path(frame.filename).resolve()
        if frame.filename.startswith("<") or path.is_relative_to(ours):
            continue
        if any(path.is_relative_to(folder) for folder in installed):
            continue
        found = f"{_shown(path)}:{frame.lineno}"
    return found


def _shown(path: Path) -> str:
    """A path relative to the current folder when it is under it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
