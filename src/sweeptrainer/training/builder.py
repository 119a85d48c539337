"""Build every component of a run from the composed config, dataset first.

The dataset supplies the runtime values (input shape, output size) that the model
and criterion need; the config itself is only read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from sweeptrainer.components.metrics import Metric, get_metrics
from sweeptrainer.config.instantiate import instantiate
from sweeptrainer.errors import ConfigError
from sweeptrainer.training.step import parameter_groups


@dataclass
class Components:
    """The built parts of one run, in the fixed order callbacks are dispatched."""

    dataset: Any
    model: nn.Module
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    metrics: list[Metric]
    tracking: Metric
    loggers: dict[str, Any] = field(default_factory=dict)
    callbacks: dict[str, Any] = field(default_factory=dict)

    def in_dispatch_order(self) -> list[tuple[str, object]]:
        """dataset, model, criterion, optimizer, scheduler, loggers, callbacks (YAML order)."""
        parts: list[tuple[str, object]] = [
            ("dataset", self.dataset),
            ("model", self.model),
            ("criterion", self.criterion),
            ("optimizer", self.optimizer),
            ("scheduler", self.scheduler),
        ]
        parts += [(f"loggers.{k}", v) for k, v in self.loggers.items()]
        parts += [(f"callbacks.{k}", v) for k, v in self.callbacks.items()]
        return parts


def choose_device(name: str, cuda_devices: int, job_num: int | None = None) -> str:
    """The device a run uses. ``auto``: CUDA when there is one, else CPU; with several GPUs
    visible, the jobs of a sweep take turns (job number modulo the number of GPUs), so
    parallel jobs get their own device. A launcher that sets CUDA_VISIBLE_DEVICES per job
    leaves one visible GPU, which every job then uses as cuda:0."""
    if name != "auto":
        return name
    if cuda_devices == 0:
        return "cpu"
    if cuda_devices > 1 and job_num is not None:
        return f"cuda:{job_num % cuda_devices}"
    return "cuda"


def resolve_device(
    name: str, job_num: int | None = None, local_rank: int | None = None
) -> torch.device:
    """The torch device for the ``device`` key; an unavailable CUDA device is a config error.

    Under torchrun each process takes the GPU of its local rank.
    """
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    slot = local_rank if local_rank is not None else job_num
    device = torch.device(choose_device(name, count, slot))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} asked for, but CUDA is not available here")
    return device


def _keyed(cfg: DictConfig, kind: str, **runtime: Any) -> dict[str, Any]:
    entries = cfg.get(kind) or {}
    return {
        str(name): instantiate(node, f"{kind}.{name}", None, **runtime)
        for name, node in entries.items()
        if node is not None
    }


CRITERIA_FOR = {
    "classification": ("CrossEntropyLoss", "CrossEntropy", "NLLLoss"),
    "multilabel": ("BCEWithLogitsLoss", "MultiLabelSoftMarginLoss"),
    "regression": ("MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss"),
}
SUGGESTED = {"classification": "CrossEntropy", "multilabel": "BCEWithLogits", "regression": "MSE"}


def _check_criterion(cfg: DictConfig, task: str) -> None:
    """A built-in criterion that cannot fit the dataset's task is a config error."""
    name = str(cfg.criterion.get("_target_", "")).rsplit(".", 1)[-1]
    known = {n for names in CRITERIA_FOR.values() for n in names}
    if name in known and name not in CRITERIA_FOR[task]:
        raise ConfigError(
            f"criterion: {cfg.criterion.id} does not fit the {task} dataset {cfg.dataset.id}; "
            f"use criterion={SUGGESTED[task]}"
        )


def build(
    cfg: DictConfig,
    device: torch.device,
    run_dir: Path,
    with_loggers: bool = True,
    sweep_dir: Path | None = None,
) -> Components:
    """Build dataset, model, criterion, optimizer, scheduler, loggers and callbacks.

    ``with_loggers`` is False on the processes of a distributed run other than rank 0.
    ``sweep_dir``: the folder of the ``-m`` sweep this run belongs to (None outside a sweep),
    for loggers that group a sweep's runs.
    """
    dataset = instantiate(cfg.dataset, "dataset")
    for attr in ("train", "dev", "test", "task", "input_shape", "output_dim"):
        if not hasattr(dataset, attr):
            raise ConfigError(f"dataset: {cfg.dataset._target_} has no attribute {attr!r}")
    try:
        metrics = get_metrics(list(cfg.dataset.metrics), dataset.task)
    except ValueError as err:
        raise ConfigError(f"dataset.metrics: {err}") from None
    tracking = next(m for m in metrics if m.name == cfg.dataset.tracking_metric)
    model = instantiate(
        cfg.model,
        "model",
        nn.Module,
        input_shape=tuple(dataset.input_shape),
        output_dim=dataset.output_dim,
    ).to(device)
    criterion = instantiate(cfg.criterion, "criterion", nn.Module, dataset=dataset).to(device)
    _check_criterion(cfg, dataset.task)
    # weight decay applies to weights, not to biases and normalisation layers
    optimizer = instantiate(
        cfg.optimizer, "optimizer", torch.optim.Optimizer, parameter_groups(model)
    )
    scheduler = None
    if cfg.scheduler.get("_target_") is not None:
        scheduler = instantiate(cfg.scheduler, "scheduler", None, optimizer)
    return Components(
        dataset=dataset,
        model=model,
        criterion=criterion,
        optimizer=optimizer,
        scheduler=scheduler,
        metrics=metrics,
        tracking=tracking,
        loggers=(
            _keyed(cfg, "loggers", run_dir=run_dir, sweep_dir=sweep_dir) if with_loggers else {}
        ),
        callbacks=_keyed(cfg, "callbacks", run_dir=run_dir),
    )
