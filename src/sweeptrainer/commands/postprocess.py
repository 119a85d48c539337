"""``trainer postprocess``: an experiment's results as tables, seed aggregates, plots and a
report, from its run folders alone (so it runs anywhere, any time after training)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sweeptrainer.commands import experiment_parser

VERB = "postprocess"
USAGE = ("trainer postprocess EXPERIMENT_DIR tables, seed aggregates, plots, report.html",)


def parser() -> argparse.ArgumentParser:
    parser = experiment_parser(
        VERB,
        "Tables, aggregates over seeds, plots and an HTML report for an experiment, written\n"
        "to EXPERIMENT_DIR/postprocessing/ (docs/postprocessing.md describes the files).",
        dry_run=False,
        epilog="""\
examples:
  trainer postprocess results/default
  trainer postprocess results/default --aggregate-by seed,optimizer   average over both
  trainer postprocess results/default --no-plots
""",
    )
    parser.add_argument(
        "--aggregate-by",
        default="seed",
        metavar="KEYS",
        help="comma-separated config keys (or groups) to average over (default: seed)",
    )
    parser.add_argument("--no-plots", action="store_true", help="tables and report only")
    return parser


def run(args: Sequence[str]) -> int:
    ns = parser().parse_args(args)
    from sweeptrainer.postprocess import run_postprocess

    return run_postprocess(ns.experiment_dir, ns.aggregate_by.split(","), not ns.no_plots)
