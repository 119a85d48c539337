"""The job Hydra's launchers run: a class whose instances are called with each job's
config, train its run (:func:`~sweeptrainer.run.lifecycle.train_run`) and keep its
outcome; and what a job sets up in its process (threads, working folder)."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from sweeptrainer.config.schema import validate
from sweeptrainer.errors import ConfigError, Interrupted
from sweeptrainer.io import sweep_record
from sweeptrainer.run.lifecycle import train_run
from sweeptrainer.run.outcome import RunOutcome
from sweeptrainer.snapshot import Provenance
from sweeptrainer.training.signals import STOP_FILE, StopSignals


def set_threads(num_threads: int | None, parallel_jobs: int | None) -> None:
    """torch threads per job: ``num_threads``; else ``OMP_NUM_THREADS`` when set (joblib's
    workers get the cores divided by ``n_jobs``, a Ray task its ``num_cpus``); else a SLURM
    job's ``cpus_per_task`` (its own cores); else half the cores this process may use, or
    the cores divided by the jobs that share them (a parallel launcher's ``n_jobs``,
    torchrun's processes on this node).

    Why half, not torch's all: torch's threads spin while they wait for each other, and on
    a machine busy with other work a thread without a core of its own stalls the others.
    On the 2-core test machine with two busy processes beside it, a Digits run trained
    17x slower with 2 threads than with 1; idle, 1 thread was as fast (benches/notes.md).
    """
    if num_threads is None and "OMP_NUM_THREADS" in os.environ:
        return  # the user's (or torchrun's, joblib's, Ray's num_cpus) choice: torch read it
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if num_threads is None and slurm.isdigit() and int(slurm) > 0:
        num_threads = max(1, int(slurm) // local)  # cores the allocation gives this job alone
    elif num_threads is None:
        num_threads = max(1, usable_cores() // max(2, parallel_jobs or 1, local))
    import torch

    torch.set_num_threads(num_threads)


def usable_cores() -> int:
    """The cores this process may run on (a SLURM allocation or taskset), else all."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _end_search(searching: bool, signum: int) -> None:
    """A search sweeper (Optuna) that is stopping ends its search: raised through Hydra's job
    and the sweeper (a BaseException), else it would ask for every remaining trial, and
    record each as failed ("Return value must be float-castable")."""
    if searching:
        raise Interrupted(signum)


@contextlib.contextmanager
def in_folder(folder: str | None) -> Iterator[None]:
    """Work in ``folder`` for the duration (where it exists here), then go back."""
    here = os.getcwd()
    if not folder or folder == here or not os.path.isdir(folder):
        yield
        return
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(here)


class RunJob:
    """The job Hydra's launchers run: one run of the command, trained, its outcome recorded.

    A launcher calls it with a job's config (Hydra's node set in ``HydraConfig``), in this
    process or in a worker (joblib, SLURM, Ray pickle it). It never raises for a failed or
    invalid run, so the other jobs of a sweep go on; after a stop signal the remaining jobs
    are not started. The command turns :attr:`outcomes` into its exit code.
    """

    def __init__(
        self,
        signals: StopSignals,
        provenance: Provenance | None = None,
        check: Callable[[DictConfig], None] = validate,
    ) -> None:
        self.outcomes: list[RunOutcome] = []
        self.signals = signals
        self.provenance = provenance
        self.check = check
        self._records: dict[Path, Any] = {}  # each sweep's runs.yaml, read once a process

    def __call__(self, cfg: DictConfig) -> float | None:
        """Hydra's task function: the objective a search sweeper reads (or None)."""
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        node = HydraConfig.get()  # typed as Hydra's dataclass; a DictConfig at run time
        return self.run(cfg, cast(DictConfig, node), node.mode == RunMode.MULTIRUN)

    def run(self, cfg: DictConfig, hydra_cfg: DictConfig, multirun: bool) -> float | None:
        """One job, given its config and Hydra's node of it (``hydra_cfg``), run in the
        folder of the command that launched it (Hydra's ``runtime.cwd``): a job on a Ray
        cluster starts where ``ray start`` ran, a SLURM job where sbatch put it, and a
        relative ``results_dir`` or data path means the user's folder, not theirs."""
        with in_folder(OmegaConf.select(hydra_cfg, "runtime.cwd")):
            return self._here(cfg, hydra_cfg, multirun)

    def _here(self, cfg: DictConfig, hydra_cfg: DictConfig, multirun: bool) -> float | None:
        from sweeptrainer.config.compose import basic_sweeper
        from sweeptrainer.logs import configure_console

        configure_console()  # a launcher's worker process starts without it
        overrides = list(hydra_cfg.overrides.task)
        sweep_dir = Path(hydra_cfg.sweep.dir).absolute() if multirun else None
        set_threads(cfg.num_threads, OmegaConf.select(hydra_cfg, "launcher.n_jobs"))
        stop = self.signals.for_job(sweep_dir / STOP_FILE if sweep_dir is not None else None)
        searching = not basic_sweeper(hydra_cfg)
        if stop.received is not None:
            _end_search(searching, stop.received)
            return None  # stopping: leave the remaining runs of the sweep for the next one
        try:
            job_num = OmegaConf.select(hydra_cfg, "job.num")
            choices = dict(hydra_cfg.runtime.choices)  # group -> option, for the snapshot
            if sweep_dir is not None and sweep_dir not in self._records:  # once per sweep
                self._records[sweep_dir] = sweep_record.read(sweep_dir)
            record = self._records.get(sweep_dir) if sweep_dir is not None else None
            outcome = train_run(
                cfg, overrides, stop, job_num, sweep_dir, self.provenance, choices, self.check,
                record,
            )  # fmt: skip
            self.outcomes.append(outcome)
        except ConfigError as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                traceback.print_exc()
            print(f"trainer: error: {err}", file=sys.stderr)
            self.outcomes.append(RunOutcome(" ".join(overrides), None, "invalid", 2, str(err)))
            return None
        if outcome.state == "interrupted" and stop.received is not None:
            _end_search(searching, stop.received)
        # the objective of a search sweeper (Optuna): the best dev tracking metric
        results = outcome.results or {}
        value = (results.get("dev") or {}).get(results.get("tracking_metric"))
        return None if value is None else float(value)
