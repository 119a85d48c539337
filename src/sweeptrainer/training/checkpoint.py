"""Loading states safely, with a fallback when a state file is damaged.

States are loaded with ``weights_only=True``: a file that asks to unpickle anything
beyond tensors and plain containers is refused (it could run code), never executed.
A truncated or otherwise unreadable file is skipped with a warning: the run falls
back to the previous valid state (``best.pt`` is a complete state too) or starts over.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

from sweeptrainer.errors import UnsafeStateError
from sweeptrainer.io.run_dir import RunDir
from sweeptrainer.training.state import unpack_optimizer_state

log = logging.getLogger("sweeptrainer")

REQUIRED_KEYS = ("model", "optimizer", "scheduler", "training", "rng")


class CorruptStateError(Exception):
    """A state file that cannot be read back (truncated, garbled, incomplete)."""


def load_state_file(path: Path) -> dict[str, Any]:
    """Load one state file; UnsafeStateError or CorruptStateError when it cannot be trusted."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "GLOBAL" in str(err):
            unsupported = next((ln for ln in str(err).splitlines() if "GLOBAL" in ln), "")
            raise UnsafeStateError(
                f"{path}: refusing to load it: it contains pickled objects that are not tensors "
                f"or plain containers and could run code ({unsupported.strip()}). "
                "Delete the file if you do not trust it."
            ) from None
        raise CorruptStateError(
            f"{path}: {str(err).splitlines()[-1] if str(err) else err}"
        ) from err
    except Exception as err:
        raise CorruptStateError(f"{path}: {type(err).__name__}: {str(err)[:200]}") from err
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        raise CorruptStateError(f"{path}: not a complete training state")
    try:
        state["optimizer"] = unpack_optimizer_state(state["optimizer"])
    except ValueError as err:
        raise CorruptStateError(f"{path}: {err}") from None
    return state


def load_latest(
    run_dir: RunDir, config_hash: str | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """The newest usable state of a run (``last``, else ``best``) and its name, or (None, None).

    A state that records another config's hash (copied from another run) is not usable
    either: a warning, and the next one is tried."""
    for name in ("last", "best"):
        path = run_dir.state(name)
        if not path.is_file():
            continue
        try:
            state = load_state_file(path)
        except CorruptStateError as err:
            log.warning(f"warning: states/{name}.pt is unreadable, falling back ({err})")
            continue
        if not belongs(state, "config_hash", config_hash):
            log.warning(
                f"warning: states/{name}.pt is the state of another config (hash "
                f"{state.get('config_hash')}, this run {config_hash}): not used, falling back"
            )
            continue
        return state, name
    return None, None


def belongs(state: dict[str, Any], key: str, expected: str | None) -> bool:
    """Whether a state was saved by a run of the expected config (``key``: config_hash or
    base_hash); states from before hashes were recorded count as belonging."""
    recorded = state.get(key)
    return expected is None or recorded is None or recorded == expected


INFO_KEYS = (
    "task",
    "input_shape",
    "output_dim",
    "class_names",
    "feature_names",
    "feature_mean",
    "feature_std",
    "target_mean",
    "target_std",
    "target_names",
    "file_column",
    "image_mode",  # what image_mode: auto resolved to (a Files dataset of images)
)


def describe_dataset(dataset: Any) -> dict[str, Any]:
    """What inference needs to know about the training data (saved in every state)."""
    import numpy as np
    import torch

    info = {}
    for key in INFO_KEYS:
        value = getattr(dataset, key, None)
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value.astype(np.float32))
        elif isinstance(value, tuple):
            value = list(value)
        info[key] = value
    return info
