"""Postprocessing: an experiment's run folders -> tables, aggregates over seeds, plots, a report.

``trainer postprocess EXPERIMENT_DIR`` calls :func:`postprocess`; everything goes to
``EXPERIMENT_DIR/postprocessing/``.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def postprocess(
    experiment_dir: str | Path, aggregate_by: tuple[str, ...] = ("seed",), plots: bool = True
) -> Summary:
    """Collect, aggregate, write tables, plots and ``report.html``; return a summary."""
    from sweeptrainer.postprocess.aggregate import aggregate
    from sweeptrainer.postprocess.collect import collect
    from sweeptrainer.postprocess.write import write_all

    experiment = collect(experiment_dir)
    aggregated = aggregate(experiment, aggregate_by)
    files = write_all(experiment, aggregated, plots)
    finished = int((experiment.runs["status"] == "finished").sum())
    return Summary(experiment.out_dir, len(experiment.runs), finished, aggregated.best,
                   aggregated.bests, files)  # fmt: skip
