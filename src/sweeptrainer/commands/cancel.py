"""``trainer cancel``: stop running runs the graceful way (SIGTERM), so they save their
state and resume when the command runs again, rather than being killed mid-step."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sweeptrainer.commands import experiment_parser

VERB = "cancel"
USAGE = ("trainer cancel EXPERIMENT_DIR [RUN ...]  stop running runs gracefully (they resume)",)


def parser() -> argparse.ArgumentParser:
    parser = experiment_parser(
        VERB,
        "Ask running runs on this host to stop (SIGTERM): they save states/last.pt, are\n"
        "marked interrupted, and resume when the command runs again. Exit code 1 when a run\n"
        "could not be asked.",
        dry_run=False,
        epilog="""\
examples:
  trainer cancel results/default             every running run of the experiment
  trainer cancel results/default RUN_NAME    only that run (trainer status lists them)
""",
    )
    parser.add_argument(
        "runs", nargs="*", metavar="RUN", help="run names (default: every running run)"
    )
    return parser


def run(args: Sequence[str]) -> int:
    from sweeptrainer.monitor import cancel

    ns = parser().parse_args(args)
    signalled, missed = cancel(ns.experiment_dir, ns.runs)
    for name in signalled:
        print(f"asked {name} to stop (SIGTERM)")
    for line in missed:
        print(f"could not stop {line}")
    if not signalled and not missed:
        print("no running runs")
    return 1 if missed else 0
