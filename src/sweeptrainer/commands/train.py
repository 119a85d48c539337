"""``trainer [-m] [OVERRIDES]``: training, the command without a verb.

The work is :mod:`sweeptrainer.sweep.command`; here are its usage lines, and the verbs it is
given for shell completion.
"""

from __future__ import annotations

from collections.abc import Sequence

VERB = None  # what follows `trainer` is overrides and Hydra's flags
USAGE = (
    "trainer [OVERRIDES ...]            train the composed config (one run)",
    "trainer -m [OVERRIDES ...]         a sweep: key=a,b runs every combination",
)


def run(args: Sequence[str]) -> int:
    """Compose and check every run of the command, then train them."""
    from sweeptrainer.cli import VERBS
    from sweeptrainer.sweep.command import train_command

    return train_command(args, list(VERBS))
