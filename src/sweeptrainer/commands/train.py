"""``trainer [-m] [OVERRIDES]``: training, the command without a verb.

Its steps, in order: parse (:mod:`~sweeptrainer.sweep.args`), plan
(:mod:`~sweeptrainer.sweep.plan`: compose and check every run once), place the sweep (its
folder, its frozen config copy, its ``runs.yaml``), launch (:mod:`~sweeptrainer.sweep.launch`:
Hydra's sweeper and launcher plugins, each job a :class:`~sweeptrainer.run.lifecycle.RunJob`),
tally (:mod:`~sweeptrainer.sweep.outcome`).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
import traceback
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sweeptrainer.config.compose import ConfigSources
    from sweeptrainer.sweep.args import HydraArgs

VERB = None  # what follows `trainer` is overrides and Hydra's flags
USAGE = (
    "trainer [OVERRIDES ...]            train the composed config (one run)",
    "trainer -m [OVERRIDES ...]         a sweep: key=a,b runs every combination",
)


def run(args: Sequence[str]) -> int:
    """Compose and check every run of the command, then train them."""
    from sweeptrainer.cli import VERBS

    return train_command(args, list(VERBS))


def train_command(args: Sequence[str], verbs: Sequence[str] = ()) -> int:
    """``trainer [-m] OVERRIDES``: compose, check, launch; the exit code from the outcomes.

    ``verbs``: the command's other verbs, for shell completion of the first word."""
    from sweeptrainer.config.compose import ConfigSources
    from sweeptrainer.errors import ConfigError
    from sweeptrainer.logs import configure_console
    from sweeptrainer.sweep.args import HydraArgs, check_flags, complete_verbs, error
    from sweeptrainer.usercode import import_from_cwd

    configure_console()
    import_from_cwd()
    hargs = HydraArgs.parse(args)
    try:
        sources = ConfigSources.find(hargs.config_dir, hargs.config_name, Path.cwd())
    except ConfigError as err:
        return error(str(err))
    with sources:
        try:
            check_flags(hargs)
            if any(o.startswith("query=") for o in hargs.overrides) and complete_verbs(verbs):
                return 0
        except ConfigError as err:
            return error(str(err))
        if not hargs.trains:  # --cfg, --info, --shell-completion ...: Hydra's own answers
            from sweeptrainer.sweep.hydra_flags import show

            return show(sources, hargs)
        return _train(sources, hargs, shlex.join(["trainer", *args]))


def _train(sources: ConfigSources, hargs: HydraArgs, typed: str) -> int:
    from sweeptrainer.config.schema import Validator
    from sweeptrainer.errors import ConfigError
    from sweeptrainer.run.lifecycle import RunJob
    from sweeptrainer.snapshot import Provenance
    from sweeptrainer.sweep import outcome
    from sweeptrainer.sweep.args import error
    from sweeptrainer.sweep.launch import launch
    from sweeptrainer.sweep.plan import plan_command, record_sweep, task_overrides
    from sweeptrainer.sweep.search import trial_runs
    from sweeptrainer.training.signals import STOP_FILE, StopNow, StopSignals

    check = Validator()
    try:
        plan = plan_command(sources, hargs, check)
        plan.place()
        record_sweep(plan)
    except ConfigError as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            traceback.print_exc()
        return error(str(err))

    started, clock = time.strftime("%Y-%m-%dT%H:%M:%S"), time.perf_counter()
    # the command's token goes into its runs' status files (see outcome.sweep_outcomes)
    token = uuid.uuid4().hex[:12]
    provenance = Provenance(typed, sources=sources, token=token).prepare()
    stop_file = plan.sweep_dir / STOP_FILE if plan.sweep_dir is not None else None
    if stop_file is not None:  # an earlier command's stop of this sweep folder
        with contextlib.suppress(OSError):  # a folder, or not ours: ignored when read
            stop_file.unlink(missing_ok=True)
    try:
        with StopSignals(stop_file) as signals:
            job = RunJob(signals, provenance, check)
            launched = launch(plan, job)
    except KeyboardInterrupt as err:
        why = "second Ctrl-C" if isinstance(err, StopNow) else "KeyboardInterrupt"
        print(f"trainer: stopped at once ({why}); run the command again to resume",
              file=sys.stderr)  # fmt: skip
        return 130
    finally:
        _end_distributed()
    multirun, runs, search = hargs.multirun, plan.runs, plan.search
    if search and plan.base is not None:  # the trials of its study, whichever launcher ran them
        runs = trial_runs(plan.base, task_overrides(hargs.overrides), plan.composer)
    outcomes = outcome.sweep_outcomes(
        multirun, runs, plan.composer, job.outcomes, started, token, search
    )
    code = max(outcome.summarize(outcomes, multirun, time.perf_counter() - clock), launched)
    stopped = signals.look()  # this process's, or one of the sweep's other processes'
    if stopped is not None:
        return 128 + stopped
    if multirun and outcomes:
        outcome.postprocess([cfg for _, cfg in plan.runs])
    return code


def _end_distributed() -> None:
    """Under torchrun: wait for every process, then leave the process group."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.barrier()  # without it one rank sometimes aborts at exit
        dist.destroy_process_group()
