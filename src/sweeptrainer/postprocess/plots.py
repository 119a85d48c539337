"""Plots as PNG files (matplotlib, no display needed).

Each ``*_figures`` function prepares its figures as :class:`Figure` jobs (data ready,
nothing drawn); :func:`draw` renders them, on a multi-core Unix machine half of them
in a forked process, while the caller goes on with other work (the tables). Drawing
is most of postprocessing's time, so this halves it on two cores.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeptrainer.postprocess.aggregate import Aggregated
from sweeptrainer.postprocess.collect import Experiment

SKIP_CURVES = ("iteration", "elapsed_s", "run")


@dataclass
class Figure:
    """One PNG to draw: ``make(plt)`` builds the matplotlib figure, saved to ``path``."""

    path: Path
    make: Callable[[Any], Any]
    bottom: float = 0.13  # margin for the x tick labels


def draw(figures: list[Figure], meanwhile: Callable[[], Any] = lambda: None) -> list[Path]:
    """Draw ``figures`` (half in a forked process where possible), running ``meanwhile``
    in this process at the same time; returns the PNG paths.

    The helper takes figures 0, 2, 4, ...: callers put the costliest first, since this
    process also runs ``meanwhile``.
    """
    if not figures:
        meanwhile()
        return []
    plt = _pyplot()  # imported before the fork: the helper process inherits it
    helper = None
    if len(figures) > 1 and (os.cpu_count() or 1) > 1 and _can_fork():
        with warnings.catch_warnings():  # 3.12+: fork with threads alive (BLAS pools, idle)
            warnings.simplefilter("ignore", DeprecationWarning)
            helper = multiprocessing.get_context("fork").Process(
                target=_draw_all, args=(figures[0::2], plt), daemon=True
            )
            helper.start()
    meanwhile()
    _draw_all(figures[1::2] if helper else figures, plt)
    if helper is not None:
        helper.join()
        if helper.exitcode != 0:
            raise RuntimeError(f"drawing the figures failed (exit code {helper.exitcode})")
    return [f.path for f in figures]


def _can_fork() -> bool:
    # forking is unsafe on macOS with system frameworks loaded, absent on Windows
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def _draw_all(figures: list[Figure], plt: Any) -> None:
    for figure in figures:
        _save(figure.make(plt), figure.path, plt, figure.bottom)


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


def learning_curve_figures(experiment: Experiment, agg: Aggregated, out: Path) -> list[Figure]:
    """One PNG per metric: a line per run, one colour per configuration, mean ± std bands.

    A metric that never changes within any run (the learning rate without a scheduler)
    gets no figure. Each figure holds four artists whatever the number of runs and
    configurations (runs, means, bands as collections): drawing cost does not grow with
    the sweep, and building artists one by one was most of the time (profiled).
    """
    curves = experiment.curves
    if curves.empty:
        return []
    label_of = dict(
        zip(experiment.runs["run"], _labels(experiment.runs, agg.group_keys), strict=True)
    )
    configs = list(dict.fromkeys(label_of[r] for r in curves["run"].unique()))
    metrics = [c for c in experiment.curves_metrics if c not in SKIP_CURVES]
    # one array runs x iterations x metrics, built once (no per-run pandas work)
    run_codes, run_names = pd.factorize(curves["run"])
    it_codes, iterations = pd.factorize(curves["iteration"], sort=True)
    cube = np.full((len(run_names), len(iterations), len(metrics)), np.nan)
    cube[run_codes, it_codes] = curves[metrics].to_numpy(dtype=float)
    with warnings.catch_warnings():  # a run without any value of a metric
        warnings.simplefilter("ignore", RuntimeWarning)
        flat = np.nanmax(cube, axis=1) == np.nanmin(cube, axis=1)  # runs x metrics
    changing = [i for i in range(len(metrics)) if not flat[:, i].all()]
    metrics, cube = [metrics[i] for i in changing], cube[:, :, changing]
    x = np.asarray(iterations, dtype=float)
    rows_of = [[i for i, r in enumerate(run_names) if label_of[r] == c] for c in configs]

    def make(plt: Any, m: int, metric: str) -> Any:
        from matplotlib.collections import LineCollection, PolyCollection

        colours = [plt.get_cmap("tab10")(i % 10) for i in range(len(configs))]
        fig, ax = plt.subplots(figsize=(7, 4.2))
        lines, line_colours, means, bands, band_colours = [], [], [], [], []
        for colour, rows in zip(colours, rows_of, strict=True):
            values = cube[rows, :, m]
            for row in values:
                lines.append(np.column_stack([x, row])[~np.isnan(row)])
                line_colours.append(colour)
            if len(rows) > 1:
                with warnings.catch_warnings():  # iterations only one run reached (early stop)
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean = np.nanmean(values, axis=0)
                    std = np.nan_to_num(np.nanstd(values, axis=0, ddof=1))
                keep = ~np.isnan(mean)
                xs, mean, std = x[keep], mean[keep], std[keep]
                means.append(np.column_stack([xs, mean]))
                bands.append(np.vstack([np.column_stack([xs, mean - std]),
                                        np.column_stack([xs, mean + std])[::-1]]))  # fmt: skip
                band_colours.append(colour)
        ax.add_collection(LineCollection(lines, colors=line_colours, alpha=0.35, linewidths=1))
        if bands:
            ax.add_collection(PolyCollection(bands, facecolors=band_colours, alpha=0.2, lw=0))
            ax.add_collection(LineCollection(means, colors=band_colours, linewidths=2))
        ax.autoscale_view()
        if len(configs) <= 10:
            pairs = zip(colours, configs, strict=True)
            handles = [plt.Line2D([], [], color=c, label=name) for c, name in pairs]
            ax.legend(handles=handles, fontsize=7)
        ax.set_xlabel("iteration")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per evaluation")
        ax.grid(alpha=0.3)
        return fig

    return [
        Figure(out / f"curves_{metric}.png", lambda plt, m=m, metric=metric: make(plt, m, metric))
        for m, metric in enumerate(metrics)
    ]


def test_metric_figures(experiment: Experiment, agg: Aggregated, out: Path) -> list[Figure]:
    """Box plot of the test tracking metric per configuration, each run as a dot."""
    column = f"test_{experiment.tracking}"
    runs = experiment.runs[experiment.runs["status"] == "finished"]
    if column not in runs.columns or runs.empty:
        return []
    order = _labels(agg.table, agg.group_keys) if len(agg.table) else []
    labels = pd.Series(_labels(runs, agg.group_keys), index=runs.index)
    values = [pd.to_numeric(runs.loc[labels == label, column]).dropna().tolist() for label in order]
    # configurations without this metric (runs of another task in the experiment) are left out
    order, values = [o for o, v in zip(order, values, strict=True) if v], [v for v in values if v]
    if not values:
        return []

    def make(plt: Any) -> Any:
        fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(order) + 2), 4.2))
        ax.boxplot(values, showmeans=True)
        xs = [i for i, vals in enumerate(values, start=1) for _ in vals]
        ax.scatter(xs, [v for vals in values for v in vals], color="black", s=12, zorder=3)
        ax.set_xticks(range(1, len(order) + 1), order, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel(column)
        ax.set_title(f"{column} per configuration (best first)")
        ax.grid(alpha=0.3, axis="y")
        return fig

    return [Figure(out / f"{column}_per_config.png", make, bottom=0.35)]


def confusion_figures(experiment: Experiment, best_run: str | None, out: Path) -> list[Figure]:
    """Confusion matrix of the best run's test outputs (classification only)."""
    if best_run is None:
        return []
    outputs = experiment.run_dirs[best_run].read_output("test")
    if outputs is None or not any(c.startswith("score_") for c in outputs.columns):
        return []
    labels = [c.removeprefix("score_") for c in outputs.columns if c.startswith("score_")]
    matrix = pd.crosstab(outputs["target"].astype(str), outputs["prediction"].astype(str))
    counts = matrix.reindex(index=labels, columns=labels, fill_value=0).to_numpy()

    def make(plt: Any) -> Any:
        size = max(4, 0.5 * len(labels) + 2)
        fig, ax = plt.subplots(figsize=(size, size))
        ax.imshow(counts, cmap="Blues")
        for (i, j), count in np.ndenumerate(counts):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(labels)), labels, rotation=45, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("prediction")
        ax.set_ylabel("target")
        ax.set_title(f"test confusion matrix\n{best_run}", fontsize=8)
        return fig

    return [Figure(out / "confusion_matrix.png", make)]


def _save(fig: Any, path: Path, plt: Any, bottom: float) -> Path:
    from sweeptrainer.io.atomic import atomic_write

    # fixed margins: tight_layout would draw every figure one extra time
    fig.subplots_adjust(left=0.13, right=0.97, top=0.9, bottom=bottom)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
    return path
