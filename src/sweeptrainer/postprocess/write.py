"""Write the tables, plots and report into ``EXPERIMENT_DIR/postprocessing/``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sweeptrainer.io.atomic import atomic_write, atomic_write_text
from sweeptrainer.postprocess import plots as plotting
from sweeptrainer.postprocess.aggregate import Aggregated, aggregate_stratified
from sweeptrainer.postprocess.collect import Experiment
from sweeptrainer.postprocess.report import render


def _best_run(experiment: Experiment) -> str | None:
    column = f"dev_{experiment.tracking}"
    runs = experiment.runs[experiment.runs["status"] == "finished"]
    if column not in runs.columns or runs.empty:
        return None
    values = pd.to_numeric(runs[column], errors="coerce")
    index = values.idxmax() if experiment.higher_is_better else values.idxmin()
    return str(runs.loc[index, "run"])


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


def write_all(experiment: Experiment, agg: Aggregated, with_plots: bool = True) -> list[Path]:
    out = experiment.out_dir
    out.mkdir(parents=True, exist_ok=True)
    figures: list[plotting.Figure] = []
    if with_plots:
        figures += plotting.test_metric_figures(experiment, agg, out)
        figures += plotting.confusion_figures(experiment, _best_run(experiment), out)
        figures += plotting.learning_curve_figures(experiment, agg, out)
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
    atomic_write_text(report, render(experiment, agg, images, stratified))
    return [*files, *images, report]
