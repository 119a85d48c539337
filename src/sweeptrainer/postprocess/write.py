"""Write the tables, plots and report into ``EXPERIMENT_DIR/postprocessing/``."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from sweeptrainer.errors import ConfigError
from sweeptrainer.io.atomic import atomic_write, atomic_write_text
from sweeptrainer.postprocess import plots as plotting
from sweeptrainer.postprocess.aggregate import Aggregated, aggregate_stratified
from sweeptrainer.postprocess.classes import ClassReport, class_report, confusion_figures
from sweeptrainer.postprocess.collect import Experiment
from sweeptrainer.postprocess.curves import learning_curve_figures
from sweeptrainer.postprocess.hparams import hparam_figures, parallel_figures
from sweeptrainer.postprocess.report import render
from sweeptrainer.postprocess.search import Searches, search_figures


def _best_run(experiment: Experiment, tracking: str | None = None) -> str | None:
    """The finished run with the best dev ``tracking`` metric (default: the experiment's),
    by its own value, not its configuration's."""
    tracking = tracking or experiment.tracking
    column = f"dev_{tracking}"
    runs = experiment.runs[experiment.runs["status"] == "finished"]
    if column not in runs.columns or runs.empty:
        return None
    values = pd.to_numeric(runs[column], errors="coerce").dropna()
    if values.empty:
        return None
    higher = experiment.directions.get(str(tracking), experiment.higher_is_better)
    return str(runs.loc[values.idxmax() if higher else values.idxmin(), "run"])


def _class_report(experiment: Experiment) -> ClassReport | None:
    """Per-class results of the best run of the first tracking metric whose best run has
    single-label test outputs (a classifier ranked apart from regressors has them too)."""
    trackings = [experiment.tracking, *experiment.directions]
    for tracking in dict.fromkeys(t for t in trackings if t):
        report = class_report(experiment, _best_run(experiment, tracking))
        if report is not None:
            return report
    return None


def _unique_paths(figures: list[plotting.Figure]) -> None:
    """``name-2.png`` for a second figure whose file name came out the same (metric names
    differing only in characters a file name cannot hold)."""
    seen: set[Path] = set()
    for figure in figures:
        path, n = figure.path, 1
        while path in seen:
            n += 1
            path = figure.path.with_name(f"{figure.path.stem}-{n}.png")
        figure.path = path
        seen.add(path)


def _tables(name: str, frame: pd.DataFrame, out: Path) -> list[Path]:
    paths = [out / f"{name}.csv"]
    atomic_write(paths[0], lambda f: frame.to_csv(f, index=False))
    try:
        import pyarrow  # noqa: F401  (Parquet needs it; CSV is always written)

        paths.append(out / f"{name}.parquet")
        table = frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object})
        atomic_write(paths[1], lambda f: table.to_parquet(f, index=False))
    except ImportError:
        pass
    return paths


def check_out_dir(out: Path) -> None:
    """``postprocessing/`` is written only as a folder of the experiment's own: never
    through a symbolic link, which would have the tables and figures written (and older
    figures removed) in the folder it leads to, outside the experiment. Its files are each
    replaced by a rename, never written into: a link or another name of one stays as it was."""
    if out.is_symlink():
        raise ConfigError(
            f"{out} is a symbolic link (to {os.readlink(out)!r}): postprocess writes nothing "
            "through it; remove the link, and postprocessing/ is written anew"
        )
    if os.path.lexists(out) and not out.is_dir():
        raise ConfigError(f"{out} is not a folder: postprocess writes nothing there; remove it")


def write_all(
    experiment: Experiment,
    agg: Aggregated,
    with_plots: bool = True,
    searches: Searches | None = None,
) -> list[Path]:
    """Tables, figures (unless ``with_plots`` is false) and ``report.html``; their paths."""
    searches = searches or Searches()
    out = experiment.out_dir  # check_out_dir'ed by postprocess before the runs were read
    out.mkdir(parents=True, exist_ok=True)
    best_run = _best_run(experiment)
    classes = _class_report(experiment)
    figures: list[plotting.Figure] = []
    if with_plots:  # the costliest first (see plotting.draw); a section's in page order
        figures += learning_curve_figures(experiment, agg, out, best_run)
        figures += hparam_figures(experiment, agg, out)
        figures += parallel_figures(experiment, agg, out)
        figures += plotting.test_metric_figures(experiment, agg, out)
        figures += confusion_figures(classes, out)
        figures += search_figures(searches, experiment, out)
    _unique_paths(figures)
    files: list[Path] = []

    stratified = aggregate_stratified(experiment, agg)

    def tables() -> None:  # written while the figures are drawn
        files.extend(_tables("runs", experiment.runs, out))
        files.extend(_tables("curves", experiment.curves, out))
        files.extend(_tables("aggregated", agg.table, out))
        if not experiment.stratified.empty:  # metrics per group (`stratify`)
            files.extend(_tables("stratified", experiment.stratified, out))
            files.extend(_tables("stratified_aggregated", stratified, out))

    drawn = {f.path for f in figures}
    for stale in out.glob("*.png"):  # from an earlier pass (e.g. a metric no longer plotted)
        if stale not in drawn:
            stale.unlink()
    images = plotting.draw(figures, meanwhile=tables)
    report = out / "report.html"
    atomic_write_text(report, render(experiment, agg, figures, stratified, classes, searches))
    return [*files, *images, report]
