"""Build every component of a run from the composed config, dataset first.

The dataset supplies the runtime values (input shape, output size) that the model
and criterion need; the config itself is only read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from sweeptrainer.components.metrics import Metric, check_metrics, get_metrics, tracking_of
from sweeptrainer.config.instantiate import instantiate, locate, signature_of
from sweeptrainer.data.augmentation import augment_split, batch_steps
from sweeptrainer.data.collate import build_collate
from sweeptrainer.errors import ConfigError
from sweeptrainer.training.batch import BatchError, BatchLayout
from sweeptrainer.training.first_batch import check_first_batch
from sweeptrainer.training.schedule import Schedule
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
    augmentation: Any = None
    # the splits the trainer batches: the dataset's, the training one with its augmentation
    splits: dict[str, Any] = field(default_factory=dict)
    batch_transform: Callable[[Any], Any] | None = None  # batch augmentation steps (MixUp)
    layout: BatchLayout = field(default_factory=BatchLayout)  # inputs, target, ids of a batch
    collate: Callable[[Any], Any] | None = None  # dataset.batch.collate (None: the default)
    schedule: Schedule | None = None  # when the scheduler steps (set by build)

    def in_dispatch_order(self) -> list[tuple[str, object]]:
        """dataset, model, criterion, optimizer, scheduler, augmentation, loggers, callbacks
        (YAML order)."""
        parts: list[tuple[str, object]] = [
            ("dataset", self.dataset),
            ("model", self.model),
            ("criterion", self.criterion),
            ("optimizer", self.optimizer),
            ("scheduler", self.scheduler),
        ]
        if self.augmentation is not None:
            parts.append(("augmentation", self.augmentation))
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


def _weight_decay(node: DictConfig) -> float | None:
    """The weight decay the optimizer will apply: the config's, else its constructor's
    default, 0 when it takes none; None when that cannot be told (``**kwargs``)."""
    value = node.get("weight_decay")
    if value is None:
        signature = signature_of(locate(node.get("_target_"), "optimizer"))
        if signature is None:
            return None
        param = signature.parameters.get("weight_decay")
        if param is None:
            takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
            return None if takes_any else 0.0
        value = param.default
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _check_criterion(cfg: DictConfig, task: str) -> None:
    """A built-in criterion that cannot fit the dataset's task is a config error."""
    name = str(cfg.criterion.get("_target_", "")).rsplit(".", 1)[-1]
    known = {n for names in CRITERIA_FOR.values() for n in names}
    if name in known and name not in CRITERIA_FOR[task]:
        raise ConfigError(
            f"criterion: {cfg.criterion.id} does not fit the {task} dataset {cfg.dataset.id}; "
            f"use criterion={SUGGESTED[task]}"
        )


def model_runtime(input_shape: Sequence[int], output_dim: int) -> dict[str, Any]:
    """The runtime values a model constructor gets, under each name it may declare:
    ``input_shape`` (or ``in_channels``/``in_chans``: its first entry), ``output_dim``
    (or ``num_classes``). The names are ``RUNTIME_KWARGS['model']`` of the schema."""
    shape = tuple(int(n) for n in input_shape)
    channels = shape[0] if shape else 1
    return {
        "input_shape": shape,
        "output_dim": int(output_dim),
        "num_classes": int(output_dim),
        "in_channels": channels,
        "in_chans": channels,
    }


def build_model(node: DictConfig, input_shape: Sequence[int], output_dim: int) -> nn.Module:
    """The model of ``node`` for data of ``input_shape`` and ``output_dim`` outputs."""
    return instantiate(node, "model", nn.Module, **model_runtime(input_shape, output_dim))


def build_augmentation(cfg: DictConfig, dataset: Any) -> Any:
    """The ``augmentation`` option built for this dataset, or None (``augmentation=None``)."""
    node = cfg.get("augmentation")
    if node is None or node.get("_target_") is None:
        return None
    runtime = model_runtime(dataset.input_shape, dataset.output_dim)
    augmentation = instantiate(node, "augmentation", None, **runtime)
    if not callable(augmentation) and not hasattr(augmentation, "augment_batch"):
        raise ConfigError(
            f"augmentation: {node._target_} built a {type(augmentation).__name__}; expected a "
            "callable (per sample) or an object with augment_batch(batch)"
        )
    return augmentation


def _check_stratify(cfg: DictConfig, dataset: Any) -> None:
    """``dataset.stratify`` names per-sample columns the dataset has on dev and test."""
    columns = list(cfg.dataset.get("stratify") or [])
    if not columns:
        return
    if not callable(getattr(dataset, "sample_info", None)):
        raise ConfigError(
            f"dataset.stratify: {cfg.dataset._target_} has no per-sample columns to group by "
            "(a dataset offers them with a sample_info(split) method, as Files does)"
        )
    for split in ("dev", "test"):
        info = dataset.sample_info(split)
        missing = [c for c in columns if c not in info.columns]
        if missing:
            raise ConfigError(
                f"dataset.stratify: column(s) {missing} not in the {split} samples' columns "
                f"({', '.join(map(str, info.columns))})"
            )


def build_schedule(cfg: DictConfig, c: Components) -> Schedule:
    """The scheduler (if any), sized for the run: ``total_steps`` at its step frequency,
    ReduceLROnPlateau's mode from the metric it watches."""
    from sweeptrainer.config.instantiate import locate
    from sweeptrainer.training import schedule

    monitor, higher = schedule.monitored(cfg, c.metrics, c.tracking)
    target = cfg.scheduler.get("_target_")
    if target is None:
        return Schedule(None, c.optimizer, "iteration", monitor)
    frequency, total = schedule.plan(cfg, locate(target, "scheduler"), len(c.splits["train"]))
    runtime: dict[str, Any] = {"total_steps": total}
    if frequency == "evaluation":
        mode = schedule.plateau_mode(cfg, monitor, higher)
        runtime |= {"mode": mode} if mode else {}
    c.scheduler = instantiate(cfg.scheduler, "scheduler", None, c.optimizer, **runtime)
    schedule.probe(c.scheduler, c.optimizer, target)
    return Schedule(c.scheduler, c.optimizer, frequency, monitor)


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
    dataset = instantiate(
        cfg.dataset, "dataset", None, num_workers=cfg.num_workers, progress_bar=cfg.progress_bar
    )
    for attr in ("train", "dev", "test", "task", "input_shape", "output_dim"):
        if not hasattr(dataset, attr):
            raise ConfigError(f"dataset: {cfg.dataset._target_} has no attribute {attr!r}")
    try:
        specs = OmegaConf.to_container(cfg.dataset.metrics)
        if not isinstance(specs, list):  # the config check says so first
            raise ValueError("expected a list of metric names")
        metrics = get_metrics(specs, dataset.task)
    except ValueError as err:
        raise ConfigError(f"dataset.metrics: {err}") from None
    check_metrics(metrics, dataset.task, dataset.output_dim)
    tracking = tracking_of(cfg.dataset.tracking_metric, metrics)
    _check_stratify(cfg, dataset)
    augmentation = build_augmentation(cfg, dataset)
    batch = cfg.dataset.get("batch") or {}
    layout = BatchLayout.from_config(batch)
    splits = {"train": dataset.train, "dev": dataset.dev, "test": dataset.test}
    if augmentation is not None:
        try:
            splits["train"] = augment_split(dataset.train, augmentation, layout.input_field)
        except BatchError as err:
            raise ConfigError(f"augmentation: {err}") from None
    model = build_model(cfg.model, dataset.input_shape, dataset.output_dim).to(device)
    criterion = instantiate(cfg.criterion, "criterion", nn.Module, dataset=dataset).to(device)
    _check_criterion(cfg, dataset.task)
    c = Components(
        dataset,
        model,
        criterion,
        None,  # type: ignore[arg-type]  # the optimizer, once the first batch sized the model
        None,
        metrics,
        tracking,
        augmentation=augmentation,
        splits=splits,
        batch_transform=batch_steps(augmentation),
        layout=layout,
        collate=build_collate(batch.get("collate")),
    )
    check_first_batch(cfg, c, device)  # before the optimizer: lazy modules get their sizes
    # weight decay applies to weights, not to biases and normalisation layers
    groups = parameter_groups(model, _weight_decay(cfg.optimizer))
    c.optimizer = instantiate(cfg.optimizer, "optimizer", torch.optim.Optimizer, groups)
    c.schedule = build_schedule(cfg, c)
    if with_loggers:
        c.loggers = _keyed(cfg, "loggers", run_dir=run_dir, sweep_dir=sweep_dir)
    c.callbacks = _keyed(cfg, "callbacks", run_dir=run_dir)
    return c
