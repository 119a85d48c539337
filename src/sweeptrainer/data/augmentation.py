"""Train-only augmentations: the ``augmentation/`` config group.

An option lists per-sample ``steps`` and ``batch_steps`` (MixUp, CutMix: they take and
return ``(inputs, targets)`` of a collated batch). Runtime values (``num_classes``,
``input_shape``...) reach the step constructors that declare them, as for models.

Where per-sample steps run: a training split with an ``augmentation`` attribute (the
``Files`` dataset's) applies them itself, between its preprocessing and its transform;
any other training split is wrapped and the steps get the inputs it returns. Batch steps
run on every training batch, right after collation. Both run inside the trainer's
per-batch seeding, so they give the same result for the same seed whatever the number of
workers, and a resumed run continues bit for bit.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from torch.utils.data import Dataset

from sweeptrainer.config.instantiate import builds
from sweeptrainer.data.pipeline import Pipeline, StepError


@builds(object)
class Augmentation:
    """Per-sample ``steps`` and ``batch_steps``, each a list of ``_target_`` callables."""

    def __init__(
        self,
        steps: Sequence[Any] | None = None,
        batch_steps: Sequence[Any] | None = None,
        *,
        input_shape: Sequence[int] | None = None,
        output_dim: int | None = None,
        num_classes: int | None = None,
    ) -> None:
        runtime = {"input_shape": input_shape, "output_dim": output_dim, "num_classes": num_classes}
        runtime = {k: v for k, v in runtime.items() if v is not None}
        self.steps = Pipeline.build(steps, "augmentation.steps", **runtime)
        self.batch_steps = Pipeline.build(batch_steps, "augmentation.batch_steps", **runtime)

    def __call__(self, x: Any) -> Any:
        return self.steps(x)

    def augment_batch(self, batch: Any) -> Any:
        """``(inputs, targets, ...)`` through every batch step."""
        if not isinstance(batch, tuple | list) or len(batch) < 2:
            raise StepError("batch steps take batches of (inputs, targets, ...)")
        inputs, targets, *rest = batch
        inputs, targets = self.batch_steps.on_batch(inputs, targets)
        return (inputs, targets, *rest)

    def __repr__(self) -> str:
        return f"Augmentation({self.steps.labels}, batch={self.batch_steps.labels})"


class AugmentedSplit(Dataset):
    """A training split whose samples' input field (position 0, or the key or position
    ``dataset.batch.inputs`` names) goes through ``steps``."""

    def __init__(self, split: Any, steps: Callable[[Any], Any], field: str | int = 0) -> None:
        self.split, self.steps, self.field = split, steps, field
        self.collate = getattr(split, "collate", None)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> Any:
        sample = self.split[i]
        if isinstance(sample, dict):
            return {**sample, self.field: self.steps(sample[self.field])}
        fields = list(sample)
        # a tuple or list sample: the field is a position
        fields[self.field] = self.steps(fields[self.field])  # type: ignore[index]
        return type(sample)(fields) if isinstance(sample, tuple | list) else fields


def augment_split(split: Any, augmentation: Any, field: str | int = 0) -> Any:
    """The training split with ``augmentation``'s per-sample steps in place (see above)."""
    if len(getattr(augmentation, "steps", ())) == 0 and isinstance(augmentation, Augmentation):
        return split  # batch steps only
    if hasattr(split, "augmentation"):
        augmented = copy.copy(split)  # the dataset's own split stays as it is (for outputs)
        augmented.augmentation = augmentation
        return augmented
    return AugmentedSplit(split, augmentation, field)


def batch_steps(augmentation: Any) -> Callable[[Any], Any] | None:
    """The function applied to each collated training batch, or None."""
    if augmentation is None:
        return None
    if isinstance(augmentation, Augmentation):
        return augmentation.augment_batch if len(augmentation.batch_steps) else None
    return getattr(augmentation, "augment_batch", None)
