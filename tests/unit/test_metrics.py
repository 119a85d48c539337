import numpy as np
import pytest

from sweeptrainer.components.metrics import METRICS, get_metrics


def test_directions():
    assert METRICS["accuracy"].is_better(0.9, 0.8)
    assert METRICS["mae"].is_better(0.1, 0.2)
    assert not METRICS["mse"].is_better(0.3, 0.2)
    assert METRICS["ccc"].is_better(0.5, None)


def test_values():
    truth, pred = np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2])
    assert METRICS["accuracy"](truth, pred) == pytest.approx(0.75)
    assert METRICS["uar"](truth, pred) == pytest.approx((1 + 0.5 + 1) / 3)
    ml_truth = np.array([[1, 0], [1, 1], [0, 1]])
    assert METRICS["f1_multilabel"](ml_truth, ml_truth) == pytest.approx(1.0)


def test_metric_must_fit_the_task():
    with pytest.raises(ValueError, match="do not apply to a regression"):
        get_metrics(["accuracy"], "regression")
