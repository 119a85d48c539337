"""Postprocessing: an experiment's run folders -> tables, aggregates over seeds, plots, a report.

``trainer postprocess EXPERIMENT_DIR`` calls :func:`postprocess`; everything goes to
``EXPERIMENT_DIR/postprocessing/``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Summary:
    """What a postprocessing pass wrote and found."""

    folder: Path
    runs: int
    finished: int
    best: dict[str, Any] | None
    bests: list[dict[str, Any]]  # one per tracking metric, when runs of several are mixed
    files: list[Path]
    pruned: int = 0  # runs a search pruned: final, not aggregated
    notes: list[str] = field(default_factory=list)  # what was not read (a study journal)


def postprocess(
    experiment_dir: str | Path, aggregate_by: tuple[str, ...] = ("seed",), plots: bool = True
) -> Summary:
    """Collect, aggregate, write tables, plots and ``report.html``; return a summary."""
    from sweeptrainer.postprocess.aggregate import aggregate
    from sweeptrainer.postprocess.collect import OUT_DIR, collect
    from sweeptrainer.postprocess.search import read_searches
    from sweeptrainer.postprocess.write import check_out_dir, write_all

    check_out_dir(Path(experiment_dir) / OUT_DIR)  # before the runs are read: refused at once
    experiment = collect(experiment_dir)
    aggregated = aggregate(experiment, aggregate_by)
    searches = read_searches(experiment)
    files = write_all(experiment, aggregated, plots, searches)
    states = experiment.runs["status"]
    finished, pruned = int((states == "finished").sum()), int((states == "pruned").sum())
    return Summary(experiment.out_dir, len(experiment.runs), finished, aggregated.best,
                   aggregated.bests, files, pruned, searches.notes)  # fmt: skip


def run_postprocess(experiment_dir: str | Path, aggregate_by: Sequence[str], plots: bool) -> int:
    """Postprocess and print what was found (the verb, and the end of a sweep); what it
    refuses (a ``postprocessing/`` that is a link out) is one line, exit code 2."""
    from sweeptrainer.errors import ConfigError

    try:
        summary = postprocess(
            experiment_dir, tuple(k.strip() for k in aggregate_by if k.strip()), plots
        )
    except ConfigError as err:  # as the command line says it, also at the end of a sweep
        print(f"trainer: error: {err}", file=sys.stderr)
        return 2
    for note in summary.notes:
        print(f"warning: {note}", file=sys.stderr)
    pruned = f", {summary.pruned} pruned" if summary.pruned else ""
    print(f"postprocessed {summary.runs} runs ({summary.finished} finished{pruned}) -> "
          f"{summary.folder}")  # fmt: skip
    if summary.pruned:
        print(f"  {summary.pruned} run(s) pruned by a search: left out of the aggregates")
    if summary.runs > summary.finished + summary.pruned:
        unfinished = summary.runs - summary.finished - summary.pruned
        print(f"  {unfinished} run(s) not finished: see status in runs.csv")
    if summary.best is None and len(summary.bests) > 1:
        print("  runs tracked by different metrics (datasets, tasks) are ranked apart:")
    for found in summary.bests:
        best = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in found.items())  # fmt: skip
        print(f"  best configuration: {best}")
    print(f"  report: {summary.folder / 'report.html'}")
    return 0
