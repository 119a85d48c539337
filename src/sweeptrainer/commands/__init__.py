"""The verbs of ``trainer``, one module each, so that a verb is one file to read or add.

A command module has ``VERB`` (its name; ``None`` for training, which has none), ``USAGE``
(its lines of the usage block of ``trainer --help``), ``run(args) -> int`` (the exit code)
and either ``parser()`` (its argparse parser) or ``HELP`` (its help text): the docs
generator reads its help from there. :mod:`sweeptrainer.cli` registers the modules and
imports one only when its verb runs; heavy imports (torch, pandas, Hydra) stay inside
functions, so that ``trainer --help`` starts fast. This package holds what verbs share.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

HYDRA_OPTIONS = """\
positional arguments:
  OVERRIDES             config overrides, as when training: key=value, group=option,
                        +key=value (a key the config lacks), ~key (remove a key); with -m,
                        key=a,b,c sweeps over the values

options:
  -h, --help            show this help message and exit
  -m, --multirun        every run of the sweep: the comma-separated values of OVERRIDES
                        combined with the sweep the config declares (hydra.sweeper.params);
                        for a search sweeper (Optuna), a sample that tries each choice once
  --config-dir DIR, -cd DIR
                        your config folder, searched before the packaged library
                        (default: ./conf when the current folder has one)
  --config-name NAME, -cn NAME
                        the main config: NAME.yaml (default: config)

Hydra's other flags (--cfg, --info, ...) are accepted and have no effect here.
"""


def verb_parser(verb: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
    """A verb's argparse parser: ``trainer VERB``, its description and examples as written."""
    import argparse

    return argparse.ArgumentParser(
        prog=f"trainer {verb}",
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def experiment_parser(
    verb: str, description: str, dry_run: bool = True, epilog: str = ""
) -> argparse.ArgumentParser:
    """The parser of a verb that works on an experiment folder (status, rm-failed, ...)."""
    parser = verb_parser(verb, description=description, epilog=epilog)
    parser.add_argument(
        "experiment_dir",
        metavar="EXPERIMENT_DIR",
        help="an experiment folder: <results_dir>/<experiment_id>",
    )
    if dry_run:
        parser.add_argument(
            "--dry-run", action="store_true", help="only list what would be removed"
        )
    return parser


def user_conf() -> Path | None:
    """The user's config folder, ./conf, when there is one."""
    return Path("conf").resolve() if Path("conf").is_dir() else None
