"""When the learning-rate scheduler steps, and the rate each evaluation period used.

``scheduler.step_frequency`` (a key of the scheduler option, not a constructor argument):

- ``batch``: after every optimizer step (OneCycleLR, warm-up per step);
- ``iteration`` (default): after every iteration: every epoch, or every optimizer step in
  step training;
- ``evaluation``: after every evaluation, with the value of ``scheduler.monitor`` (a
  metrics.csv column; default: the tracking metric's): ReduceLROnPlateau, which only
  steps this way.

A constructor that declares ``total_steps`` gets the number of times the scheduler will
step over the run at that frequency (OneCycleLR), unless the config gives it.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from omegaconf import DictConfig
from torch.optim.lr_scheduler import ReduceLROnPlateau

from sweeptrainer.config.keys import FREQUENCIES
from sweeptrainer.errors import ConfigError

log = logging.getLogger("sweeptrainer")


def plan(cfg: DictConfig, target: Any, n_train: int) -> tuple[str, int]:
    """(step frequency, total steps at it) for the scheduler ``target`` of ``cfg``."""
    plateau = isinstance(target, type) and issubclass(target, ReduceLROnPlateau)
    frequency = cfg.scheduler.get("step_frequency") or ("evaluation" if plateau else "iteration")
    if frequency not in FREQUENCIES:
        raise ConfigError(
            f"scheduler.step_frequency: expected one of {', '.join(FREQUENCIES)}, got {frequency!r}"
        )
    if plateau and frequency != "evaluation":
        raise ConfigError(
            "scheduler.step_frequency: ReduceLROnPlateau steps after evaluations, with the "
            f"monitored metric; expected evaluation, got {frequency!r}"
        )
    iterations = int(cfg.iterations)
    if frequency == "evaluation":
        total = math.ceil(iterations / int(cfg.eval_frequency))
    elif frequency == "iteration" or cfg.training_type == "step":
        total = iterations
    else:  # every optimizer step of epoch training
        batches = math.ceil(n_train / int(cfg.batch_size))
        total = iterations * math.ceil(batches / int(cfg.accumulation_steps))
    return frequency, total


def monitored(cfg: DictConfig, metrics: list[Any], tracking: Any) -> tuple[str, bool]:
    """(the metrics.csv column ``scheduler.monitor`` names, whether higher is better)."""
    default = f"dev_{tracking.name}"
    column = cfg.scheduler.get("monitor") or default
    directions = {"train_loss": False, "dev_loss": False}
    directions |= {f"dev_{m.name}": m.higher_is_better for m in metrics}
    if column not in directions:
        raise ConfigError(
            f"scheduler.monitor: {column!r} is not a metrics column; expected one of "
            f"{', '.join(directions)}"
        )
    return column, directions[column]


def plateau_mode(cfg: DictConfig, column: str, higher: bool) -> str | None:
    """ReduceLROnPlateau's ``mode`` for the monitored metric: the config's if it fits (an
    error if it does not), else the metric's own direction (logged)."""
    wanted = "max" if higher else "min"
    given = cfg.scheduler.get("mode")
    if given is None:
        log.info(f"scheduler: ReduceLROnPlateau watches {column}: mode {wanted}")
        return wanted
    if given != wanted:
        raise ConfigError(
            f"scheduler.mode: {given!r} would lower the learning rate whenever {column} "
            f"improves ({'higher' if higher else 'lower'} is better); use mode: {wanted}, or "
            "leave mode out to have it set from the metric"
        )
    return None


class Schedule:
    """Steps the scheduler at its frequency and remembers the rate each period used."""

    def __init__(self, scheduler: Any, optimizer: Any, frequency: str, monitor: str) -> None:
        self.scheduler, self.optimizer = scheduler, optimizer
        self.frequency = frequency if scheduler is not None else None
        self.monitor = monitor
        self._used: float | None = None

    def step(self, row: dict[str, float] | None = None) -> None:
        if self.frequency != "evaluation":  # after an evaluation, the next period's rate changes
            self._used = self.optimizer.param_groups[0]["lr"]  # the rate the last step used
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step((row or {})[self.monitor])
        else:
            self.scheduler.step()

    def current(self) -> float:
        """The rate the latest optimizer step used, without consuming it (for loggers:
        :meth:`rate` is the metrics row's and forgets what it returned)."""
        return float(self._used if self._used is not None else self.optimizer.param_groups[0]["lr"])

    def rate(self) -> float:
        """The rate of the period that ends now: the last one an optimizer step used."""
        rate = self._used if self._used is not None else self.optimizer.param_groups[0]["lr"]
        self._used = None
        return float(rate)


def probe(scheduler: Any, optimizer: Any, target: str) -> None:
    """Take one scheduler step and undo it: arguments that fail only when the scheduler
    steps (``StepLR`` with ``step_size: 0`` divides by zero) fail here, before training,
    as a ConfigError naming the scheduler. The scheduler's state and every optimizer
    setting it changes (rates, momentum) are restored exactly."""
    import copy
    import warnings

    state = copy.deepcopy(scheduler.state_dict())
    groups = [copy.deepcopy({k: v for k, v in g.items() if k != "params"})
              for g in optimizer.param_groups]  # fmt: skip
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "step before optimizer.step()": it is a probe
            if isinstance(scheduler, ReduceLROnPlateau):
                scheduler.step(0.0)
            else:
                scheduler.step()
    except Exception as err:
        raise ConfigError(
            f"scheduler: {target} fails at its first step: {type(err).__name__}: {err}"
        ) from err
    finally:
        scheduler.load_state_dict(state)
        for group, saved in zip(optimizer.param_groups, groups, strict=True):
            group.update(saved)
