"""One run, start to finish: check -> plan -> build -> lock -> fit -> test -> write; and
:class:`RunJob`, the job Hydra's launchers call with each run's config.

Everything that can be wrong with the user's input is found before the run folder is
touched: a bad config or a missing data file leaves the results folder exactly as it was.
The run folder is claimed with an OS lock while it trains (and a lease says who trains it,
for other nodes), and the plan is made again under the lock, so two processes never train
one run. Failures during training are written to the run's ``status.yaml`` and
``train.log``, never only to the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from omegaconf import DictConfig, OmegaConf

from sweeptrainer.config.schema import DEFAULTS, validate
from sweeptrainer.errors import ConfigError, DamagedRunError, Interrupted, Pruned, StorageError
from sweeptrainer.io import sweep_record
from sweeptrainer.io.lease import Heartbeat
from sweeptrainer.io.lock import RunLock
from sweeptrainer.io.run_dir import check_results_dir
from sweeptrainer.io.sweep_record import SweepRecord
from sweeptrainer.logs import attach_file, detach
from sweeptrainer.run.outcome import BY_ANOTHER, RunOutcome
from sweeptrainer.run.planner import Plan, plan_run
from sweeptrainer.snapshot import Provenance
from sweeptrainer.study import is_search
from sweeptrainer.training.signals import STOP_FILE, StopNow, StopSignals

if TYPE_CHECKING:  # imported with torch, when a run is built
    import torch

    from sweeptrainer.run.trial import Trial
    from sweeptrainer.training.distributed import Distributed
    from sweeptrainer.training.trainer import ModularTaskTrainer

log = logging.getLogger("sweeptrainer")


def _start_state(plan: Plan) -> tuple[dict[str, Any] | None, str]:
    """The state a run starts from, and a line saying which."""
    from sweeptrainer.training.checkpoint import (
        CorruptStateError,
        belongs,
        load_latest,
        load_state_file,
    )

    if plan.action == "continue":
        assert plan.source is not None
        path = plan.source.state("last")
        try:
            state = load_state_file(path)
            mine = belongs(state, "base_hash", plan.base_hash)
            problem = None if mine else f"{path}: the state of another config"
        except CorruptStateError as err:
            problem = str(err)  # names the file
        if problem is not None:  # as docs/resuming.md says: a warning, then anew
            log.warning(
                f"warning: cannot continue from {plan.source.name} ({problem}); training anew"
            )
            plan.action, plan.source = "new", None
            return None, "new (the run to continue from has no usable state)"
        return (
            state,
            f"continue from {plan.source.name} at iteration {state['training']['iteration']}",
        )
    if plan.action in ("resume", "retry"):
        latest, name = load_latest(plan.run_dir, plan.config_hash)
        if latest is None:
            return None, f"{plan.describe()}: no usable state, starting from scratch"
        it = latest["training"]["iteration"]
        return latest, f"{plan.describe()} from states/{name}.pt (iteration {it})"
    return None, plan.describe() if plan.action == "rerun" else "new"


def train_run(
    cfg: DictConfig,
    overrides: Sequence[str] = (),
    signals: StopSignals | None = None,
    job_num: int | None = None,
    sweep_dir: Path | None = None,
    provenance: Provenance | None = None,
    choices: Mapping[str, Any] | None = None,
    check: Callable[[DictConfig], None] = validate,
    record: SweepRecord | None = None,
    trial: Trial | None = None,
) -> RunOutcome:
    """Train the run ``cfg`` describes: skip, start, resume, retry or continue it.

    ``sweep_dir``: the folder of the ``-m`` sweep the run is part of (for the loggers).
    ``provenance``: what the command records in the run's ``snapshot/`` (default: this
    process's command line and folder); ``choices``: the config group options the run was
    composed from (Hydra's ``runtime.choices``), for the snapshot; ``check``: what
    validates the config (the command's :class:`~sweeptrainer.config.schema.Validator`,
    which knows the group options it checked before); ``record``: the sweep's
    ``runs.yaml`` when the caller has read it (else it is read for the run's place);
    ``trial``: the search trial the run is (see :mod:`sweeptrainer.run.trial`): told each
    evaluation, it may prune the run.

    Raises ConfigError for problems in the input (before anything is written); a
    failure during training returns a ``failed`` outcome after recording it.
    """
    check(cfg)  # check: nothing is written for bad input
    check_results_dir(cfg.results_dir, cfg.experiment_id)
    plan = plan_run(cfg, overrides)  # plan, from the run folder alone
    place = (
        trial.place
        if trial is not None
        else run_place(sweep_dir, plan.run_dir.name, job_num, record)
    )
    if plan.action == "skip":
        return _skipped(plan, place)
    try:  # build everything before touching the run folder: input errors change nothing
        built = Built.build(cfg, plan, signals, job_num, sweep_dir, trial)
    except Interrupted as stop:  # nothing of the run is saved yet: it starts anew next time
        name, path = plan.run_dir.name, plan.run_dir.path
        log.warning(f"{place}stopped {name} before it started training ({stop})")
        return RunOutcome(name, path, "interrupted", stop.exit_code, str(stop))
    if not built.dist.is_main:  # torchrun: rank 0 owns the run folder; the others only train
        return _train_follower(plan, built.trainer)
    with _held(plan.run_dir.path, cfg) as held:  # lock, and the lease other nodes read
        if not held:
            log.info(f"skip {plan.run_dir.name}: another process is training it")
            return RunOutcome(plan.run_dir.name, plan.run_dir.path, "skipped", 0, BY_ANOTHER)
        plan = plan_run(cfg, overrides, holding_lock=True)  # again, now that the folder is ours
        if plan.action == "skip":
            return _skipped(plan, place)
        how = _ready(plan, built)
        command = provenance or Provenance(command=shlex.join(sys.argv))
        snapshot = Snapshot(command, overrides, sweep_dir, choices)
        return _train(cfg, plan, built.trainer, how, built.device, snapshot, place)  # fit..write


@dataclass
class Built:
    """A run's trainer, built from its config before its folder is touched."""

    cfg: DictConfig
    device: torch.device
    dist: Distributed
    signals: StopSignals | None
    sweep_dir: Path | None
    trial: Trial | None = None
    trainer: ModularTaskTrainer = field(init=False)

    @classmethod
    def build(
        cls,
        cfg: DictConfig,
        plan: Plan,
        signals: StopSignals | None,
        job_num: int | None,
        sweep_dir: Path | None,
        trial: Trial | None = None,
    ) -> Built:
        from sweeptrainer.training.builder import resolve_device
        from sweeptrainer.training.distributed import Distributed
        from sweeptrainer.training.step import configure_determinism

        dist = Distributed.from_env(
            cfg.get("distributed_timeout_s", DEFAULTS["distributed_timeout_s"])
        )
        device = resolve_device(cfg.device, job_num, dist.local_rank if dist.world > 1 else None)
        if dist.world > 1 and device.type == "cuda":  # NCCL's object collectives use it
            import torch

            torch.cuda.set_device(device)
        configure_determinism(cfg.reproducible, cfg.compile)
        built = cls(cfg, device, dist, signals, sweep_dir, trial)
        # not under torchrun: a rank leaving here while another waits in a collective hangs
        at_once = signals is not None and dist.world == 1
        with signals.at_once() if signals is not None and at_once else contextlib.nullcontext():
            built.again(plan, with_loggers=dist.is_main)
        return built

    def again(self, plan: Plan, with_loggers: bool = True) -> None:
        """A trainer from scratch: the first one, or a new one when the saved state did not
        fit the model."""
        from sweeptrainer.training.builder import build
        from sweeptrainer.training.state import seed_everything
        from sweeptrainer.training.trainer import ModularTaskTrainer

        seed_everything(self.cfg.seed)
        components = build(
            self.cfg, self.device, plan.run_dir.path, with_loggers=with_loggers,
            sweep_dir=self.sweep_dir,
        )  # fmt: skip
        self.trainer = ModularTaskTrainer(
            self.cfg, components, plan.run_dir, self.device, self.signals, self.dist
        )
        if self.trial is not None:
            self.trainer.trial = self.trial.report


@contextlib.contextmanager
def _held(path: Path, cfg: DictConfig) -> Iterator[bool]:
    """Hold the run's lock and keep its lease fresh for the block; False (nothing held)
    when another process holds the lock or another node's fresh lease names the run
    (flock may not reach across NFS)."""
    path.mkdir(parents=True, exist_ok=True)
    lock = RunLock(path)
    heartbeat = Heartbeat(path, cfg.get("heartbeat_s", DEFAULTS["heartbeat_s"]))
    if not lock.acquire() or not heartbeat.claim():
        lock.release()
        yield False
        return
    try:
        yield True
    finally:
        heartbeat.stop()  # removes the lease
        lock.release()


def _ready(plan: Plan, built: Built) -> str:
    """Make the run folder and the trainer ready to fit: cleared for a rerun, the state to
    start from loaded (resume, retry, continue); a line saying how it starts."""
    run_dir = plan.run_dir
    if plan.action == "rerun":  # the user's code or data changed: from scratch, in place
        log.warning(f"rerun {run_dir.name}: {plan.reason}")
        run_dir.clear()
    run_dir.remove_temp_files()
    start, how = _start_state(plan)
    if start is not None:
        try:
            built.trainer.load_state_dict(start)
        except Exception as err:  # e.g. the model's code changed its shapes since
            log.warning(f"warning: cannot resume {run_dir.name}: the saved state does not "
                        f"fit the model ({type(err).__name__}: {str(err).splitlines()[0]}); "
                        "training from scratch")  # fmt: skip
            built.again(plan)
            how = "new (the saved state did not fit)"
            plan.action, plan.source = "new", None
    if plan.action == "continue" and plan.source is not None:
        # the best state so far is part of the history this run continues
        run_dir.copy_state_from(plan.source, "best")
    return how


def run_place(
    sweep_dir: Path | None, name: str, job_num: int | None, record: SweepRecord | None = None
) -> str:
    """``[run 3/8] ``: the run's place in its sweep (from the sweep's ``runs.yaml``, read
    here unless the caller holds it; a search sweeper's runs are numbered as they come);
    empty outside a sweep."""
    if sweep_dir is None:
        return ""
    record = record if record is not None else sweep_record.read(sweep_dir)
    number = record.number(name) if record is not None else None
    if record is not None and number is not None:
        return f"[run {number}/{len(record.runs)}] "
    return f"[run {job_num + 1}] " if job_num is not None else ""


def _run_end(trainer: ModularTaskTrainer, status: str, error: str) -> None:
    """Tell the callbacks how a stopped or failed run ended; a hook failing here is a
    warning: the run's own outcome is already recorded and must not be masked."""
    try:
        trainer.callbacks("cb_on_run_end", trainer=trainer, status=status, results={}, error=error)
    except Exception as err:
        log.warning(f"warning: cb_on_run_end failed: {type(err).__name__}: {err}")


def _train_follower(plan: Plan, trainer: ModularTaskTrainer) -> RunOutcome:
    """A process of a distributed run other than rank 0: same start state, no writes."""
    start, _ = _start_state(plan)
    if start is not None:
        trainer.load_state_dict(start)
    name, path = plan.run_dir.name, plan.run_dir.path
    try:
        trainer.fit()
        results = trainer.test()
    except Interrupted as stop:
        return RunOutcome(name, path, "interrupted", stop.exit_code, str(stop))
    except Pruned as pruned:
        return RunOutcome(name, path, "pruned", 0, pruned.reason)
    except Exception as err:
        if not _lost_peer(err):
            raise
        return RunOutcome(name, path, "interrupted", 1, _lost(trainer, err))
    return RunOutcome(name, path, "finished", results=results)


def _lost_peer(err: BaseException) -> bool:
    from sweeptrainer.training.distributed import lost_peer  # with torch

    return lost_peer(err)


def _lost(trainer: ModularTaskTrainer, err: BaseException) -> str:
    """Another process of a distributed run died or hangs: this one says so, leaves the
    process group (no barrier: nobody would answer) and stops; the run resumes from its
    last saved state when the command is run again (on every node)."""
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    message = (
        f"rank {trainer.dist.rank} of {trainer.dist.world}: another process of this run "
        f"died or stopped answering ({type(err).__name__}: {first}); the run stops, and "
        "the same command again (on every node) resumes it from states/last.pt"
    )
    log.error(f"error: {message}")
    trainer.dist.abandon()
    return message


def _skipped(plan: Plan, place: str = "") -> RunOutcome:
    """A run left alone; one that failed for good still counts as failed, a damaged one
    as damaged."""
    run_dir = plan.run_dir
    try:
        if plan.damaged:
            raise DamagedRunError(plan.reason)
        log.info(f"{place}skip {run_dir.name}: {plan.reason}")
        status = run_dir.read_status() or {}
        if status.get("state") == "failed":
            return RunOutcome(run_dir.name, run_dir.path, "failed", 1, status.get("error"))
        if status.get("state") == "pruned":  # final: counted as pruned, not as finished
            return RunOutcome(run_dir.name, run_dir.path, "pruned", 0, status.get("reason"))
        results = run_dir.read_results() or {}
    except DamagedRunError as err:
        log.warning(f"{place}damaged {run_dir.name}: {err}")
        return RunOutcome(run_dir.name, run_dir.path, "damaged", 1, str(err))
    note = BY_ANOTHER if plan.elsewhere else None
    return RunOutcome(run_dir.name, run_dir.path, "skipped", 0, note, results)


@dataclass
class Snapshot:
    """What :func:`_train` needs to write the run's ``snapshot/``."""

    provenance: Provenance
    overrides: Sequence[str]
    sweep_dir: Path | None
    choices: Mapping[str, Any] | None

    def write(self, cfg: DictConfig, plan: Plan) -> None:
        """Best effort: a snapshot that cannot be written (disk full, permissions) is a
        warning in ``train.log``, not a reason to lose the run."""
        record = self.provenance
        try:
            record.write(plan.run_dir.path, cfg, self.overrides, plan.describe(),
                         sweep_dir=self.sweep_dir, choices=self.choices)  # fmt: skip
        except Exception as err:
            log.warning(f"warning: snapshot/ incomplete: {type(err).__name__}: {err}")
            log.debug(traceback.format_exc())


def _train(
    cfg: DictConfig,
    plan: Plan,
    trainer: ModularTaskTrainer,
    how: str,
    device: torch.device,
    snapshot: Snapshot,
    place: str = "",
) -> RunOutcome:
    run_dir = plan.run_dir
    from sweeptrainer.fingerprint import fingerprint

    status = {
        "attempt": plan.attempt,
        "base_hash": plan.base_hash,
        "iterations": int(cfg.iterations),
        "fingerprint": fingerprint(cfg),  # the user's code and data files, to see edits
        # the command that trained it: another command of the sweep (on another node,
        # say) tells "trained by another process" from its own runs
        "command": snapshot.provenance.token,
        # one run across processes (torchrun, a SLURM step's tasks): how many; rank 0 writes
        "world": trainer.dist.world if trainer.dist.world > 1 else None,
    }
    try:
        run_dir.write_config(OmegaConf.to_yaml(cfg, resolve=True))
        run_dir.write_status("running", plan.config_hash, **status)
        handler = attach_file(run_dir.log)
    except StorageError as err:
        return _storage_fault(plan, trainer, err, status)
    try:
        snapshot.write(cfg, plan)
        log.info(f"{place}train {run_dir.name} on {device} ({how}) -> {run_dir.path}")
        trainer.fit()
        results = trainer.test()
        if plan.action == "continue" and plan.source is not None:
            results["continued_from"] = {"run": plan.source.name, "iteration": plan_source_it(plan)}
        run_dir.write_results(results)
        trainer.callbacks(
            "cb_on_run_end", trainer=trainer, status="finished", results=results, error=None
        )
        run_dir.write_status("finished", plan.config_hash, **status)
    except Interrupted as stop:
        log.warning(
            f"interrupted {run_dir.name}: {stop}; states/last.pt saved, run again to resume"
        )
        run_dir.write_status("interrupted", plan.config_hash, **status)
        _run_end(trainer, "interrupted", str(stop))
        return RunOutcome(run_dir.name, run_dir.path, "interrupted", stop.exit_code, str(stop))
    except Pruned as pruned:  # a search's pruner: states/last.pt saved, the run ends here
        log.info(f"{place}{pruned.reason}: {run_dir.name} stops (states/last.pt saved)")
        run_dir.write_status("pruned", plan.config_hash, reason=pruned.reason,
                             pruned_at=pruned.iteration, **status)  # fmt: skip
        _run_end(trainer, "pruned", pruned.reason)
        return RunOutcome(run_dir.name, run_dir.path, "pruned", 0, pruned.reason)
    except StorageError as err:  # the machine's fault, not the run's
        return _storage_fault(plan, trainer, err, status)
    except ConfigError as err:  # found at start-up by a component (e.g. a callback's check)
        log.error(f"error: {err}")
        run_dir.write_status("failed", plan.config_hash, error=f"ConfigError: {err}", **status)
        return RunOutcome(run_dir.name, run_dir.path, "invalid", 2, str(err))
    except (Exception, SystemExit, KeyboardInterrupt) as err:
        if _a_stop(err, trainer):
            raise
        if trainer.dist.world > 1 and _lost_peer(err):
            message = _lost(trainer, err)
            run_dir.write_status("interrupted", plan.config_hash, error=message, **status)
            _run_end(trainer, "interrupted", message)
            return RunOutcome(run_dir.name, run_dir.path, "interrupted", 1, message)
        message = _failure(err)
        log.debug(traceback.format_exc())  # train.log only
        log.error(f"run failed: {message} (details: {run_dir.log})")
        run_dir.write_status("failed", plan.config_hash, error=message, **status)
        _run_end(trainer, "failed", message)
        return RunOutcome(run_dir.name, run_dir.path, "failed", 1, message)
    finally:
        detach(handler)
    tests = "  ".join(f"{k} {v:.4f}" for k, v in results["test"].items())
    log.info(f"finished {run_dir.name}: test {tests}")
    log.info(f"run folder: {run_dir.path}")
    return RunOutcome(run_dir.name, run_dir.path, "finished", results=results)


def _a_stop(err: BaseException, trainer: ModularTaskTrainer) -> bool:
    """Whether ``err`` stops the command rather than failing the run: a second Ctrl-C, or a
    KeyboardInterrupt where no stop handlers of ours are installed (a notebook's interrupt
    with ``handle_signals=False``: the user's, not the code's)."""
    if isinstance(err, StopNow):
        return True
    signals = trainer.signals
    return isinstance(err, KeyboardInterrupt) and not (signals and signals.installed())


def _failure(err: BaseException) -> str:
    """A failed run's error line. SystemExit and KeyboardInterrupt from the run's code
    (a library's ``sys.exit``, a stray ``raise KeyboardInterrupt``) are its failure, recorded
    and retried as any other: the sweep goes on and no run is left `running` forever."""
    if isinstance(err, SystemExit):
        return f"SystemExit({err.code!r}) raised by the run's code (a run cannot exit the trainer)"
    if isinstance(err, KeyboardInterrupt):
        return "KeyboardInterrupt raised by the run's code (no Ctrl-C reached the trainer)"
    return f"{type(err).__name__}: {err}"


def _storage_fault(
    plan: Plan, trainer: ModularTaskTrainer, err: StorageError, status: dict
) -> RunOutcome:
    """A write the machine refused: the run stops as after a stop signal (``interrupted``,
    so the next command resumes it without counting an attempt); the command says what
    to fix. Recording that may fail on the same disk: the run then reads as killed, which
    resumes the same way."""
    run_dir = plan.run_dir
    message = f"{err.strerror}; free it up (or fix it) and run the command again to resume"
    log.error(f"run stopped: {message}")
    with contextlib.suppress(OSError):
        run_dir.write_status("interrupted", plan.config_hash, error=err.strerror, **status)
    _run_end(trainer, "interrupted", str(err.strerror))
    return RunOutcome(run_dir.name, run_dir.path, "failed", 1, message)


def plan_source_it(plan: Plan) -> int | None:
    """The iterations the run continued from had trained (a pruned one: where it stopped)."""
    status = plan.source.read_status() if plan.source else None
    return (status or {}).get("pruned_at", (status or {}).get("iterations"))


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
        self._records: dict[
            Path, SweepRecord | None
        ] = {}  # each sweep's runs.yaml, read once a process

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
        trial = None
        try:
            job_num = OmegaConf.select(hydra_cfg, "job.num")
            choices = dict(hydra_cfg.runtime.choices)  # group -> option, for the snapshot
            if sweep_dir is not None and sweep_dir not in self._records:  # once per sweep
                self._records[sweep_dir] = sweep_record.read(sweep_dir)
            record = self._records.get(sweep_dir) if sweep_dir is not None else None
            if multirun and is_search(hydra_cfg.sweeper):  # a trial of sweeptrainer's search
                from sweeptrainer.run.trial import Trial

                metric = str(cfg.dataset.get("tracking_metric", "loss"))
                trial = Trial.of_job(hydra_cfg, metric, int(cfg.iterations))
            outcome = train_run(
                cfg, overrides, stop, job_num, sweep_dir, self.provenance, choices, self.check,
                record, trial,
            )  # fmt: skip
        except ConfigError as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                traceback.print_exc()
            print(f"trainer: error: {err}", file=sys.stderr)
            outcome = RunOutcome(" ".join(overrides), None, "invalid", 2, str(err))
        self.outcomes.append(outcome)
        # the objective of a search sweeper: the best dev tracking metric
        results = outcome.results or {}
        value = (results.get("dev") or {}).get(results.get("tracking_metric"))
        value = None if value is None else float(value)
        if trial is not None:
            trial.tell(outcome, value)
        if outcome.state == "interrupted" and stop.received is not None:
            _end_search(searching, stop.received)
        return value
