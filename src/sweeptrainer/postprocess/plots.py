"""Plots as PNG files (matplotlib, no display needed).

Each ``*_figures`` function prepares its figures as :class:`Figure` jobs (data ready,
nothing drawn); :func:`draw` renders them, on a multi-core Unix machine half of them
in a forked process, while the caller goes on with other work (the tables). Drawing
is most of postprocessing's time, so this halves it on two cores.
"""

from __future__ import annotations

import multiprocessing
import os
import re
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

# the report's sections, in page order (a figure names the one it belongs to)
SECTIONS = ("configurations", "curves", "search", "classes")


@dataclass
class Figure:
    """One PNG to draw: ``make(plt)`` builds the matplotlib figure, saved to ``path``;
    ``caption`` and ``section`` place it in the report."""

    path: Path
    make: Callable[[Any], Any]
    # fixed margins (x tick labels below); None: the figure lays itself out (constrained)
    bottom: float | None = 0.13
    caption: str = ""
    section: str = "configurations"


def file_name(*parts: str) -> str:
    """A safe PNG file name from metric or key names (they come from run folders: no
    path separators, no leading dot)."""
    name = "+".join(re.sub(r"[^A-Za-z0-9_.=-]+", "_", p) for p in parts).lstrip(".")
    return f"{name[:150] or 'figure'}.png"


def log_axis(key: str, values: Any) -> bool:
    """A logarithmic axis for learning rates (``learning_rate``, ``optimizer.lr``) and for
    any positive values spanning two decades or more."""
    values = np.asarray(values, dtype=float)
    if not len(values) or not (values > 0).all():
        return False
    name = key.rsplit(".", 1)[-1]
    rate = name in ("lr", "learning_rate") or name.endswith(("_lr", "_learning_rate"))
    return bool(rate or values.max() / values.min() >= 100)


def numeric(values: pd.Series) -> pd.Series | None:
    """``values`` as floats when every one is a number (booleans are not), else None."""
    if values.map(lambda v: isinstance(v, bool | np.bool_)).any():
        return None
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.astype(float) if numbers.notna().all() else None


def short(text: object, limit: int = 24) -> str:
    """A label cut to ``limit`` characters (class names, values) so that it fits."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


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


def config_labels(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    """A configuration's label per row: its values (``0.01, CNN``), the keys named once by
    the caller (axis label, legend title); ``all runs`` without keys."""
    if not keys:
        return ["all runs"] * len(frame)
    columns = [frame[k].tolist() for k in keys]  # not iterrows: it turns 64 into 64.0
    return [", ".join(_value(v) for v in values) for values in zip(*columns, strict=True)]


def _value(value: object) -> str:
    """A key's value in a label: 64 (not 64.0), 0.00316228 (6 digits tell swept values
    apart; labels also group the runs)."""
    if isinstance(value, float | np.floating) and not isinstance(value, bool):
        return f"{int(value)}" if float(value).is_integer() else f"{value:.6g}"
    return str(value)


def test_metric_figures(experiment: Experiment, agg: Aggregated, out: Path) -> list[Figure]:
    """Box plot of the test tracking metric per configuration, each run as a dot."""
    column = f"test_{experiment.tracking}"
    runs = experiment.runs[experiment.runs["status"] == "finished"]
    if column not in runs.columns or runs.empty:
        return []
    order = config_labels(agg.table, agg.group_keys) if len(agg.table) else []
    names = pd.Series(config_labels(runs, agg.group_keys), index=runs.index)
    values = [pd.to_numeric(runs.loc[names == name, column]).dropna().tolist() for name in order]
    # configurations without this metric (runs of another task in the experiment) are left out
    order, values = [o for o, v in zip(order, values, strict=True) if v], [v for v in values if v]
    if not values:
        return []

    def make(plt: Any) -> Any:
        fig, ax = plt.subplots(figsize=(min(14, max(5, 1.2 * len(order) + 2)), 4.2))
        ax.boxplot(values, showmeans=True)
        xs = [i for i, vals in enumerate(values, start=1) for _ in vals]
        ax.scatter(xs, [v for vals in values for v in vals], color="black", s=12, zorder=3)
        ticks = [short(o, 40) for o in order]
        ax.set_xlabel(short(", ".join(agg.group_keys), 120), fontsize=8)
        ax.set_xticks(range(1, len(order) + 1), ticks, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel(column)
        ax.set_title(f"{column} per configuration (best first)")
        ax.grid(alpha=0.3, axis="y")
        return fig

    caption = (f"{column} of every finished run per configuration, best first: box = "
               "quartiles, line = median, triangle = mean, dots = runs.")  # fmt: skip
    return [Figure(out / file_name(f"{column}_per_config"), make, 0.35, caption)]


def _save(fig: Any, path: Path, plt: Any, bottom: float | None) -> Path:
    from sweeptrainer.io.atomic import atomic_write

    # a figure with fixed margins (cheap) is cut to its tight bounding box, so that a long
    # label is not clipped; a constrained layout keeps its labels inside by itself (the
    # bounding box pass would draw it once more: a third of the drawing time, profiled)
    save: dict[str, Any] = {"format": "png", "dpi": 100}
    if bottom is not None:
        fig.subplots_adjust(left=0.13, right=0.97, top=0.9, bottom=bottom)
        save |= {"bbox_inches": "tight", "pad_inches": 0.1}
    atomic_write(path, lambda f: fig.savefig(f, **save))
    plt.close(fig)
    return path
