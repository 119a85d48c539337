"""Learning curves: metrics that move together as panels of one figure (not several
near-identical figures), the x-axis in the runs' unit (epoch or step), every run's best
iteration marked."""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeptrainer.postprocess.aggregate import Aggregated
from sweeptrainer.postprocess.collect import Experiment
from sweeptrainer.postprocess.plots import Figure, config_labels, file_name, short

SKIP_CURVES = ("iteration", "elapsed_s", "run")
TOGETHER = 0.9  # correlation (all evaluations of all runs) from which metrics share a figure
MAX_PANELS = 6


def unit(experiment: Experiment) -> str:
    """What an iteration is: ``epoch`` or ``step`` (the runs' ``training_type``), or
    ``iteration`` when the runs differ or do not say."""
    types = experiment.configs.get("training_type")
    kinds = set(types.dropna().astype(str)) if types is not None else set()
    return kinds.pop() if len(kinds) == 1 and kinds <= {"epoch", "step"} else "iteration"


def together(cube: np.ndarray, metrics: list[str]) -> list[list[int]]:
    """Metric indices grouped by how they move: the losses (train and dev, side by side
    shows over-fitting) form one group; each other metric joins the first group whose every
    member it correlates with (>= TOGETHER, over all evaluations of all runs)."""
    flat = pd.DataFrame(cube.reshape(-1, cube.shape[2]))
    with warnings.catch_warnings():  # a metric constant over the points both have
        warnings.simplefilter("ignore", RuntimeWarning)
        corr = flat.corr(min_periods=3).to_numpy()
    losses = [i for i, m in enumerate(metrics) if m.endswith("loss")][:MAX_PANELS]
    groups: list[list[int]] = [losses] if losses else []
    for i in range(len(metrics)):
        if i in losses:
            continue
        for group in groups[1 if losses else 0 :]:
            if len(group) < MAX_PANELS and all(corr[i, j] >= TOGETHER for j in group):
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def _cube(curves: pd.DataFrame, metrics: list[str]) -> tuple[np.ndarray, Any, np.ndarray]:
    """One array runs x iterations x metrics, built once (no per-run pandas work)."""
    run_codes, run_names = pd.factorize(curves["run"])
    iterations = pd.to_numeric(curves["iteration"], errors="coerce")
    it_codes, its = pd.factorize(iterations, sort=True)
    cube = np.full((len(run_names), len(its), len(metrics)), np.nan)
    values = curves[metrics].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    keep = it_codes >= 0  # rows without a usable iteration number are left out
    cube[run_codes[keep], it_codes[keep]] = values[keep]
    return cube, run_names, np.asarray(its, dtype=float)


@dataclass
class _Curves:
    """Everything a learning-curve figure draws, prepared once for all figures."""

    cube: np.ndarray  # runs x iterations x metrics
    x: np.ndarray  # the evaluated iterations
    metrics: list[str]
    configs: list[str]  # configuration labels, one colour each
    config_of: np.ndarray  # per run: its configuration's index
    best_its: np.ndarray  # per run: its best iteration (nan: unknown)
    best_x: float  # the best run's best iteration (nan: none)
    unit: str
    keys: str  # the keys the configuration labels give the values of
    pruned: np.ndarray  # per run: pruned by a search (dotted, left out of the mean)

    def panel(self, ax: Any, m: int, colours: list[Any]) -> None:
        """Runs, mean ± std bands, best-iteration dots and the best run's line for metric
        ``m``: a few collections whatever the number of runs (profiled: building artists
        one by one was most of the drawing time)."""
        from matplotlib.collections import LineCollection, PolyCollection
        from matplotlib.colors import to_rgba
        from matplotlib.ticker import MaxNLocator

        x, values = self.x, self.cube[:, :, m]
        lines = [np.column_stack([x, row])[~np.isnan(row)] for row in values]
        kept = self.config_of[~self.pruned]  # a pruned run's partial curve is not averaged
        counts = np.bincount(kept, minlength=len(colours))[self.config_of]
        alone = (counts == 1) & ~self.pruned  # its own mean: drawn solid
        line_colours = [to_rgba(colours[c], 0.9 if single else 0.35)
                        for c, single in zip(self.config_of, alone, strict=True)]  # fmt: skip
        styles = [":" if p else "-" for p in self.pruned]  # dotted: dashed is the best run
        ax.add_collection(LineCollection(lines, colors=line_colours, linewidths=1.2,
                                         linestyles=styles))  # fmt: skip
        means, bands, band_colours = [], [], []
        for c, colour in enumerate(colours):
            group = values[(self.config_of == c) & ~self.pruned]
            if len(group) < 2:
                continue
            with warnings.catch_warnings():  # iterations only one run reached (early stop)
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(group, axis=0)
                std = np.nan_to_num(np.nanstd(group, axis=0, ddof=1))
            keep = ~np.isnan(mean)
            xs, mean, std = x[keep], mean[keep], std[keep]
            means.append(np.column_stack([xs, mean]))
            bands.append(np.vstack([np.column_stack([xs, mean - std]),
                                    np.column_stack([xs, mean + std])[::-1]]))  # fmt: skip
            band_colours.append(colour)
        if bands:
            ax.add_collection(PolyCollection(bands, facecolors=band_colours, alpha=0.2, lw=0))
            ax.add_collection(LineCollection(means, colors=band_colours, linewidths=2))
        marks = np.flatnonzero(np.isin(self.best_its, x))  # best iteration was evaluated
        if len(marks):
            ys = values[marks, np.searchsorted(x, self.best_its[marks])]
            ax.scatter(self.best_its[marks], ys, s=22, edgecolors="black", linewidths=0.6,
                       c=[colours[self.config_of[r]] for r in marks], zorder=3)  # fmt: skip
        if not np.isnan(self.best_x):
            ax.axvline(self.best_x, color="black", linestyle="--", linewidth=1, alpha=0.6)
        ax.autoscale_view()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))  # short tick labels
        ax.set_xlabel(self.unit)
        ax.set_title(short(self.metrics[m], 40), fontsize=10)
        ax.grid(alpha=0.3)

    def legend(self, plt: Any, colours: list[Any]) -> list[Any]:
        """Up to 10 configurations, then what the dots and the dashed line mean."""
        line = plt.Line2D
        handles = [line([], [], color=colour, label=short(name, 60))
                   for colour, name in zip(colours, self.configs, strict=True)][:10]  # fmt: skip
        if len(self.configs) > 10:
            more = f"+{len(self.configs) - 10} more (colours repeat)"
            handles.append(line([], [], linestyle="", label=more))
        handles.append(line([], [], marker="o", color="grey", markeredgecolor="black",
                            linestyle="", label=f"best {self.unit} of a run"))  # fmt: skip
        if self.pruned.any():
            handles.append(line([], [], color="grey", linestyle=":",
                                label="pruned run (not in the mean)"))  # fmt: skip
        if not np.isnan(self.best_x):
            handles.append(line([], [], color="black", linestyle="--", alpha=0.6,
                                label=f"best run: {self.unit} {self.best_x:g}"))  # fmt: skip
        return handles

    def make(self, plt: Any, group: list[int]) -> Any:
        """One figure: a panel per metric of ``group``, a legend below them. Margins are
        fixed in inches (y tick labels have at most about 7 characters: see panel), not a
        constrained layout: that drew every figure once more (40% of its time, profiled)."""
        colours = [plt.get_cmap("tab10")(i % 10) for i in range(len(self.configs))]
        ncols = 1 if len(group) == 1 else 2 if len(group) in (2, 4) else 3
        nrows = math.ceil(len(group) / ncols)
        handles = self.legend(plt, colours)
        width = 7.0 if ncols == 1 else 4.1 * ncols
        # as many legend columns as the widest entry allows: a wider legend would be cut
        widest = max(0.065 * len(h.get_label()) + 0.6 for h in handles)
        columns = max(1, min(len(handles), int(0.95 * width // widest)))
        legend = 0.2 * math.ceil(len(handles) / columns) + (0.25 if self.keys else 0.05)
        panel_height = 3.6 if ncols == 1 else 2.6
        height = nrows * panel_height + (nrows - 1) * 0.75 + 0.35 + 0.6 + legend
        fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
        fig.subplots_adjust(left=0.85 / width, right=1 - 0.2 / width, top=1 - 0.35 / height,
                            bottom=(0.6 + legend) / height, wspace=0.9 / (width / ncols - 0.9),
                            hspace=0.75 / panel_height)  # fmt: skip
        for ax, m in zip(axes.flat, group, strict=False):
            self.panel(ax, m, colours)
        for ax in list(axes.flat)[len(group) :]:
            ax.set_visible(False)
        fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), fontsize=8,
                   frameon=False, ncols=columns, title=short(self.keys, 120) or None,
                   title_fontsize=8)  # fmt: skip
        return fig


def _prepare(experiment: Experiment, agg: Aggregated, best_run: str | None) -> _Curves | None:
    curves = experiment.curves
    if curves.empty or "iteration" not in curves.columns:
        return None
    metrics = [c for c in experiment.curves_metrics if c not in SKIP_CURVES]
    cube, run_names, x = _cube(curves, metrics)
    with warnings.catch_warnings():  # a run without any value of a metric
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanmax(cube, axis=1) - np.nanmin(cube, axis=1)  # runs x metrics
    changing = [i for i in range(len(metrics)) if (spread[:, i] > 0).any()]  # nan: no
    if not changing:
        return None
    runs = experiment.runs
    label_of = dict(zip(runs["run"], config_labels(runs, agg.group_keys), strict=True))
    configs = list(dict.fromkeys(label_of[r] for r in run_names))
    config_of = np.array([configs.index(label_of[r]) for r in run_names])
    best = runs.set_index("run")["best_iteration"].reindex(run_names)
    best_its = pd.to_numeric(best, errors="coerce").to_numpy(dtype=float)
    best_x = best_its[list(run_names).index(best_run)] if best_run in run_names else np.nan
    pruned = (runs.set_index("run")["status"].reindex(run_names) == "pruned").to_numpy()
    return _Curves(cube[:, :, changing], x, [metrics[i] for i in changing], configs,
                   config_of, best_its, float(best_x), unit(experiment),
                   ", ".join(agg.group_keys), pruned)  # fmt: skip


def learning_curve_figures(
    experiment: Experiment, agg: Aggregated, out: Path, best_run: str | None = None
) -> list[Figure]:
    """One figure per group of metrics that move together, a panel per metric: a line per
    run, one colour per configuration, mean ± std bands, a dot at each run's best
    iteration and a dashed line at the best run's. A metric that never changes within any
    run (the learning rate without a scheduler) gets no panel."""
    data = _prepare(experiment, agg, best_run)
    if data is None:
        return []
    figures = []
    for group in together(data.cube, data.metrics):
        names = [data.metrics[i] for i in group]
        caption = (f"{', '.join(names)} per {data.unit}"
                   + (" (panels: these metrics move together)" if len(names) > 1 else "")
                   + ": a thin line per run, a colour per configuration; thick line and band: "
                   f"mean ± std over a configuration's runs; dots: each run's best {data.unit}"
                   + (f"; dashed line: the best run's ({best_run})" if best_run else "")
                   + ("; dotted: runs a search pruned, left out of the means"
                      if data.pruned.any() else "") + ".")  # fmt: skip
        path = out / file_name(f"curves_{names[0]}", *names[1:])
        figures.append(Figure(path, functools.partial(data.make, group=group), None, caption,
                              "curves"))  # fmt: skip
    return figures
