"""Built-in callbacks. Each uses only the public hook mechanism, like a user's would.

A callback with ``state_dict``/``load_state_dict`` has its state saved in every
state file and restored on resume; whatever a callback puts into
``trainer.summary`` is written into ``results.yaml``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sweeptrainer.errors import ConfigError

if TYPE_CHECKING:  # the trainer imports the callbacks' layer, not the other way round
    from sweeptrainer.training.trainer import ModularTaskTrainer


class EarlyStopping:
    """Stop training when a metric has not improved for ``patience`` evaluations.

    ``metric`` is a column of metrics.csv (``dev_loss``, ``dev_accuracy``, ...); null means
    the dataset's tracking metric on dev. ``mode`` is ``max``, ``min`` or ``auto`` (the
    metric's own direction; losses are minimised). An improvement must exceed ``min_delta``.
    """

    def __init__(
        self,
        metric: str | None = None,
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
    ) -> None:
        if not isinstance(patience, int) or patience < 1:
            raise ConfigError(f"callbacks.early_stopping.patience: expected >= 1, got {patience!r}")
        if not isinstance(min_delta, int | float) or min_delta < 0:
            raise ConfigError(
                f"callbacks.early_stopping.min_delta: expected >= 0, got {min_delta!r}"
            )
        if mode not in ("auto", "max", "min"):
            raise ConfigError(
                f"callbacks.early_stopping.mode: expected auto, max or min, got {mode!r}"
            )
        self.metric, self.patience, self.min_delta, self.mode = metric, patience, min_delta, mode
        self.best: float | None = None
        self.best_iteration = 0
        self.waited = 0
        self.stopped_at: int | None = None

    def cb_on_train_begin(self, trainer: ModularTaskTrainer) -> None:
        by_column = {f"dev_{m.name}": m for m in trainer.components.metrics}
        columns = ["train_loss", "dev_loss", *by_column]
        self.metric = self.metric or f"dev_{trainer.components.tracking.name}"
        if self.metric not in columns:
            raise ConfigError(
                f"callbacks.early_stopping.metric: {self.metric!r} is not a metrics column; "
                f"expected one of {', '.join(columns)}"
            )
        if self.mode == "auto":  # the metric's own direction; losses are minimised
            metric = by_column.get(self.metric)
            self.mode = "max" if metric is not None and metric.higher_is_better else "min"

    def cb_on_iteration_end(
        self, trainer: ModularTaskTrainer, iteration: int, metrics: dict[str, float]
    ) -> None:
        assert self.metric is not None  # set by cb_on_train_begin
        value = metrics[self.metric]
        sign = 1 if self.mode == "max" else -1
        if self.best is None or sign * (value - self.best) > self.min_delta:
            self.best, self.best_iteration, self.waited = value, iteration, 0
            return
        self.waited += 1
        if self.waited >= self.patience:
            trainer.should_stop = True
            self.stopped_at = iteration
            trainer.summary["early_stopping"] = {
                "metric": self.metric,
                "stopped_at": iteration,
                "best": self.best,
                "best_iteration": self.best_iteration,
            }

    def state_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("metric", "mode", "best", "best_iteration", "waited")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


class Timer:
    """Wall time spent training, evaluating on dev and testing, in results.yaml as ``time_s``."""

    def __init__(self) -> None:
        self.totals = {"train": 0.0, "dev": 0.0, "test": 0.0}
        self._since = 0.0

    def _lap(self, phase: str | None) -> None:
        now = time.perf_counter()
        if phase is not None:
            self.totals[phase] += now - self._since
        self._since = now

    def cb_on_iteration_begin(self) -> None:
        self._lap(None)

    def cb_on_dev_begin(self) -> None:
        self._lap("train")

    def cb_on_dev_end(self) -> None:
        self._lap("dev")

    def cb_on_iteration_end(self) -> None:
        self._lap(None)  # saving states and metrics is not counted as any phase

    def cb_on_test_begin(self) -> None:
        self._lap(None)

    def cb_on_test_end(self, trainer: ModularTaskTrainer) -> None:
        self._lap("test")
        trainer.summary["time_s"] = {k: round(v, 3) for k, v in self.totals.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"totals": dict(self.totals)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.totals = dict(state["totals"])
