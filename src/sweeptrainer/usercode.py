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


# torch's companion libraries: each release is built for one torch release
COMPANIONS = {"torchvision": lambda minor, patch: f"0.{minor + 15}.{patch}",
              "torchaudio": lambda minor, patch: f"2.{minor}.{patch}"}  # fmt: skip


def companion_mismatch(err: BaseException) -> str | None:
    """What to say when ``err`` came from importing torchvision or torchaudio built for
    another torch (``operator torchvision::nms does not exist``, an undefined symbol): the
    two versions and the release that matches this torch. None for any other error."""
    import importlib.metadata
    import re

    frames = traceback.extract_tb(err.__traceback__)
    for name, matching in COMPANIONS.items():
        inside = any(f"{name}/" in f.filename.replace("\\", "/") for f in frames)
        if not (inside or f"{name}::" in str(err)) or isinstance(err, ModuleNotFoundError):
            continue
        try:
            installed = importlib.metadata.version(name)
            torch_version = importlib.metadata.version("torch")
        except importlib.metadata.PackageNotFoundError:
            return None
        release = re.match(r"2\.(\d+)\.(\d+)", torch_version)
        wanted = matching(int(release[1]), int(release[2])) if release else None
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        fix = f"; pip install '{name}=={wanted}'" if wanted else ""
        if name == "torchaudio" and wanted:  # its releases stopped at some torch releases
            fix += " if that release exists (the packaged audio transforms need no torchaudio)"
        return (
            f"{name} failed to import ({type(err).__name__}: {first}): torch {torch_version} "
            f"and {name} {installed} do not match{fix} (from the same index as torch: "
            "docs/data.md)"
        )
    return None
