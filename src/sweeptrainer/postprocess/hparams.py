"""The tracking metric against the swept hyper-parameters: a panel per numeric key, and a
parallel-coordinates view of every swept key, so a sweep's trends show at a glance."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeptrainer.postprocess.aggregate import Aggregated
from sweeptrainer.postprocess.collect import Experiment
from sweeptrainer.postprocess.plots import Figure, file_name, log_axis, numeric, short


def _tracked(experiment: Experiment) -> tuple[pd.DataFrame, str] | None:
    """The finished runs of the experiment's tracking metric, with its dev column."""
    column = f"dev_{experiment.tracking}"
    runs = experiment.runs
    if column not in runs.columns:
        return None
    # runs of another tracking metric (ranked apart) are left out; runs from before
    # results.yaml named it are taken as the experiment's
    own = runs["run"].map(experiment.run_tracking).fillna(experiment.tracking)
    own = own == experiment.tracking
    runs = runs[(runs["status"] == "finished") & own].copy()
    runs[column] = pd.to_numeric(runs[column], errors="coerce")
    runs = runs[runs[column].notna()]
    return (runs, column) if len(runs) >= 2 else None


def _value_ticks(ax: Any, values: np.ndarray, log: bool) -> None:
    """x ticks at the swept values themselves (up to 8 of them; else the default ones)."""
    from matplotlib.ticker import NullLocator

    unique = np.unique(values)
    if log:
        ax.set_xscale("log")
    if len(unique) <= 8:
        ax.set_xticks(unique, [f"{v:.3g}" for v in unique])
        ax.xaxis.set_minor_locator(NullLocator())


def hparam_figures(experiment: Experiment, agg: Aggregated, out: Path) -> list[Figure]:
    """The dev tracking metric against each swept numeric key (the keys a configuration is
    made of, not the aggregated seed): a dot per run, mean ± std per value, the best
    configuration's value starred; a log axis for learning rates."""
    found = _tracked(experiment)
    if found is None:
        return []
    runs, column = found
    keys = []
    for key in agg.group_keys:
        values = numeric(runs[key]) if key in runs.columns else None
        if values is not None and values.nunique() >= 2:
            keys.append((key, values.to_numpy()))
    if not keys:
        return []
    y = runs[column].to_numpy(dtype=float)
    best = agg.best or {}

    def make(plt: Any) -> Any:
        ncols = min(3, len(keys))
        nrows = math.ceil(len(keys) / ncols)
        size = (6.5, 4.2) if ncols == 1 else (4.2 * ncols, 3.4 * nrows + 0.5)
        fig, axes = plt.subplots(nrows, ncols, figsize=size, layout="constrained",
                                 squeeze=False, sharey=True)  # fmt: skip
        for ax, (key, xs) in zip(axes.flat, keys, strict=False):
            log = log_axis(key, xs)
            ax.scatter(xs, y, s=16, color="tab:blue", alpha=0.6, label="a run")
            stats = pd.DataFrame({"x": xs, "y": y}).groupby("x")["y"].agg(["mean", "std"])
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), color="black",
                        capsize=3, linewidth=1.2, label="mean ± std")  # fmt: skip
            if key in best and numeric(pd.Series([best[key]])) is not None:
                at = float(best[key])
                if at in stats.index:
                    ax.scatter([at], [stats.loc[at, "mean"]], marker="*", s=160,
                               color="gold", edgecolors="black", zorder=4,
                               label="best configuration")  # fmt: skip
            _value_ticks(ax, xs, log)
            ax.tick_params(axis="x", labelrotation=30 if len(np.unique(xs)) > 4 else 0)
            ax.set_xlabel(short(key, 40) + (" (log)" if log else ""))
            ax.grid(alpha=0.3)
        for ax in axes[:, 0]:
            ax.set_ylabel(column)
        for ax in list(axes.flat)[len(keys) :]:
            ax.set_visible(False)
        axes.flat[0].legend(fontsize=7)
        return fig

    names = ", ".join(k for k, _ in keys)
    caption = (f"{column} (at each run's best iteration) against {names}: a dot per run, "
               "black: mean ± std over the runs with that value (whatever the other keys), "
               "star: the best configuration.")  # fmt: skip
    return [Figure(out / file_name(f"{column}_vs_hyperparameters"), make, None, caption)]


def _axis(key: str, values: pd.Series) -> tuple[np.ndarray, list[float], list[str]]:
    """A parallel-coordinates axis: each run's position in [0, 1], tick positions, labels.
    Numbers keep their scale (log for learning rates); anything else is a category."""
    numbers = numeric(values)
    if numbers is not None:
        xs = numbers.to_numpy()
        log = log_axis(key, xs)
        scaled = np.log10(xs) if log else xs
        low, high = scaled.min(), scaled.max()
        span = (high - low) or 1.0
        unique = np.unique(xs)
        ticks = unique if len(unique) <= 6 else (10 ** np.linspace(low, high, 5) if log else
                                                 np.linspace(low, high, 5))  # fmt: skip
        where = ((np.log10(ticks) if log else ticks) - low) / span
        return (scaled - low) / span, list(where), [f"{t:.3g}" for t in ticks]
    text = values.astype(str)
    categories = sorted(text.unique())
    step = 1 / max(1, len(categories) - 1)
    position = {c: i * step for i, c in enumerate(categories)}
    if len(categories) == 1:
        position = {categories[0]: 0.5}
    shown = categories if len(categories) <= 12 else categories[:: math.ceil(len(categories) / 12)]
    return (text.map(position).to_numpy(dtype=float), [position[c] for c in shown],
            [short(c, 18) for c in shown])  # fmt: skip


def parallel_figures(experiment: Experiment, agg: Aggregated, out: Path) -> list[Figure]:
    """Every swept key (seed too) and the dev tracking metric as parallel axes: a line per
    run, coloured by the metric (brighter is better), the best run drawn thickest."""
    found = _tracked(experiment)
    keys = [k for k in [*agg.group_keys, *experiment.varying] if k in experiment.runs.columns]
    keys = list(dict.fromkeys(keys))
    if found is None or not keys:
        return []
    runs, column = found
    axes_data = [(key, *_axis(key, runs[key])) for key in keys]
    metric = runs[column].to_numpy(dtype=float)
    axes_data.append((column, *_axis(column, runs[column])))
    order = np.argsort(metric if experiment.higher_is_better else -metric)  # best drawn last
    n = len(axes_data)

    def make(plt: Any) -> Any:
        from matplotlib.cm import ScalarMappable
        from matplotlib.collections import LineCollection
        from matplotlib.colors import Normalize

        fig, ax = plt.subplots(figsize=(min(14, max(6, 1.9 * n + 1.5)), 4.6),
                               layout="constrained")  # fmt: skip
        positions = np.column_stack([a[1] for a in axes_data])  # runs x axes
        low, high = float(np.nanmin(metric)), float(np.nanmax(metric))
        high = high if high > low else low + 1.0
        shade = (metric - low) / (high - low)
        cmap = plt.get_cmap("viridis" if experiment.higher_is_better else "viridis_r")
        segments = [np.column_stack([np.arange(n), positions[i]]) for i in order]
        widths = [1.0] * (len(order) - 1) + [2.8]
        ax.add_collection(LineCollection(segments, colors=cmap(shade[order]), linewidths=widths,
                                         alpha=0.85))  # fmt: skip
        for i, (_, _, ticks, tick_labels) in enumerate(axes_data):
            ax.axvline(i, color="#555", linewidth=1)
            for at, text in zip(ticks, tick_labels, strict=True):
                ax.text(i - 0.04, at, text, ha="right", va="center", fontsize=8,
                        bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none",
                              "alpha": 0.7})  # fmt: skip
        names = [short(a[0], 22) for a in axes_data]
        ax.set_xticks(range(n), names, rotation=20 if n > 5 else 0, fontsize=8)
        ax.set_xlim(-0.45, n - 1 + 0.15)
        ax.set_ylim(-0.06, 1.06)
        ax.set_yticks([])
        for side in ("left", "right", "top", "bottom"):
            ax.spines[side].set_visible(False)
        mappable = ScalarMappable(norm=Normalize(low, high), cmap=cmap)
        fig.colorbar(mappable, ax=ax, label=column, shrink=0.9, pad=0.01)
        return fig

    caption = (f"Every swept key against {column}: a line per finished run, coloured by "
               f"{column} (brighter is better), the best run thickest; numeric axes keep their "
               "scale (log for learning rates), other values are evenly spaced.")  # fmt: skip
    return [Figure(out / file_name(f"{column}_parallel_coordinates"), make, None, caption)]
