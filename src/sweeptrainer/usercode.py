"""The user's own code: the folder their modules are imported from."""

from __future__ import annotations

import os
import sys


def import_from_cwd() -> None:
    """Like ``python -m``: modules in the current folder (a user's model, dataset,
    callbacks) are importable by every verb and API call that builds or checks components."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
