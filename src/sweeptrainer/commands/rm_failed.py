"""``trainer rm-failed``: delete an experiment's failed runs, so a rerun starts them anew
and their folders stop filling the disk."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sweeptrainer.commands import experiment_parser

VERB = "rm-failed"
USAGE = ("trainer rm-failed EXPERIMENT_DIR   delete failed runs (--yes, --dry-run)",)


def parser() -> argparse.ArgumentParser:
    parser = experiment_parser(
        VERB,
        "Delete the run folders of the experiment's failed runs (status.yaml: failed), after\n"
        "listing them and asking. A run that a process is training right now is kept.",
        epilog="""\
examples:
  trainer rm-failed results/default             list the failed runs, ask, delete them
  trainer rm-failed results/default --dry-run   only list them
  trainer rm-failed results/default --yes       delete without asking
""",
    )
    parser.add_argument("--yes", "-y", action="store_true", help="delete without asking")
    return parser


def run(args: Sequence[str]) -> int:
    from sweeptrainer.maintenance import rm_failed

    ns = parser().parse_args(args)
    rm_failed(ns.experiment_dir, yes=ns.yes, dry_run=ns.dry_run)
    return 0
