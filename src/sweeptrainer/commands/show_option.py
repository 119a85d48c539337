"""``trainer show GROUP NAME``: one option's YAML with its comments, the reference for its
keys, and (``--save``) a copy in ./conf to edit."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from sweeptrainer.commands import user_conf, verb_parser

VERB = "show"
USAGE = ()  # shown on the line of list (commands/list_group.py)


def parser() -> argparse.ArgumentParser:
    from sweeptrainer import catalog

    parser = verb_parser(
        VERB,
        description="Print one option's YAML file (yours in ./conf/GROUP/ or the packaged one),\n"
        "after a line naming the file.",
        epilog="""\
examples:
  trainer show model CNN
  trainer show dataset Files          every key of the Files dataset, with a comment each
  trainer show optimizer Adam --save  copy it to ./conf/optimizer/Adam.yaml to edit it
""",
    )
    parser.add_argument(
        "group", metavar="GROUP", help="a config group: " + ", ".join(catalog.GROUPS)
    )
    parser.add_argument("name", metavar="NAME", help="the option (trainer list GROUP shows them)")
    parser.add_argument(
        "--save",
        action="store_true",
        help="copy it into ./conf/GROUP/ for editing (it then replaces ours)",
    )
    return parser


def run(args: Sequence[str]) -> int:
    from sweeptrainer import catalog

    ns = parser().parse_args(args)
    option = catalog.find(ns.group, ns.name, user_conf())
    print(f"# {option.path} ({option.source})")
    print(option.path.read_text(encoding="utf-8"), end="")
    if ns.save:
        print(f"saved to {catalog.save(option, Path('conf').resolve())}")
    return 0
