"""``trainer status``: where an experiment's runs stand, read from their folders only, so it
works for runs of any launcher on any host that shares the file system."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sweeptrainer.commands import experiment_parser

VERB = "status"
USAGE = ("trainer status EXPERIMENT_DIR      its runs and their progress (--watch)",)


def parser() -> argparse.ArgumentParser:
    parser = experiment_parser(
        VERB,
        "A table of an experiment's runs: state, progress, last dev metric, elapsed time, ETA\n"
        "and host:pid. It reads the run folders only, so it works for any launcher whose jobs\n"
        "share the file system.",
        dry_run=False,
        epilog="""\
examples:
  trainer status results/default
  trainer status results/default --watch      refresh every 5 s
  trainer status results/default --watch 30   refresh every 30 s
""",
    )
    parser.add_argument(
        "--watch",
        nargs="?",
        const=5.0,
        type=float,
        metavar="SECONDS",
        help="refresh every SECONDS (default 5) until Ctrl-C",
    )
    return parser


def run(args: Sequence[str]) -> int:
    from sweeptrainer.monitor import status_table, watch

    parse = parser()
    ns = parse.parse_args(args)
    if ns.watch is not None and not ns.watch > 0:  # 0, negative, nan
        parse.error(f"--watch: expected a positive number of seconds, got {ns.watch:g}")
    if ns.watch:
        try:
            watch(ns.experiment_dir, ns.watch)
        except KeyboardInterrupt:
            return 0
    print(status_table(ns.experiment_dir))
    return 0
