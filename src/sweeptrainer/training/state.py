"""Training progress as data, saved in every state file and restored on resume.

Everything here is a plain Python value or a tensor, so a state file loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch

from sweeptrainer.io.state_saver import tensor_bytes


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


PACK_BYTES = 16 * 2**20  # optimizer states up to this size are packed when saved


def pack_optimizer_state(state: dict[str, Any], max_bytes: int = PACK_BYTES) -> dict[str, Any]:
    """An optimizer's ``state_dict()`` with its per-parameter tensors packed: one flat tensor
    per kind (Adam: ``step``, ``exp_avg``, ``exp_avg_sq``) instead of one per parameter.

    ``torch.save`` spends about 30 us of Python on every tensor it pickles, and a state is
    saved at every evaluation: the default model's Adam state went from 18 tensors to 3,
    its serialization from 0.85 to about 0.35 ms (``benches/notes.md``). A kind is packed
    when every parameter has a dense tensor of it, of one dtype and device; anything else
    stays where it was. A state over ``max_bytes`` is left as it is: packing copies it, and
    a large state's time goes into its bytes, not its tensor count.
    :func:`unpack_optimizer_state` gives torch's layout back.
    """
    per_param = state.get("state")
    if not isinstance(per_param, dict) or not per_param:
        return state
    if tensor_bytes(per_param) > max_bytes:
        return state
    ids = list(per_param)
    packed, shapes = {}, {}
    for kind, first in per_param[ids[0]].items():
        tensors = [per_param[i].get(kind) for i in ids]
        if all(
            isinstance(t, torch.Tensor)
            and t.layout is torch.strided
            and t.dtype == first.dtype
            and t.device == first.device
            for t in tensors
        ):
            packed[kind] = torch.cat([t.detach().reshape(-1) for t in tensors])
            shapes[kind] = [list(t.shape) for t in tensors]
    rest = {i: {k: v for k, v in per_param[i].items() if k not in packed} for i in ids}
    layout = json.dumps({"params": ids, "shapes": shapes})
    return {**state, "state": rest, "packed": packed, "packed_layout": layout}


def unpack_optimizer_state(saved: dict[str, Any]) -> dict[str, Any]:
    """The optimizer state in torch's layout, from a packed one (or a state as it is).

    A layout that does not fit its tensors (a damaged file) is a ValueError naming it."""
    if not isinstance(saved, dict) or "packed" not in saved:
        return saved
    try:
        layout = json.loads(saved["packed_layout"])
        ids, shapes = layout["params"], layout["shapes"]
        per_param = {i: dict(saved["state"].get(i, {})) for i in ids}
        for kind, flat in saved["packed"].items():
            sizes = [math.prod(shape) for shape in shapes[kind]]
            parts = torch.split(flat, sizes)
            if len(parts) != len(ids):
                raise ValueError(f"{len(parts)} parts for {len(ids)} parameters")
            for i, part, shape in zip(ids, parts, shapes[kind], strict=True):
                per_param[i][kind] = part.reshape(shape).clone()
    except (AttributeError, KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"the optimizer state's packed tensors do not fit its layout: {err}"
        ) from None
    unpacked = {k: v for k, v in saved.items() if k not in ("packed", "packed_layout")}
    return {**unpacked, "state": per_param}


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as tensors and plain values."""
    legacy = np.random.get_state(legacy=True)
    assert isinstance(legacy, tuple)  # legacy=True: (kind, keys, pos, has_gauss, gauss)
    kind, keys, pos, has_gauss, gauss = legacy
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
