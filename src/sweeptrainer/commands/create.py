"""``trainer create``: a new user's first step, a project that runs as it is and shows where
their own config and code go."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from sweeptrainer.commands import verb_parser

VERB = "create"
USAGE = ("trainer create [DIR] [--template NAME]   a ready-to-run project (--list: templates)",)


def parser() -> argparse.ArgumentParser:
    parser = verb_parser(
        VERB,
        description="Write a ready-to-run project: conf/ + example code (and data, for some\n"
        "templates). Existing files are not overwritten without --force.",
        epilog="""\
examples:
  trainer create myproject                     the quickstart template into ./myproject
  trainer create myaudio --template audio      a project over audio files
  trainer create --list                        the templates, one line each
""",
    )
    parser.add_argument(
        "dir",
        nargs="?",
        default=".",
        metavar="DIR",
        help="where to write the project (default: the current folder)",
    )
    parser.add_argument(
        "--template",
        "-t",
        default="quickstart",
        metavar="NAME",
        help="which template (default: quickstart; --list shows all)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument(
        "--list", action="store_true", help="list the templates and exit (writes nothing)"
    )
    return parser


def run(args: Sequence[str]) -> int:
    from sweeptrainer.create import TEMPLATES, create

    ns = parser().parse_args(args)
    if ns.list:
        width = max(len(t.name) for t in TEMPLATES)
        for template in TEMPLATES:
            print(f"{template.name:{width}}  {template.summary}")
        return 0
    target = Path(ns.dir)
    written = create(target, ns.template, ns.force)
    print(f"created a {ns.template} project in {target}: {len(written)} files")
    data: dict[str, int] = {}  # data files are counted per folder, not listed
    for path in written:
        rel = path.relative_to(target)
        if rel.parts[0] == "data" and len(rel.parts) > 2:
            data["/".join(rel.parts[:2])] = data.get("/".join(rel.parts[:2]), 0) + 1
        else:
            print(f"  {rel}")
    for folder, count in data.items():
        print(f"  {folder}/: {count} data files")
    where = "" if target.resolve() == Path.cwd().resolve() else f"cd {target} && "
    print(f"next: {where}trainer      (one run)   then   trainer -m   (the declared sweep)")
    return 0
