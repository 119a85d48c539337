"""The first batch, before the run folder exists: does the data fit the model?

Two training samples (augmented, collated and batch-augmented as the trainer's loader
will) and two dev samples go through the model and the criterion; the samples a dataset
names as witnesses of different shapes are made too. Data the model cannot
take, a model whose outputs do not fit the dataset, a target the criterion cannot score:
each is an input error (exit 2) naming both sides, not a run that fails at its first step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig

from sweeptrainer.data.collate import stack
from sweeptrainer.data.files import SampleError
from sweeptrainer.data.pipeline import StepError
from sweeptrainer.errors import ConfigError
from sweeptrainer.training.batch import Inputs, to_device
from sweeptrainer.training.batch_source import SeededBatches

if TYPE_CHECKING:
    from sweeptrainer.training.builder import Components


def _first_batch(split: Any, c: Components, train: bool) -> Any:
    """Two samples of ``split``, collated (and batch-augmented for training) as the trainer's
    loader will, with the RNGs seeded and restored as there."""
    collate = c.collate or getattr(split, "collate", None) or stack
    fetch = SeededBatches(split, 0, collate, c.batch_transform if train else None)
    return fetch.__getitems__([(0, i) for i in range(min(2, len(split)))])


def check_shapes(cfg: DictConfig, c: Components, name: str) -> None:
    """The samples a dataset names as ``witnesses`` (files whose headers promise different
    shapes: :meth:`sweeptrainer.data.files.Files.witnesses`), each made as the trainer's
    loader makes it: when the default collation could not stack them, an input error naming
    two files, their shapes and the keys that give them one shape."""
    witnesses = getattr(getattr(c.dataset, name, None), "witnesses", None)
    split = c.splits[name]
    if not witnesses or c.collate or getattr(split, "collate", None) or cfg.batch_size == 1:
        return
    fetch = SeededBatches(split, 0, list)  # each sample as it is, uncollated
    shapes: dict[tuple[int, ...], int] = {}
    for i in witnesses:
        try:
            (sample,) = fetch.__getitems__([(0, i)])
        except (SampleError, StepError) as err:
            raise ConfigError(f"dataset: a {name} sample cannot be made: {err}") from None
        x = sample[0] if isinstance(sample, tuple | list) else sample
        if isinstance(x, torch.Tensor):
            shapes.setdefault(tuple(x.shape), i)
    if len(shapes) < 2:
        return
    (sa, a), (sb, b) = list(shapes.items())[:2]
    describe = getattr(c.dataset, name).describe
    channels = (
        "; their channel counts differ: dataset.mono: true averages audio channels, "
        "dataset.image_mode: RGB converts images"
        if len(sa) == len(sb) and sa[0] != sb[0]
        else ""
    )
    raise ConfigError(
        f"dataset: the {name} samples differ in shape: {describe(a)} gives {sa}, "
        f"{describe(b)} gives {sb}, and a batch stacks samples of one shape; give them "
        "one with a step of dataset.preprocess or dataset.transform (images: "
        "{_target_: sweeptrainer.data.transforms.Resize, size: N}; audio: "
        "{_target_: sweeptrainer.data.transforms.FixedLength, length: N}), or pad them per "
        "batch with dataset.batch.collate: {_target_: sweeptrainer.data.collate.Pad}"
        f"{channels}"
    )


def describe_inputs(inputs: Inputs) -> str:
    """``of shape (2, 1, 8, 8)``, or each field's shape: for error messages."""

    def shape(value: Any) -> str:
        return str(tuple(value.shape)) if hasattr(value, "shape") else type(value).__name__

    if len(inputs.args) == 1 and not inputs.kwargs:
        return f"of shape {shape(inputs.args[0])}"
    parts = [shape(a) for a in inputs.args] + [f"{k}: {shape(v)}" for k, v in inputs.kwargs.items()]
    return "(" + ", ".join(parts) + ")"


@torch.no_grad()
def check_first_batch(cfg: DictConfig, c: Components, device: torch.device) -> None:
    """Two training samples (augmented) and two dev samples through the model and the
    criterion, before the run folder exists: data that does not fit the model is an input
    error (exit 2), not a run that fails at its first step. It also sizes lazy modules
    before the optimizer sees their parameters. The RNGs are left as they were."""
    for split in ("train", "dev", "test"):
        check_shapes(cfg, c, split)
    output_dim, task = c.dataset.output_dim, c.dataset.task
    c.model.eval()
    try:
        for split in ("train", "dev"):
            try:
                batch = to_device(_first_batch(c.splits[split], c, split == "train"), device)
                inputs, y, _ = c.layout.split(batch)
            except (SampleError, ValueError, StepError) as err:
                raise ConfigError(f"dataset: a {split} batch cannot be made: {err}") from None
            try:
                out = inputs.call(c.model)
            except Exception as err:
                raise ConfigError(
                    f"model: {cfg.model._target_} cannot take a {split} batch (inputs "
                    f"{describe_inputs(inputs)}): {type(err).__name__}: {err}"
                ) from None
            shape, n = tuple(getattr(out, "shape", ())), len(y)
            if shape not in ((n, output_dim),) + (((n,),) if output_dim == 1 else ()):
                what = "classes" if task == "classification" else "outputs"
                raise ConfigError(
                    f"model: {cfg.model._target_} gives outputs of shape {shape} for {n} "
                    f"samples; the {task} dataset needs ({n}, {output_dim}) ({output_dim} "
                    f"{what}). Let the model take its size from the data: declare output_dim "
                    "(or num_classes) in its constructor, or use a wrapper such as "
                    "model=TorchVision"
                )
            try:
                c.criterion(out, y)
            except Exception as err:
                raise ConfigError(
                    f"criterion: {cfg.criterion._target_} cannot score outputs of shape {shape} "
                    f"against targets of shape {tuple(y.shape)} ({y.dtype}): "
                    f"{type(err).__name__}: {err}"
                ) from None
    finally:
        c.model.train()
