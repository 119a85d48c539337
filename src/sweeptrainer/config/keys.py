"""Values of option keys the trainer reads that the config check accepts: here, in the
config layer, so that both read them from one place.

- ``scheduler.step_frequency``: :data:`FREQUENCIES` (see :mod:`sweeptrainer.training.schedule`);
- ``dataset.batch``: its keys, checked by :func:`check_batch_config` (what they mean:
  :mod:`sweeptrainer.training.batch`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FREQUENCIES = ("batch", "iteration", "evaluation")


def check_batch_config(node: Any) -> list[str]:
    """Problems with a dataset's ``batch`` node (for the config check)."""
    if node is None:
        return []
    if not isinstance(node, Mapping):
        return [f"dataset.batch: expected a mapping (collate, inputs, target, index), got {node!r}"]
    problems: list[str] = []
    for key in node:
        if key not in ("collate", "inputs", "target", "index"):
            problems.append(
                f"dataset.batch.{key}: unknown key; expected collate, inputs, target or index"
            )
    for key in ("target", "index"):
        value = node.get(key)
        if value is not None and not isinstance(value, str | int):
            problems.append(f"dataset.batch.{key}: expected a key or a position, got {value!r}")
    return problems
