"""Metrics: packaged short-hands (audmetric), any callable by path, or a ``_target_``.

A metric is a function ``(truth, prediction) -> float``, or with ``scores: true``
``(truth, scores) -> float``. Classification metrics get class indices (and scores: the
class probabilities, for two classes the positive class's), regression metrics values in
the target's original units, multi-label metrics 0/1 matrices (samples x labels).

``dataset.metrics`` entries: a packaged name (``accuracy``), a dotted path
(``sklearn.metrics.balanced_accuracy_score``), or a mapping::

    {_target_: sklearn.metrics.roc_auc_score, scores: true, multi_class: ovr,
     name: auc, higher_is_better: true}

The direction of a metric by path is taken from its name (``..._error``, ``..._loss``:
lower is better; anything else higher) unless ``higher_is_better`` says. ``loss`` as the
tracking metric is the dev loss (lower is better).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import audmetric
import numpy as np

from sweeptrainer.config.metric_specs import parse_spec
from sweeptrainer.errors import ConfigError


@dataclass(frozen=True)
class Metric:
    """A named metric, its direction, the tasks it applies to (None: any), and whether it
    scores class probabilities rather than predictions."""

    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    higher_is_better: bool
    tasks: tuple[str, ...] | None
    uses_scores: bool = False

    def __call__(
        self, truth: np.ndarray, prediction: np.ndarray, scores: np.ndarray | None = None
    ) -> float:
        if self.uses_scores:
            if scores is None:
                raise ValueError(f"metric {self.name} needs scores, and this task has none")
            # two classes: the positive class's probability, as scikit-learn's binary metrics take
            given = scores[:, 1] if scores.ndim == 2 and scores.shape[1] == 2 else scores
            return float(self.fn(truth, given))
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


def _per_class(truth: np.ndarray, prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision of each class in truth or prediction (sorted), zero where
    undefined: what audmetric's ``recall_per_class`` and ``precision_per_class`` give,
    from one vectorised confusion matrix. audmetric builds the matrix in Python once per
    call, which made the three default metrics about 1 ms of every Digits evaluation
    (a fifth of it); ``tests/unit/test_metrics.py`` checks both agree exactly."""
    labels = np.union1d(truth, prediction)
    k = len(labels)
    rows, columns = np.searchsorted(labels, truth), np.searchsorted(labels, prediction)
    matrix = np.bincount(rows * k + columns, minlength=k * k).reshape(k, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = matrix.diagonal() / matrix.sum(axis=1)
        precision = matrix.diagonal() / matrix.sum(axis=0)
    return np.nan_to_num(recall, nan=0.0), np.nan_to_num(precision, nan=0.0)


def _accuracy(truth: np.ndarray, prediction: np.ndarray) -> float:
    """audmetric.accuracy (labels from the data)."""
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    return float(np.count_nonzero(truth == prediction) / len(truth)) if len(truth) else np.nan


def _uar(truth: np.ndarray, prediction: np.ndarray) -> float:
    """audmetric.unweighted_average_recall: the mean recall over the classes in truth or
    prediction (a class only predicted counts with recall 0)."""
    if not len(truth):
        return np.nan
    return float(_per_class(np.asarray(truth), np.asarray(prediction))[0].mean())


def _f1(truth: np.ndarray, prediction: np.ndarray) -> float:
    """audmetric.unweighted_average_fscore: the mean F1 over the classes in truth or
    prediction, 0 where precision or recall is 0."""
    if not len(truth):
        return np.nan
    recall, precision = _per_class(np.asarray(truth), np.asarray(prediction))
    with np.errstate(invalid="ignore"):
        fscore = np.where(
            precision * recall == 0, 0.0, 2 * precision * recall / (precision + recall)
        )
    return float(fscore.mean())


_CLS = ("classification",)
_REG = ("regression",)

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", _accuracy, True, _CLS),
        Metric("uar", _uar, True, _CLS),
        Metric("f1", _f1, True, _CLS),
        Metric("mse", audmetric.mean_squared_error, False, _REG),
        Metric("mae", audmetric.mean_absolute_error, False, _REG),
        Metric("ccc", audmetric.concordance_cc, True, _REG),
        Metric("pcc", audmetric.pearson_cc, True, _REG),
        Metric("f1_multilabel", _multilabel_f1, True, ("multilabel",)),
        Metric("f1_multilabel_micro", _multilabel_f1_micro, True, ("multilabel",)),
    )
}


def _roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    multi = scores.ndim == 2 and scores.shape[1] > 2
    labels = np.arange(scores.shape[1]) if multi else None
    return float(roc_auc_score(truth, scores, multi_class="ovr" if multi else "raise",
                               labels=labels))  # fmt: skip


METRICS["roc_auc"] = Metric("roc_auc", _roc_auc, True, _CLS, uses_scores=True)
LOSS = Metric("loss", lambda truth, prediction: 0.0, False, None)  # the dev loss as tracking
LOWER_IS_BETTER = ("error", "loss", "mse", "mae", "rmse", "distance", "divergence")


def higher_is_better(name: str) -> bool:
    """A metric's direction by its name alone: a packaged metric's own, the loss lower, and
    names with ``error``, ``loss``, ``mse``, ... lower, any other higher (what a metric given
    by path gets unless ``higher_is_better`` says; monitoring reads only names)."""
    if name in METRICS:
        return METRICS[name].higher_is_better
    return not any(part in name.lower() for part in LOWER_IS_BETTER)


def from_spec(spec: Any, key: str = "dataset.metrics") -> Metric:
    """One ``dataset.metrics`` entry as a Metric; a ConfigError naming it when it is wrong."""
    parsed = parse_spec(spec, key)
    if isinstance(parsed, str):
        return METRICS[parsed]
    higher = parsed.higher_is_better
    if higher is None:
        higher = higher_is_better(parsed.name)
    return Metric(parsed.name, parsed.fn, higher, None, parsed.uses_scores)


def get_metrics(specs: list[Any], task: str) -> list[Metric]:
    """The metrics of ``dataset.metrics``; a ValueError when a packaged one does not fit the
    dataset's task."""
    metrics = [from_spec(spec) for spec in specs]
    wrong = [m.name for m in metrics if m.tasks is not None and task not in m.tasks]
    if wrong:
        raise ValueError(f"metrics {wrong} do not apply to a {task} dataset")
    return metrics


def check_metrics(metrics: list[Metric], task: str, output_dim: int) -> None:
    """Compute every metric once on made-up outputs of this task (each class twice, right;
    sure scores), so a metric that cannot take them fails at start-up, not after an epoch."""
    n = max(output_dim, 2)
    truth: np.ndarray
    if task == "classification":
        truth = np.tile(np.arange(n), 2)
        prediction = truth.copy()
        scores = np.full((len(truth), n), 0.1 / max(n - 1, 1))
        scores[np.arange(len(truth)), truth] = 0.9
    elif task == "multilabel":
        truth = np.tile(np.eye(n, dtype=int), (2, 1))
        prediction, scores = truth.copy(), truth * 0.8 + 0.1
    else:
        truth = np.linspace(0.0, 1.0, 8)
        if output_dim > 1:
            truth = np.stack([truth] * output_dim, axis=1)
        prediction, scores = truth + 0.01, None
    for metric in metrics:
        try:
            metric(truth, prediction, scores)
        except Exception as err:
            what = "scores" if metric.uses_scores else "predictions"
            hint = "" if metric.uses_scores else "; a metric of probabilities needs scores: true"
            raise ConfigError(
                f"dataset.metrics: {metric.name} cannot be computed from the {task} dataset's "
                f"targets and {what}: {type(err).__name__}: {err}{hint}"
            ) from None


def tracking_of(name: str, metrics: list[Metric]) -> Metric:
    """The tracking metric: one of ``metrics`` by name, or ``loss`` (the dev loss)."""
    if name == "loss":
        return LOSS
    return next(m for m in metrics if m.name == name)
