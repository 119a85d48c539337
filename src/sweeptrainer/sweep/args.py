"""The training command's arguments: Hydra's flags and the config overrides, split apart.

``trainer [-m] [OVERRIDES]`` takes Hydra's command line; sweeptrainer parses it here
(Hydra's own parser would read ``sys.argv``), so every verb that composes runs
(train, validate, preprocess) reads its arguments the same way.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

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
TRAIN_FLAGS = {"-m", "--multirun", "-r", "--run"}  # the flags a training command takes
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


def error(message: str, code: int = 2) -> int:
    print(f"trainer: error: {message}", file=sys.stderr)
    return code


def check_flags(hargs: HydraArgs) -> None:
    """Hydra's own flags that do not combine, said before Hydra says it with a traceback."""
    from sweeptrainer.errors import ConfigError

    shown = [f for f in hargs.flags if f in ("--cfg", "-c", "--info", "-i")]
    if hargs.multirun and shown:
        raise ConfigError(
            f"{shown[0]} shows one composed config and does not combine with -m; to see every "
            "run of a sweep use: trainer validate -m OVERRIDES (or drop -m: trainer "
            f"{shown[0]} job OVERRIDES)"
        )
    odd = [f for f in hargs.flags if f.startswith("-") and f.split("=")[0] not in TRAIN_FLAGS]
    if hargs.trains and odd:  # Hydra's main said "unrecognized arguments" for these
        hint = (
            "; your config folder is --config-dir DIR"
            if odd[0].split("=")[0] in ("--config-path", "-cp")
            else ""
        )
        raise ConfigError(
            f"{odd[0]}: not an option of training{hint}; its options are -m (--multirun), "
            "--config-dir DIR and --config-name NAME (trainer --help, trainer --hydra-help)"
        )
    completion = any(f in ("--shell-completion", "-sc") for f in hargs.flags)
    actions = ("install=", "uninstall=", "query=")
    if completion and not any(o.startswith(actions) for o in hargs.overrides):
        raise ConfigError(
            "--shell-completion: expected one of install=SHELL, uninstall=SHELL or query=SHELL "
            '(SHELL: bash, zsh or fish), e.g. eval "$(trainer --shell-completion install=bash)"'
        )


def complete_verbs(verbs: Sequence[str]) -> bool:
    """Shell completion (``-sc query=...``) of the first word: the verbs, besides Hydra's own
    config completions; after a verb nothing (the shell completes file names). Returns True
    when the query is answered here."""
    words = os.environ.get("COMP_LINE", "").split()
    if os.environ.get("COMP_LINE", "").endswith(" "):
        words.append("")
    if len(words) >= 3 and words[1] in verbs:
        return True  # a verb's arguments are folders and files
    if len(words) == 2:  # the first word: a verb, or Hydra's overrides (printed after)
        print(" ".join(v for v in verbs if v.startswith(words[1])), end=" ")
    return False
