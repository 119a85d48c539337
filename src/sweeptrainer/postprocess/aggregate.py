"""Group runs by every varying key except the aggregated ones (default: seed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sweeptrainer.errors import ConfigError, did_you_mean
from sweeptrainer.postprocess.collect import Experiment

STATS = ("mean", "std", "count")


@dataclass
class Aggregated:
    """The aggregated table (best configuration first) and the keys it groups by."""

    table: pd.DataFrame
    group_keys: list[str]
    sort_column: str | None
    best: dict[str, Any] | None  # None when runs of several tracking metrics are ranked apart
    bests: list[dict[str, Any]] = field(default_factory=list)  # one per tracking metric


def _matches(name: str, keys: Sequence[str]) -> list[str]:
    """``seed`` matches ``seed``; a group name like ``optimizer`` matches ``optimizer.*``."""
    return [k for k in keys if k == name or k.startswith(f"{name}.")]


def resolve_aggregate_by(experiment: Experiment, names: Sequence[str]) -> set[str]:
    """The varying keys that ``--aggregate-by`` names; unknown names are a ConfigError."""
    out: set[str] = set()
    for name in names:
        if not _matches(name, experiment.config_keys):
            hint = did_you_mean(name, experiment.config_keys)
            raise ConfigError(
                f"--aggregate-by: {name!r} is not a config key of these runs{hint}; "
                f"keys that differ between runs: {', '.join(experiment.varying) or '(none)'}"
            )
        out.update(_matches(name, experiment.varying))
    return out


def _rows(frame: pd.DataFrame, keys: list[str], metrics: list[str]) -> pd.DataFrame:
    """Mean, std and count of every metric per configuration (``keys``)."""
    groups = frame.groupby(keys, dropna=False, sort=False) if keys else [((), frame)]
    rows = []
    for values, group in groups:
        values = values if isinstance(values, tuple) else (values,)
        row: dict[str, Any] = dict(zip(keys, values, strict=True))
        row["runs"] = len(group)
        for metric in metrics:
            column = pd.to_numeric(group[metric], errors="coerce")
            row |= {f"{metric}_mean": column.mean(), f"{metric}_std": column.std(),
                    f"{metric}_count": int(column.count())}  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def _rank(
    table: pd.DataFrame, tracking: str | None, higher: bool
) -> tuple[pd.DataFrame, str | None]:
    """``table`` best first by the tracking metric's mean (ties: the lower dev loss)."""
    sort_column = f"dev_{tracking}_mean" if tracking else None
    if sort_column in table.columns:
        by = [sort_column] + (["dev_loss_mean"] if "dev_loss_mean" in table.columns else [])
        ascending = [not higher, True][: len(by)]
        table = table.sort_values(by, ascending=ascending, kind="stable", ignore_index=True)
    return table, sort_column


def _best(table: pd.DataFrame, keys: list[str], sort_column: str | None) -> dict[str, Any] | None:
    if not len(table):
        return None
    best = {k: table.iloc[0][k] for k in [*keys, "runs"]}
    if sort_column is not None and sort_column in table.columns:
        best[sort_column] = table.iloc[0][sort_column]
    return best


def aggregate(experiment: Experiment, aggregate_by: Sequence[str] = ("seed",)) -> Aggregated:
    """Mean, std and count of every dev/test metric per configuration, best first.

    Runs tracked by different metrics (a classifier and a regressor in one experiment) are
    not ranked against each other: each tracking metric's runs are ranked apart (the column
    ``ranked_by`` says by what), each with its own best configuration (``bests``).
    """
    aggregated = resolve_aggregate_by(experiment, aggregate_by)
    keys = [k for k in experiment.varying if k not in aggregated]
    runs = experiment.runs
    finished = runs[runs["status"] == "finished"]
    metrics = [c for c in runs.columns if c.startswith(("dev_", "test_"))]
    if finished.empty or not metrics:
        return Aggregated(pd.DataFrame(columns=[*keys, "runs"]), keys, None, None)
    trackings = finished["run"].map(experiment.run_tracking)
    kinds = list(dict.fromkeys(trackings.dropna()))
    if len(kinds) <= 1:
        table, sort_column = _rank(_rows(finished, keys, metrics), experiment.tracking,
                                   experiment.higher_is_better)  # fmt: skip
        best = _best(table, keys, sort_column)
        return Aggregated(table, keys, sort_column, best, [best] if best else [])
    parts, bests = [], []
    for kind in kinds:
        own = finished[trackings == kind]
        used = [m for m in metrics if own[m].notna().any()]
        table, sort_column = _rank(_rows(own, keys, used), kind, experiment.directions[kind])
        table.insert(0, "ranked_by", sort_column)
        parts.append(table)
        best = _best(table, ["ranked_by", *keys], sort_column)
        if best is not None:  # every kind has finished runs: never None
            bests.append(best)
    return Aggregated(pd.concat(parts, ignore_index=True), keys, None, None, bests)


def aggregate_stratified(experiment: Experiment, agg: Aggregated) -> pd.DataFrame:
    """Per-group metrics averaged like the aggregated table: mean and std per configuration,
    split, column and group, over the aggregated keys (seeds)."""
    frame = experiment.stratified
    if frame.empty:
        return frame
    keys = [*agg.group_keys, "split", "column", "group"]
    metrics = [c for c in frame.columns if c not in ("run", *keys, *experiment.varying, "n")]
    rows = []
    for values, group in frame.groupby(keys, dropna=False, sort=False):
        row: dict[str, Any] = dict(zip(keys, values, strict=True))
        row["runs"], row["n"] = len(group), int(group["n"].iloc[0]) if "n" in group else None
        for metric in metrics:
            column = pd.to_numeric(group[metric], errors="coerce")
            row |= {f"{metric}_mean": column.mean(), f"{metric}_std": column.std()}
        rows.append(row)
    return pd.DataFrame(rows)
