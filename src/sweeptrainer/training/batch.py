"""What a batch is made of: the model's inputs, the target, and (optionally) sample ids.

A dataset's samples may be ``(inputs, target)``, longer tuples or lists, or dicts; the
default collation stacks them field by field. ``dataset.batch`` in the config says which
field is what (positions for tuples, keys for dicts)::

    batch:
      inputs: [x, mask]   # model(x=..., mask=...); a single key or position: model(value)
      target: y
      index: id           # sample ids: the index column of outputs/<split>.csv

Defaults: a tuple's position 0 is the input and 1 the target (anything after is left
alone); a dict's ``target`` key is the target, its ``index`` key (if any) the ids, and every
other key an input, passed by name. Positions go to the model positionally, keys by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch

Field = str | int


class BatchError(ValueError):
    """A batch that does not have the fields ``dataset.batch`` names."""


@dataclass(frozen=True)
class Inputs:
    """What the model is called with: ``model(*args, **kwargs)``."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def call(self, model: Any) -> Any:
        return model(*self.args, **self.kwargs)


def to_device(batch: Any, device: torch.device) -> Any:
    """Every tensor of a nested batch (tuples, lists, dicts) on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


@dataclass(frozen=True)
class BatchLayout:
    """Which fields of a batch are the inputs, the target and the sample ids."""

    inputs: Field | tuple[Field, ...] | None = None
    target: Field | None = None
    index: Field | None = None

    @classmethod
    def from_config(cls, node: Mapping[str, Any] | None) -> BatchLayout:
        node = dict(node or {})
        inputs = node.get("inputs")
        if isinstance(inputs, Sequence) and not isinstance(inputs, str):
            inputs = tuple(inputs)
        return cls(inputs, node.get("target"), node.get("index"))

    @property
    def input_field(self) -> Field:
        """The one field per-sample augmentation steps change (position 0 by default)."""
        if isinstance(self.inputs, tuple):
            if len(self.inputs) != 1:
                raise BatchError(
                    "augmentation steps change one input; dataset.batch.inputs names "
                    f"{list(self.inputs)}: name the one to augment first in a dataset of yours"
                )
            return self.inputs[0]
        return 0 if self.inputs is None else self.inputs

    @cached_property
    def plain(self) -> bool:  # read at every step: worked out once
        return self.inputs is None and self.target is None and self.index is None

    def split(self, batch: Any) -> tuple[Inputs, torch.Tensor, Any]:
        """(inputs, target, ids or None) of one batch; BatchError naming what is missing."""
        if self.plain and type(batch) is tuple and len(batch) == 2:  # the common case, fast
            return Inputs((batch[0],), {}), batch[1], None
        if isinstance(batch, Mapping):
            return self._split_mapping(batch)
        if isinstance(batch, tuple | list):
            return self._split_sequence(batch)
        raise BatchError(
            f"a batch is a {type(batch).__name__}; expected a tuple, list or dict of "
            "(inputs, target, ...)"
        )

    def _split_mapping(self, batch: Mapping[Any, Any]) -> tuple[Inputs, Any, Any]:
        keys = list(batch)
        target = self.target if self.target is not None else "target"
        index = self.index if self.index is not None else ("index" if "index" in batch else None)
        for role, key in (("target", target), ("index", index)):
            if key is not None and key not in batch:
                raise BatchError(
                    f"the batches are dicts with keys {keys}, without {key!r}; say which key "
                    f"is the {role}: dataset.batch.{role}=KEY"
                )
        if self.inputs is None:
            inputs = Inputs((), {k: v for k, v in batch.items() if k not in (target, index)})
        elif isinstance(self.inputs, tuple):
            inputs = Inputs((), {str(k): self._get(batch, k, "inputs") for k in self.inputs})
        else:
            inputs = Inputs((self._get(batch, self.inputs, "inputs"),), {})
        return inputs, batch[target], batch[index] if index is not None else None

    def _split_sequence(self, batch: Sequence[Any]) -> tuple[Inputs, Any, Any]:
        target = self.target if self.target is not None else 1
        if self.inputs is None:
            inputs = Inputs((self._get(batch, 0, "inputs"),), {})
        elif isinstance(self.inputs, tuple):
            inputs = Inputs(tuple(self._get(batch, k, "inputs") for k in self.inputs), {})
        else:
            inputs = Inputs((self._get(batch, self.inputs, "inputs"),), {})
        index = self._get(batch, self.index, "index") if self.index is not None else None
        return inputs, self._get(batch, target, "target"), index

    @staticmethod
    def _get(batch: Any, field: Field, role: str) -> Any:
        try:
            return batch[field]
        except (KeyError, IndexError, TypeError):
            what = f"keys {list(batch)}" if isinstance(batch, Mapping) else f"{len(batch)} fields"
            raise BatchError(
                f"dataset.batch.{role}: the batches have {what}, no {field!r}"
            ) from None
