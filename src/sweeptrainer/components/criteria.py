"""Criteria beyond torch.nn's: cross-entropy with optional class weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from sweeptrainer.config.instantiate import builds
from sweeptrainer.errors import ConfigError


@builds(nn.Module)
class CrossEntropy(nn.CrossEntropyLoss):
    """Cross-entropy; ``class_weights`` is null, ``balanced`` (inverse class frequency in
    the training split, from the dataset) or one weight per class."""

    def __init__(self, class_weights: str | Sequence[float] | None = None, dataset: Any = None):
        weight = None
        if class_weights == "balanced":
            counts = torch.tensor(dataset.class_counts(), dtype=torch.float32).clamp(min=1)
            weight = counts.sum() / (len(counts) * counts)
        elif class_weights is not None:
            if isinstance(class_weights, str):
                raise ConfigError(
                    "criterion.class_weights: expected null, 'balanced' or a list, "
                    f"got {class_weights!r}"
                )
            weight = torch.tensor(list(class_weights), dtype=torch.float32)
            if dataset is not None and len(weight) != dataset.output_dim:
                n_classes = dataset.output_dim
                raise ConfigError(
                    f"criterion.class_weights: {len(weight)} weights for {n_classes} classes"
                )
        super().__init__(weight=weight)
