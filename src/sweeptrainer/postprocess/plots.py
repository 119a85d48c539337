"""Plots as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeptrainer.postprocess.aggregate import Aggregated
from sweeptrainer.postprocess.collect import Experiment

SKIP_CURVES = ("iteration", "elapsed_s", "run")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: works without a display
    import matplotlib.pyplot as plt

    return plt


def _labels(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    """A readable configuration label per row (``learning_rate=0.01, model.id=CNN``)."""
    if not keys:
        return ["all runs"] * len(frame)
    return [", ".join(f"{k}={row[k]}" for k in keys) for _, row in frame[keys].iterrows()]


def learning_curves(experiment: Experiment, agg: Aggregated, out: Path) -> list[Path]:
    """One PNG per metric: a line per run, one colour per configuration, mean ± std bands."""
    curves = experiment.curves
    if curves.empty:
        return []
    plt = _pyplot()
    from matplotlib.collections import LineCollection

    label_of = dict(
        zip(experiment.runs["run"], _labels(experiment.runs, agg.group_keys), strict=True)
    )
    configs = list(dict.fromkeys(label_of[r] for r in curves["run"].unique()))
    colours = {c: plt.get_cmap("tab10")(i % 10) for i, c in enumerate(configs)}
    metrics = [c for c in experiment.curves_metrics if c not in SKIP_CURVES]
    # one array runs x iterations x metrics, built once (no per-run pandas work)
    run_codes, run_names = pd.factorize(curves["run"])
    it_codes, iterations = pd.factorize(curves["iteration"], sort=True)
    cube = np.full((len(run_names), len(iterations), len(metrics)), np.nan)
    cube[run_codes, it_codes] = curves[metrics].to_numpy(dtype=float)
    x = np.asarray(iterations, dtype=float)
    rows_of = {c: [i for i, r in enumerate(run_names) if label_of[r] == c] for c in configs}
    paths = []
    for m, metric in enumerate(metrics):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for config, rows in rows_of.items():
            values = cube[rows, :, m]
            lines = [np.column_stack([x, row])[~np.isnan(row)] for row in values]
            # every run of a configuration as one artist: fast to draw for hundreds of runs
            ax.add_collection(
                LineCollection(lines, colors=[colours[config]], alpha=0.35, linewidths=1)
            )
            if len(rows) > 1:
                with warnings.catch_warnings():  # iterations only one run reached (early stop)
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean = np.nanmean(values, axis=0)
                    std = np.nan_to_num(np.nanstd(values, axis=0, ddof=1))
                ax.plot(x, mean, color=colours[config], linewidth=2)
                ax.fill_between(x, mean - std, mean + std, color=colours[config], alpha=0.2)
        ax.autoscale_view()
        if len(configs) <= 10:
            handles = [plt.Line2D([], [], color=colours[c], label=c) for c in configs]
            ax.legend(handles=handles, fontsize=7)
        ax.set_xlabel("iteration")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per evaluation")
        ax.grid(alpha=0.3)
        paths.append(_save(fig, out / f"curves_{metric}.png", plt))
    return paths


def test_metric_per_config(experiment: Experiment, agg: Aggregated, out: Path) -> list[Path]:
    """Box plot of the test tracking metric per configuration, each run as a dot."""
    column = f"test_{experiment.tracking}"
    runs = experiment.runs[experiment.runs["status"] == "finished"]
    if column not in runs.columns or runs.empty:
        return []
    plt = _pyplot()
    order = _labels(agg.table, agg.group_keys) if len(agg.table) else []
    labels = pd.Series(_labels(runs, agg.group_keys), index=runs.index)
    values = [pd.to_numeric(runs.loc[labels == label, column]).dropna().tolist() for label in order]
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(order) + 2), 4.2))
    ax.boxplot(values, showmeans=True)
    xs = [i for i, vals in enumerate(values, start=1) for _ in vals]
    ax.scatter(xs, [v for vals in values for v in vals], color="black", s=12, zorder=3)
    ax.set_xticks(range(1, len(order) + 1), order, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(column)
    ax.set_title(f"{column} per configuration (best first)")
    ax.grid(alpha=0.3, axis="y")
    return [_save(fig, out / f"{column}_per_config.png", plt, bottom=0.35)]


def confusion_matrix(experiment: Experiment, best_run: str | None, out: Path) -> list[Path]:
    """Confusion matrix of the best run's test outputs (classification only)."""
    if best_run is None:
        return []
    outputs = experiment.run_dirs[best_run].read_output("test")
    if outputs is None or not any(c.startswith("score_") for c in outputs.columns):
        return []
    labels = [c.removeprefix("score_") for c in outputs.columns if c.startswith("score_")]
    matrix = pd.crosstab(outputs["target"].astype(str), outputs["prediction"].astype(str))
    matrix = matrix.reindex(index=labels, columns=labels, fill_value=0)
    plt = _pyplot()
    size = max(4, 0.5 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix.to_numpy(), cmap="Blues")
    for (i, j), count in pd.DataFrame(matrix.to_numpy()).stack().items():
        ax.text(j, i, str(count), ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(labels)), labels, rotation=45, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("prediction")
    ax.set_ylabel("target")
    ax.set_title(f"test confusion matrix\n{best_run}", fontsize=8)
    return [_save(fig, out / "confusion_matrix.png", plt)]


def _save(fig: Any, path: Path, plt: Any, bottom: float = 0.13) -> Path:
    from sweeptrainer.io.atomic import atomic_write

    # fixed margins: tight_layout would draw every figure one extra time
    fig.subplots_adjust(left=0.13, right=0.97, top=0.9, bottom=bottom)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
    return path
