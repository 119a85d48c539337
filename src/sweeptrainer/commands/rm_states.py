"""``trainer rm-states``: free the disk that a sweep's saved states take, keeping the two
that evaluation and resuming need (best.pt, last.pt)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sweeptrainer.commands import experiment_parser

VERB = "rm-states"
USAGE = ("trainer rm-states EXPERIMENT_DIR   delete states except best.pt and last.pt",)


def parser() -> argparse.ArgumentParser:
    parser = experiment_parser(
        VERB,
        "Delete the state files of the experiment's runs except states/best.pt and\n"
        "states/last.pt, after listing them and asking (with their total size). The states of\n"
        "a run that a process is training right now are kept.",
        epilog="""\
examples:
  trainer rm-states results/default               delete states other than best.pt, last.pt
  trainer rm-states results/default --dry-run     only list them
  trainer rm-states results/default --best-only   keep only best.pt
""",
    )
    parser.add_argument(
        "--best-only",
        action="store_true",
        help="keep only best.pt (a run without last.pt cannot be resumed or continued)",
    )
    parser.add_argument("--yes", "-y", action="store_true", help="delete without asking")
    return parser


def run(args: Sequence[str]) -> int:
    from sweeptrainer.maintenance import rm_states

    ns = parser().parse_args(args)
    rm_states(ns.experiment_dir, best_only=ns.best_only, dry_run=ns.dry_run, yes=ns.yes)
    return 0
