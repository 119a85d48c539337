"""Collation: a list of samples -> one batch.

The default stacks (nested tuples, lists and dicts of tensors, like PyTorch's own) and,
when samples differ in shape, says so and what to do. :class:`Pad` pads the inputs of
variable-length samples (audio, spectrograms) to the longest one of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import default_collate

from sweeptrainer.config.instantiate import builds
from sweeptrainer.errors import ConfigError


def stack(samples: Sequence[Any]) -> Any:
    """PyTorch's default collation, with a readable error when shapes differ."""
    try:
        return default_collate(list(samples))
    except RuntimeError as err:
        if "equal size" not in str(err) and "same size" not in str(err):
            raise
        inputs = [x for x in map(_inputs, samples) if x is not None]
        shapes = sorted({tuple(x.shape) for x in inputs})
        raise ValueError(
            f"the samples of a batch differ in shape ({', '.join(map(str, shapes[:4]))}"
            f"{' ...' if len(shapes) > 4 else ''}); give them one shape with a transform "
            "(e.g. sweeptrainer.data.transforms.FixedLength or Resize), or pad them per batch "
            "with dataset.batch.collate: {_target_: sweeptrainer.data.collate.Pad}; images "
            "with different channel counts (grey, RGB, RGBA, palette) take one mode with "
            "dataset.image_mode: RGB"
        ) from None


def _inputs(sample: Any) -> torch.Tensor | None:
    first = sample[0] if isinstance(sample, tuple | list) and sample else sample
    return first if isinstance(first, torch.Tensor) else None


@builds(object)
class Pad:
    """Pad every sample's inputs (the first element) along ``axis`` to the longest of the
    batch with ``value``, then stack; the rest of each sample is collated as usual."""

    def __init__(self, axis: int = -1, value: float = 0.0) -> None:
        self.axis, self.value = axis, value

    def __call__(self, samples: Sequence[Any]) -> Any:
        inputs = [s[0] for s in samples]
        longest = max(x.shape[self.axis] for x in inputs)
        padded = []
        for x in inputs:
            missing = longest - x.shape[self.axis]
            if missing:
                axis = self.axis % x.ndim
                spec = [0, 0] * (x.ndim - 1 - axis) + [0, missing]
                x = F.pad(x, spec, value=self.value)
            padded.append(x)
        rest = stack([tuple(s[1:]) for s in samples])
        return (torch.stack(padded), *rest)

    def __repr__(self) -> str:
        return f"Pad(axis={self.axis}, value={self.value})"


def build_collate(node: Any, key: str = "dataset.batch.collate") -> Any:
    """The collate function a config names (``dataset.batch.collate``), or None."""
    if node is None:
        return None
    from omegaconf import OmegaConf

    from sweeptrainer.config.instantiate import instantiate

    collate = instantiate(OmegaConf.create(node) if isinstance(node, dict) else node, key)
    if not callable(collate):
        raise ConfigError(f"{key}: expected a callable: a list of samples -> a batch")
    return collate
