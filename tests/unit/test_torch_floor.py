"""pyproject.toml's torch floor is at least the release of every torch API the code calls
that is newer than torch 2.0 (issue 33): a user with the floor must not fail at run time."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# APIs the code uses, and the torch release that brought them
NEWER_APIS = {"torch.amp.GradScaler(": (2, 3)}


def test_the_torch_floor_covers_the_apis_the_code_uses():
    text = (ROOT / "pyproject.toml").read_text()
    floor = re.search(r'"torch>=(\d+)\.(\d+)', text)
    assert floor, "pyproject.toml names no torch floor"
    source = "\n".join(p.read_text() for p in (ROOT / "src/sweeptrainer").rglob("*.py"))
    needed = max((v for api, v in NEWER_APIS.items() if api in source), default=(2, 0))
    assert (int(floor[1]), int(floor[2])) >= needed
