"""The ``trainer`` command: verbs and dispatch only.

``trainer [OVERRIDES]`` and ``trainer -m [OVERRIDES]`` go to Hydra; other verbs
(added by later issues) are subcommands. Before Hydra launches anything, every
run of the command is composed and checked, so input errors exit with code 2
and one readable message, and no run starts.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sweeptrainer import __version__

HELP = f"""\
usage: trainer [OVERRIDES ...]            train the composed config (one run)
       trainer -m [OVERRIDES ...]         a sweep: key=a,b runs every combination
       trainer --help | --version

sweeptrainer {__version__}: a YAML sweep trainer for PyTorch.

The config is composed from the packaged library and ./conf (or --config-dir DIR):
groups dataset, model, optimizer, scheduler, criterion; main keys such as
iterations, training_type, learning_rate, batch_size, seed (see docs/configuration.md).

examples:
  trainer                                     Digits + FFNN + Adam, 20 epochs
  trainer model=CNN learning_rate=0.01
  trainer training_type=step iterations=300 eval_frequency=50
  trainer -m learning_rate=0.01,0.001 seed=1,2

Runs land in <results_dir>/<experiment_id>/training/<run_name>/. Running the same
command again skips finished runs. Exit codes: 0 ok, 1 a run failed, 2 bad input.
Hydra's own options: trainer --hydra-help.
"""

# Hydra options that take a value, and those after which nothing is trained.
VALUE_FLAGS = {
    "--config-dir",
    "-cd",
    "--config-name",
    "-cn",
    "--config-path",
    "-cp",
    "--cfg",
    "-c",
    "--package",
    "-p",
    "--experimental-rerun",
}
INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
NO_TRAIN_FLAGS = {
    "--cfg",
    "-c",
    "--info",
    "-i",
    "--hydra-help",
    "--shell-completion",
    "-sc",
    "--experimental-rerun",
}


@dataclass
class HydraArgs:
    """The command line split into Hydra's flags and the config overrides."""

    overrides: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    config_dir: str | None = None
    config_name: str | None = None
    multirun: bool = False
    trains: bool = True

    @classmethod
    def parse(cls, args: Sequence[str]) -> HydraArgs:
        out = cls()
        tokens = list(args)
        while tokens:
            token = tokens.pop(0)
            name, eq, value = token.partition("=")
            if not token.startswith("-"):
                out.overrides.append(token)
                continue
            if name in VALUE_FLAGS and not eq:
                value = tokens.pop(0) if tokens else ""
            elif name in ("--info", "-i") and tokens and tokens[0] in INFO_CHOICES:
                value = tokens.pop(0)
            if name in ("--config-dir", "-cd"):
                out.config_dir = value
                continue
            if name in ("--config-name", "-cn"):
                out.config_name = value
                continue
            out.multirun |= name in ("-m", "--multirun")
            out.trains &= name not in NO_TRAIN_FLAGS
            out.flags += [name, value] if value and not eq else [token]
        return out


def _error(message: str, code: int = 2) -> int:
    print(f"trainer: error: {message}", file=sys.stderr)
    return code


def preflight(sources, hargs: HydraArgs) -> None:
    """Compose and validate every run of the command; raise ConfigError on the first bad one."""
    from sweeptrainer.config.compose import compose, sweep_overrides
    from sweeptrainer.config.schema import validate
    from sweeptrainer.errors import ConfigError

    runs = sweep_overrides(sources, hargs.overrides, hargs.multirun)
    for overrides in runs:
        try:
            validate(compose(sources, overrides))
        except ConfigError as err:
            where = f"in the run with {' '.join(overrides)}: " if len(runs) > 1 else ""
            raise ConfigError(f"{where}{err}") from None


def run_hydra(args: Sequence[str]) -> int:
    """Compose, check, then hand the command to Hydra; the exit code from the outcomes."""
    from sweeptrainer.config.compose import ConfigSources
    from sweeptrainer.errors import ConfigError
    from sweeptrainer.logs import configure_console

    configure_console()
    # Like `python -m`, modules in the current folder (a user's model) are importable.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    hargs = HydraArgs.parse(args)
    try:
        sources = ConfigSources.find(hargs.config_dir, hargs.config_name, Path.cwd())
        if hargs.trains:
            preflight(sources, hargs)
    except ConfigError as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            traceback.print_exc()
        return _error(str(err))

    import hydra

    from sweeptrainer.app import RunOutcome, make_task

    outcomes: list[RunOutcome] = []
    argv = [sys.argv[0], *hargs.flags, *hargs.overrides, *sources.hydra_overrides()]
    saved, sys.argv = sys.argv, argv
    try:
        main_fn = hydra.main(
            config_path=str(sources.primary), config_name=sources.config_name, version_base="1.3"
        )(make_task(outcomes))
        main_fn()
    finally:
        sys.argv = saved
    return summarize(outcomes, hargs.multirun)


def summarize(outcomes: list, multirun: bool) -> int:
    """Print a sweep's tally and failed runs; 2 if any input was bad, 1 if any run failed."""
    if multirun and outcomes:
        counts = {s: sum(o.state == s for o in outcomes) for s in ("finished", "skipped", "failed")}
        invalid = sum(o.state == "invalid" for o in outcomes)
        print(
            f"sweep: {len(outcomes)} runs: {counts['finished']} trained, {counts['skipped']} "
            f"skipped (finished before), {counts['failed']} failed"
            + (f", {invalid} invalid" if invalid else "")
        )
        for o in outcomes:
            if o.state == "failed":
                print(f"  failed: {o.name}: {o.error} (see {o.path}/train.log)")
    return max((o.exit_code for o in outcomes), default=0)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"], ["help"]):
        print(HELP, end="")
        sys.exit(0)
    if args[:1] == ["--version"]:
        print(f"sweeptrainer {__version__}")
        sys.exit(0)
    sys.exit(run_hydra(args))
