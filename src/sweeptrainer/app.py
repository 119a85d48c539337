"""One run, start to finish: check -> plan (skip, new, resume, retry, continue) -> build -> fit
-> test -> write.

Everything that can be wrong with the user's input is found before the run
folder is touched: a bad config or a missing data file leaves the results folder
exactly as it was. The run folder is claimed with an OS lock while it trains, and
the plan is made again under the lock, so two processes never train one run.
Failures during training are written to the run's ``status.yaml`` and
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
from functools import cached_property
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from sweeptrainer.config.naming import config_hash, run_name
from sweeptrainer.config.schema import DEFAULTS, validate
from sweeptrainer.errors import ConfigError, DamagedRunError, Interrupted, StorageError
from sweeptrainer.io import sweep_record
from sweeptrainer.io.lease import Heartbeat, activity
from sweeptrainer.io.lock import RunLock
from sweeptrainer.io.run_dir import RunDir, check_results_dir, training_dir
from sweeptrainer.logs import attach_file, detach
from sweeptrainer.snapshot import Provenance
from sweeptrainer.training.signals import STOP_FILE, StopNow, StopSignals

log = logging.getLogger("sweeptrainer")


BY_ANOTHER = "trained by another process"  # a skipped run's note: not "finished before"


@dataclass
class RunOutcome:
    """What happened to one run: trained, skipped, failed, interrupted or invalid, and where."""

    name: str
    path: Path | None
    state: str  # finished | skipped | failed | interrupted | invalid | damaged
    exit_code: int = 0
    error: str | None = None
    results: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    """What running a config will do to its run folder, decided from the folder alone."""

    action: str  # new | skip | resume | retry | continue | rerun
    run_dir: RunDir
    cfg: DictConfig = field(repr=False)
    attempt: int = 1
    reason: str = ""
    source: RunDir | None = None  # the finished run a `continue` starts from
    damaged: bool = False  # a file of the run folder cannot be trusted: left as it is
    elsewhere: bool = False  # another process is training it right now

    @cached_property
    def config_hash(self) -> str:
        """Computed when needed: planning a new run (``trainer validate`` of a big grid)
        needs no hash."""
        return config_hash(self.cfg)

    @cached_property
    def base_hash(self) -> str:
        """The config hash without ``iterations``: finds runs to continue."""
        return config_hash(self.cfg, ignore=("iterations",))

    def describe(self) -> str:
        if self.damaged:
            return f"damaged ({self.reason})"
        if self.action == "skip":
            return f"skip ({self.reason})"
        if self.action == "continue":
            return f"continue from {self.source.name if self.source else '?'}"
        if self.action == "retry":
            return f"retry (attempt {self.attempt})"
        return f"{self.action}" + (f" ({self.reason})" if self.reason else "")


def locate_run(cfg: DictConfig, overrides: Sequence[str]) -> RunDir:
    return RunDir(training_dir(cfg.results_dir, cfg.experiment_id) / run_name(cfg, overrides))


def find_continuation(plan: Plan) -> RunDir | None:
    """The finished run with the same config but fewer iterations (the most), if any (the
    plan's ``base_hash`` is computed only when there is a finished run to compare)."""
    cfg = plan.cfg
    best: tuple[int, RunDir] | None = None
    parent = training_dir(cfg.results_dir, cfg.experiment_id)
    for folder in sorted(parent.glob("*/")) if parent.is_dir() else []:
        other = RunDir(folder)
        try:
            status = other.read_status() or {}
            iterations = status.get("iterations")
            if (
                status.get("state") == "finished"
                and status.get("base_hash") == plan.base_hash
                and isinstance(iterations, int)
                and iterations < cfg.iterations
                and other.state("last").is_file()
                and not (other.read_results() or {}).get("stopped_early")
                and (best is None or iterations > best[0])
                and not other.link_problem()  # read through a link: outside the experiment
            ):
                best = (iterations, other)
        except DamagedRunError:
            continue  # a damaged run is no run to continue from
    return best[1] if best else None


def plan_run(cfg: DictConfig, overrides: Sequence[str] = (), holding_lock: bool = False) -> Plan:
    """Decide, from the run folder alone, what running ``cfg`` will do. Writes nothing.

    ``holding_lock``: this process holds the run's lock, so nobody else is training it.
    """
    run_dir = locate_run(cfg, overrides)
    plan = Plan("new", run_dir, cfg)
    try:
        status = run_dir.read_status()
    except DamagedRunError as err:  # reported, left as it is; the other runs go on
        plan.action, plan.reason, plan.damaged = "skip", str(err), True
        return plan
    if status is None:
        source = find_continuation(plan) if cfg.continue_training else None
        if source is not None:
            plan.action, plan.source = "continue", source
        return _unless_linked(plan)
    if status.get("config_hash") != plan.config_hash:
        raise ConfigError(
            f"run folder {run_dir.path} holds a run of a different config "
            f"(hash {status.get('config_hash')} there, {plan.config_hash} now). Use another "
            "experiment_id, or remove that folder to train it again."
        )
    state, plan.attempt = status.get("state"), int(status.get("attempt", 1))
    changed = _changed_since(cfg, status) if state in ("finished", "interrupted") else []
    if changed and cfg.get("rerun_on_change", "warn") == "rerun":
        plan.action, plan.attempt = "rerun", 1
        plan.reason = f"changed since it trained: {', '.join(changed)}"
        return _unless_linked(plan)  # clearing a linked folder would delete its target
    since = (f"; changed since: {', '.join(changed)} (rerun_on_change=rerun trains it again)"
             if changed else "")  # fmt: skip
    if state == "finished":
        plan.action, plan.reason = "skip", "finished" + since
        problem = run_dir.finished_problem()
        if problem:
            plan.reason, plan.damaged = problem, True
    elif state == "failed" and plan.attempt > cfg.max_retries:
        plan.action = "skip"
        plan.reason = f"failed {plan.attempt} times, max_retries is {cfg.max_retries}"
    elif state == "failed":
        plan.action, plan.attempt = "retry", plan.attempt + 1
    elif state == "running" and not holding_lock and (live := activity(run_dir.path)).running:
        plan.action, plan.elsewhere = "skip", True  # here, or on another node (its lease)
        plan.reason = f"being trained by pid {live.pid or status.get('pid')} on " + (
            live.host or str(status.get("host"))
        )
    else:  # interrupted, or `running` with nobody holding the lock: killed
        plan.action, plan.reason = "resume", "interrupted" if state == "interrupted" else "killed"
        plan.reason += since
    return _unless_linked(plan)


def _unless_linked(plan: Plan) -> Plan:
    """A run that would be written (or resumed, or continued from another run) is left
    alone, reported damaged, when its folder holds a symbolic link."""
    if plan.action == "skip" or not os.path.lexists(plan.run_dir.path):
        return plan
    problem = plan.run_dir.link_problem()
    if problem:
        plan.action, plan.reason, plan.damaged = "skip", problem, True
    return plan


def _changed_since(cfg: DictConfig, status: dict[str, Any]) -> list[str]:
    """The user's code and data files that changed since the run recorded them."""
    if cfg.get("rerun_on_change", "warn") == "ignore" or "fingerprint" not in status:
        return []
    from sweeptrainer.fingerprint import changes, fingerprint

    return changes(status["fingerprint"], fingerprint(cfg))


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
    record: Any = None,
) -> RunOutcome:
    """Train the run ``cfg`` describes: skip, start, resume, retry or continue it.

    ``sweep_dir``: the folder of the ``-m`` sweep the run is part of (for the loggers).
    ``provenance``: what the command records in the run's ``snapshot/`` (default: this
    process's command line and folder); ``choices``: the config group options the run was
    composed from (Hydra's ``runtime.choices``), for the snapshot; ``check``: what
    validates the config (the command's :class:`~sweeptrainer.config.schema.Validator`,
    which knows the group options it checked before); ``record``: the sweep's
    ``runs.yaml`` when the caller has read it (else it is read for the run's place).

    Raises ConfigError for problems in the input (before anything is written); a
    failure during training returns a ``failed`` outcome after recording it.
    """
    check(cfg)
    check_results_dir(cfg.results_dir, cfg.experiment_id)
    plan = plan_run(cfg, overrides)
    run_dir = plan.run_dir
    place = run_place(sweep_dir, run_dir.name, job_num, record)
    if plan.action == "skip":
        return _skipped(plan, place)

    # Build everything before touching the run folder: input errors change nothing on disk.
    from sweeptrainer.training.builder import build, resolve_device
    from sweeptrainer.training.distributed import Distributed
    from sweeptrainer.training.state import seed_everything
    from sweeptrainer.training.step import configure_determinism
    from sweeptrainer.training.trainer import ModularTaskTrainer

    dist = Distributed.from_env()
    device = resolve_device(cfg.device, job_num, dist.local_rank if dist.world > 1 else None)
    configure_determinism(cfg.reproducible, cfg.compile)
    seed_everything(cfg.seed)
    try:
        # not under torchrun: a rank leaving here while another waits in a collective hangs
        at_once = signals is not None and dist.world == 1
        with signals.at_once() if signals is not None and at_once else contextlib.nullcontext():
            components = build(
                cfg, device, run_dir.path, with_loggers=dist.is_main, sweep_dir=sweep_dir
            )
    except Interrupted as stop:  # nothing of the run is saved yet: it starts anew next time
        log.warning(f"{place}stopped {run_dir.name} before it started training ({stop})")
        return RunOutcome(run_dir.name, run_dir.path, "interrupted", stop.exit_code, str(stop))
    trainer = ModularTaskTrainer(cfg, components, run_dir, device, signals, dist)
    if not dist.is_main:  # torchrun: rank 0 owns the run folder; the others only train
        return _train_follower(plan, trainer)

    run_dir.path.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir.path)
    # a fresh lease of another node: it trains the run (flock may not reach across NFS)
    if not lock.acquire() or activity(run_dir.path).elsewhere:
        lock.release()
        log.info(f"skip {run_dir.name}: another process is training it")
        return RunOutcome(run_dir.name, run_dir.path, "skipped", 0, BY_ANOTHER)
    heartbeat = Heartbeat(
        run_dir.path, cfg.get("heartbeat_s", DEFAULTS["heartbeat_s"])
    ).start()  # says who trains it
    try:
        plan = plan_run(cfg, overrides, holding_lock=True)  # again, now that the folder is ours
        if plan.action == "skip":
            return _skipped(plan, place)
        if plan.action == "rerun":  # the user's code or data changed: from scratch, in place
            log.warning(f"rerun {run_dir.name}: {plan.reason}")
            run_dir.clear()
        run_dir.remove_temp_files()
        start, how = _start_state(plan)
        if start is not None:
            try:
                trainer.load_state_dict(start)
            except Exception as err:  # e.g. the model's code changed its shapes since
                log.warning(f"warning: cannot resume {run_dir.name}: the saved state does not "
                            f"fit the model ({type(err).__name__}: {str(err).splitlines()[0]}); "
                            "training from scratch")  # fmt: skip
                seed_everything(cfg.seed)
                components = build(cfg, device, run_dir.path, sweep_dir=sweep_dir)
                trainer = ModularTaskTrainer(cfg, components, run_dir, device, signals, dist)
                start, how = None, "new (the saved state did not fit)"
                plan.action, plan.source = "new", None
        if plan.action == "continue" and plan.source is not None:
            # the best state so far is part of the history this run continues
            run_dir.copy_state_from(plan.source, "best")
        record = provenance or Provenance(command=shlex.join(sys.argv))
        snapshot = Snapshot(record, overrides, sweep_dir, choices)
        return _train(cfg, plan, trainer, how, device, snapshot, place)
    finally:
        heartbeat.stop()  # removes the lease
        lock.release()


def run_place(sweep_dir: Path | None, name: str, job_num: int | None, record: Any = None) -> str:
    """``[run 3/8] ``: the run's place in its sweep (from the sweep's ``runs.yaml``, read
    here unless the caller holds it; a search sweeper's runs are numbered as they come);
    empty outside a sweep."""
    if sweep_dir is None:
        return ""
    from sweeptrainer.io import sweep_record

    record = record if record is not None else sweep_record.read(sweep_dir)
    number = record.number(name) if record is not None else None
    if number is not None:
        return f"[run {number}/{len(record.runs)}] "
    return f"[run {job_num + 1}] " if job_num is not None else ""


def _run_end(trainer: Any, status: str, error: str) -> None:
    """Tell the callbacks how a stopped or failed run ended; a hook failing here is a
    warning: the run's own outcome is already recorded and must not be masked."""
    try:
        trainer.callbacks("cb_on_run_end", trainer=trainer, status=status, results={}, error=error)
    except Exception as err:
        log.warning(f"warning: cb_on_run_end failed: {type(err).__name__}: {err}")


def _train_follower(plan: Plan, trainer: Any) -> RunOutcome:
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
    return RunOutcome(name, path, "finished", results=results)


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
    trainer: Any,
    how: str,
    device: Any,
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
    except StorageError as err:  # the machine's fault, not the run's
        return _storage_fault(plan, trainer, err, status)
    except ConfigError as err:  # found at start-up by a component (e.g. a callback's check)
        log.error(f"error: {err}")
        run_dir.write_status("failed", plan.config_hash, error=f"ConfigError: {err}", **status)
        return RunOutcome(run_dir.name, run_dir.path, "invalid", 2, str(err))
    except (Exception, SystemExit, KeyboardInterrupt) as err:
        if _a_stop(err, trainer):
            raise
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


def _a_stop(err: BaseException, trainer: Any) -> bool:
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


def _storage_fault(plan: Plan, trainer: Any, err: StorageError, status: dict) -> RunOutcome:
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
    status = plan.source.read_status() if plan.source else None
    return (status or {}).get("iterations")


def folder_outcome(
    cfg: DictConfig, overrides: Sequence[str], since: str, command: str | None = None
) -> RunOutcome:
    """What a run's folder says happened to it (any launcher): trained since ``since``
    (a status timestamp) by this command (its provenance token) or another, finished
    before, failed, interrupted, or not started."""
    from sweeptrainer.config.compose import task_config

    run_dir = locate_run(task_config(cfg), overrides)
    try:
        return _folder_outcome(run_dir, since, command)
    except DamagedRunError as err:
        return RunOutcome(run_dir.name, run_dir.path, "damaged", 1, str(err))


def _folder_outcome(run_dir: RunDir, since: str, command: str | None = None) -> RunOutcome:
    status = run_dir.read_status() or {}
    if status.get("state") == "running":
        if activity(run_dir.path).running:  # here, or on another node (its lease)
            return RunOutcome(run_dir.name, run_dir.path, "skipped", 0, BY_ANOTHER)
        # nobody holds it now: killed, or it finished between the two looks (a job writes
        # `finished` before it lets go of the lock): read it again
        status = run_dir.read_status() or {}
    state = status.get("state")
    if state == "finished" and (problem := run_dir.finished_problem()):
        raise DamagedRunError(problem)
    if state == "finished":
        updated = str(status.get("updated", ""))  # to the second, as ``since``
        if command is not None and status.get("command") not in (None, command):
            # another command's run: finished after this one started, or before it (in the
            # second it started: counted as before)
            note = BY_ANOTHER if updated > since else None
            return RunOutcome(run_dir.name, run_dir.path, "skipped", 0, note)
        fresh = updated >= since
        return RunOutcome(run_dir.name, run_dir.path, "finished" if fresh else "skipped")
    if state == "failed":
        code = 2 if str(status.get("error", "")).startswith("ConfigError") else 1
        return RunOutcome(run_dir.name, run_dir.path, "failed", code, status.get("error"))
    if state in ("interrupted", "running"):
        return RunOutcome(run_dir.name, run_dir.path, "interrupted", 1, f"{state}: run it again")
    return RunOutcome(run_dir.name, run_dir.path, "not started", 1, "no status in its folder")


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
