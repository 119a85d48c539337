"""``trainer list GROUP``: the options a config group offers, the packaged ones and the
user's, so that choosing one (``GROUP=NAME``) needs no look into the sources."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sweeptrainer.commands import user_conf, verb_parser

VERB = "list"
# one line for list and show (commands/show_option.py), as they go together
USAGE = ("trainer list GROUP / show GROUP NAME     the options of a config group / one's YAML",)


def parser() -> argparse.ArgumentParser:
    from sweeptrainer import catalog

    parser = verb_parser(
        VERB,
        description="The options of a config group: the packaged ones and yours (./conf/GROUP/),\n"
        "one line each.",
        epilog="""\
examples:
  trainer list model
  trainer list dataset
""",
    )
    parser.add_argument(
        "group", metavar="GROUP", help="a config group: " + ", ".join(catalog.GROUPS)
    )
    return parser


def run(args: Sequence[str]) -> int:
    from sweeptrainer import catalog

    ns = parser().parse_args(args)
    print(catalog.table(ns.group, user_conf()))
    return 0
