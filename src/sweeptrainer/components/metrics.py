"""Metrics by name, computed with audmetric on decoded truth and predictions.

Classification metrics get class indices, regression metrics values in the
target's original units, multi-label metrics 0/1 matrices (samples x labels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import audmetric
import numpy as np


@dataclass(frozen=True)
class Metric:
    """A named metric, its direction, and the tasks it applies to."""

    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    higher_is_better: bool
    tasks: tuple[str, ...]

    def __call__(self, truth: np.ndarray, prediction: np.ndarray) -> float:
        if truth.ndim == 2 and self.tasks == ("regression",):  # several targets: their mean
            columns = range(truth.shape[1])
            return float(np.mean([self.fn(truth[:, j], prediction[:, j]) for j in columns]))
        return float(self.fn(truth, prediction))

    def is_better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best


def _multilabel_f1_micro(truth: np.ndarray, prediction: np.ndarray) -> float:
    """Micro F1: every (sample, label) decision counted once, positive class."""
    return float(audmetric.fscore_per_class(truth.ravel(), prediction.ravel(), labels=[0, 1])[1])


def _multilabel_f1(truth: np.ndarray, prediction: np.ndarray) -> float:
    """Macro F1 over labels: the F1 of each label's positive class, averaged."""
    scores = [
        audmetric.fscore_per_class(truth[:, j], prediction[:, j], labels=[0, 1])[1]
        for j in range(truth.shape[1])
    ]
    return float(np.mean(scores))


_CLS = ("classification",)
_REG = ("regression",)

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", audmetric.accuracy, True, _CLS),
        Metric("uar", audmetric.unweighted_average_recall, True, _CLS),
        Metric("f1", audmetric.unweighted_average_fscore, True, _CLS),
        Metric("mse", audmetric.mean_squared_error, False, _REG),
        Metric("mae", audmetric.mean_absolute_error, False, _REG),
        Metric("ccc", audmetric.concordance_cc, True, _REG),
        Metric("pcc", audmetric.pearson_cc, True, _REG),
        Metric("f1_multilabel", _multilabel_f1, True, ("multilabel",)),
        Metric("f1_multilabel_micro", _multilabel_f1_micro, True, ("multilabel",)),
    )
}


def get_metrics(names: list[str], task: str) -> list[Metric]:
    """The named metrics; a ValueError when one does not fit the dataset's task."""
    metrics = [METRICS[name] for name in names]
    wrong = [m.name for m in metrics if task not in m.tasks]
    if wrong:
        raise ValueError(f"metrics {wrong} do not apply to a {task} dataset")
    return metrics
