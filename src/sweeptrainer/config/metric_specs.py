"""``dataset.metrics`` entries: their names, and the function a path or mapping names.

An entry is a packaged name (``accuracy``), a dotted path
(``sklearn.metrics.balanced_accuracy_score``) or a mapping with ``_target_`` (and ``name``,
``scores``, ``higher_is_better``, the function's own arguments). This is the part the config
check and :mod:`sweeptrainer.components.metrics` (which holds the packaged metrics
themselves and builds a :class:`~sweeptrainer.components.metrics.Metric` of an entry) share.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sweeptrainer.errors import ConfigError, did_you_mean

# the names of the packaged metrics, in the order the messages list them
# (sweeptrainer.components.metrics.METRICS has one Metric for each)
PACKAGED_METRICS: tuple[str, ...] = (
    "accuracy",
    "uar",
    "f1",
    "mse",
    "mae",
    "ccc",
    "pcc",
    "f1_multilabel",
    "f1_multilabel_micro",
    "roc_auc",
)


@dataclass(frozen=True)
class MetricSpec:
    """An entry given by path or mapping: its name, its function (built), the direction it
    states (None: none, taken from the name) and whether it scores class probabilities."""

    name: str
    fn: Callable[..., Any]
    higher_is_better: bool | None
    uses_scores: bool


def _name_of(path: str) -> str:
    return path.rsplit(".", 1)[-1].removesuffix("_score")


def spec_name(spec: Any) -> str:
    """The name a ``dataset.metrics`` entry has in metrics.csv and results.yaml."""
    if isinstance(spec, Mapping):
        return str(spec.get("name") or _name_of(str(spec.get("_target_", "?"))))
    return str(spec) if "." not in str(spec) else _name_of(str(spec))


def parse_spec(spec: Any, key: str = "dataset.metrics") -> str | MetricSpec:
    """One ``dataset.metrics`` entry: a packaged metric's name, or the metric a path or
    mapping names (its target imported, built with its arguments); a ConfigError naming the
    entry when it is wrong."""
    from sweeptrainer.config.instantiate import locate  # omegaconf: only for a path

    if isinstance(spec, str) and spec in PACKAGED_METRICS:
        return spec
    if isinstance(spec, str) and "." not in spec:
        raise ConfigError(
            f"{key}: unknown metric {spec!r}{did_you_mean(spec, PACKAGED_METRICS)}; known: "
            f"{', '.join(PACKAGED_METRICS)}, or a function by path (sklearn.metrics.f1_score) "
            "or {_target_: ..., ...}"
        )
    spec = {"_target_": spec} if isinstance(spec, str) else dict(spec)
    if "_target_" not in spec:
        raise ConfigError(f"{key}: expected a name, a path or a mapping with _target_: {spec!r}")
    name = spec_name(spec)
    target = locate(spec.pop("_target_"), key)
    spec.pop("name", None)
    higher = spec.pop("higher_is_better", None)
    uses_scores = bool(spec.pop("scores", False))
    fn = target(**spec) if inspect.isclass(target) else (
        functools.partial(target, **spec) if spec else target
    )  # fmt: skip
    if not callable(fn):
        raise ConfigError(f"{key}: {name} is not callable as metric(truth, prediction)")
    return MetricSpec(name, fn, None if higher is None else bool(higher), uses_scores)
