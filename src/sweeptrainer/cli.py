"""The ``trainer`` command: the registry of its verbs, and the dispatch.

Each verb is a module of :mod:`sweeptrainer.commands` (its usage lines, its parser, its
``run``), imported only when it runs, so that ``trainer --help`` starts fast. Adding a verb
is one module there and one line in ``VERBS``; the usage block of ``trainer --help`` and the
CLI reference of the docs are made from the registry, so they list every verb.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from sweeptrainer import __version__

# verb -> its module in sweeptrainer.commands. This order is the order of the verbs in
# messages, shell completion, the docs and (after training's) the usage block of --help.
VERBS: dict[str, str] = {
    "status": "status",
    "cancel": "cancel",
    "create": "create",
    "list": "list_group",
    "show": "show_option",
    "inference": "inference",
    "validate": "validate",
    "preprocess": "preprocess",
    "rm-failed": "rm_failed",
    "rm-states": "rm_states",
    "postprocess": "postprocess",
}
TRAIN = "train"  # the module of `trainer [-m] [OVERRIDES]`, the command without a verb
PACKAGE = "sweeptrainer.commands"

# what `trainer --help` prints after the usage block
ABOUT = f"""\
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
command again finishes it: finished runs are skipped, interrupted or killed runs
resume from states/last.pt, failed runs are retried (max_retries), new runs train.
Ctrl-C / SIGTERM / SIGUSR1 save the state after the current step and stop.
Exit codes: 0 ok, 1 a run failed, 2 bad input, 128+N stopped by signal N.
Hydra's own options: trainer --hydra-help.
"""


def command(verb: str | None) -> ModuleType:
    """The module of ``verb`` (``None``: training), imported on this first use."""
    return importlib.import_module(f"{PACKAGE}.{TRAIN if verb is None else VERBS[verb]}")


def usage() -> str:
    """The usage block of ``trainer --help``: every module's usage lines, in registry order."""
    modules = dict.fromkeys([command(None), *(command(verb) for verb in VERBS)])
    lines = [line for module in modules for line in module.USAGE]
    lines.append("trainer --help | --version")
    return "".join(f"{'usage:' if i == 0 else '':6} {line}\n" for i, line in enumerate(lines))


def help_text(verb: str | None = None) -> str:
    """What ``trainer --help`` (with a verb: ``trainer VERB --help``) prints; argparse wraps
    a parser's help to the terminal's width (the ``COLUMNS`` variable)."""
    if verb is None:
        return f"{usage()}\n{ABOUT}"
    module = command(verb)
    if hasattr(module, "parser"):
        return str(module.parser().format_help())
    return str(module.HELP)


def main(argv: Sequence[str] | None = None) -> None:
    """The ``trainer`` entry point: a verb, or overrides for Hydra."""
    args = list(sys.argv[1:] if argv is None else argv)
    # our packaged hydra/launcher=ray shares its name with the plugin's own config: Hydra 1.3
    # warns about that on every composition, though our file is complete by itself
    warnings.filterwarnings(
        "ignore", r"\s*'hydra/launcher/ray' is validated against ConfigStore", UserWarning
    )
    if args[:1] in (["-h"], ["--help"], ["help"]):
        print(help_text(), end="")
        sys.exit(0)
    if args[:1] == ["--version"]:
        print(f"sweeptrainer {__version__}")
        sys.exit(0)
    from sweeptrainer.errors import ConfigError
    from sweeptrainer.sweep.args import error

    if args and args[0] in VERBS:
        try:
            sys.exit(command(args[0]).run(args[1:]))
        except ConfigError as err:
            sys.exit(error(str(err)))
        except OSError as err:
            sys.exit(_refused(args[0], err))
    problem = bare_word(args)
    if problem:
        sys.exit(error(problem))
    sys.exit(command(None).run(args))


def _refused(verb: str, err: OSError) -> int:
    """A verb that writes (postprocess, rm-states, ...) on a read-only, full or foreign
    folder: one line saying which folder and why, exit 1; anything else is a bug: raised."""
    from sweeptrainer.io.atomic import storage_fault
    from sweeptrainer.sweep.args import error

    fault = storage_fault(err, Path(err.filename)) if err.filename else None
    if not isinstance(fault, OSError):  # None: not the storage's doing
        raise err
    return error(f"{verb}: {fault.strerror}; stopped there", 1)


def bare_word(args: Sequence[str]) -> str | None:
    """A word that is neither a verb, an override (``key=value``, ``~key``) nor a flag:
    a misspelt verb, or ``key value`` for ``key=value``. Hydra would answer with a parser
    error about a missing '='."""
    from sweeptrainer.errors import did_you_mean
    from sweeptrainer.sweep.args import VALUE_FLAGS

    after_flag = False
    for i, word in enumerate(args):
        if after_flag or word.startswith("-"):
            after_flag = word in VALUE_FLAGS or word in ("--info", "-i")
            continue
        if "=" in word or word.startswith("~"):
            continue
        hint = did_you_mean(word, VERBS)
        if i == 0 and hint:
            return f"unknown command {word!r}{hint}; commands: {', '.join(VERBS)}"
        following = args[i + 1] if i + 1 < len(args) else None
        pair = f" (did you mean {word}={following}?)" if following and "=" not in following else ""
        return (
            f"{word!r} is not a command nor an override: overrides are key=value{pair}; "
            f"commands: {', '.join(VERBS)} (trainer --help)"
        )
    return None
