"""Training progress as data, saved in every state file and restored on resume.

Everything here is a plain Python value or a tensor, so a state file loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import json
import random
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch


@dataclass
class TrainingState:
    """Where training stands: counters, the best result so far, the metrics rows."""

    iteration: int = 0  # completed iterations (epochs or optimizer steps)
    epoch: int = 0  # completed passes over the training data
    batch_in_epoch: int = 0  # batches of the current epoch already trained on
    best_value: float | None = None
    best_iteration: int = 0
    period_loss: float = 0.0  # summed batch losses since the last evaluation
    period_batches: int = 0
    elapsed_s: float = 0.0
    rows: list[dict[str, float]] = field(default_factory=list)
    should_stop: bool = False  # a callback asked to stop after its evaluation
    summary: dict[str, Any] = field(default_factory=dict)  # extra entries for results.yaml

    def state_dict(self) -> dict[str, Any]:
        """The fields themselves, not copies (``asdict`` copies every metrics row at every
        save); whoever keeps the result beyond the moment serializes it (``StateSaver``).

        The metrics rows go as one JSON text where they can: a state is saved at every
        evaluation, and pickling every key and value of every row one by one made each save
        of a long run cost more than the last (60 rows: about 1 ms of a 3 ms save)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        # a row holding what JSON cannot (a callback's doing) leaves the list as it is
        with contextlib.suppress(TypeError, ValueError):
            data["rows"] = json.dumps(self.rows)
        return data

    def load_state_dict(self, data: dict[str, Any]) -> None:
        for name, value in data.items():
            if name == "rows" and isinstance(value, str):
                value = json.loads(value)
            setattr(self, name, value)


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as tensors and plain values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)  # type: ignore[misc]
    version, internal, gauss_py = random.getstate()
    return {
        # through NumPy: torch.tensor of the 625 Python ints took 85 us, this 15
        "python": [version, torch.from_numpy(np.fromiter(internal, np.int64)), gauss_py],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss_py = state["python"]
    random.setstate((version, tuple(int(v) for v in internal.tolist()), gauss_py))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
