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


@pytest.mark.parametrize("name", ["accuracy", "uar", "f1"])
def test_classification_metrics_equal_audmetrics_exactly(name):
    """The packaged classification metrics are vectorised versions of audmetric's; the
    values must be the same floats, also where a class is only in truth or only predicted."""
    import audmetric

    reference = {"accuracy": audmetric.accuracy, "uar": audmetric.unweighted_average_recall,
                 "f1": audmetric.unweighted_average_fscore}[name]  # fmt: skip
    rng = np.random.default_rng(0)
    cases = [
        (np.array([0, 0]), np.array([0, 1])),
        (np.array([3]), np.array([3])),
        (np.array([1, 2, 2]), np.array([0, 0, 0])),
        (np.arange(5), np.arange(5)[::-1]),
    ]
    for _ in range(200):
        n, k = int(rng.integers(1, 60)), int(rng.integers(2, 12))
        truth = rng.integers(0, k, n)
        prediction = np.where(rng.random(n) < 0.6, truth, rng.integers(0, k + 2, n))
        cases.append((truth, prediction))
    for truth, prediction in cases:
        assert METRICS[name](truth, prediction) == reference(truth, prediction), (truth, prediction)
