"""One run, start to finish: check -> plan -> build -> lock -> fit -> test -> write.

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
import shlex
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeptrainer.config.schema import DEFAULTS, validate
from sweeptrainer.errors import ConfigError, DamagedRunError, Interrupted, StorageError
from sweeptrainer.io import sweep_record
from sweeptrainer.io.lease import Heartbeat, activity
from sweeptrainer.io.lock import RunLock
from sweeptrainer.io.run_dir import check_results_dir
from sweeptrainer.logs import attach_file, detach
from sweeptrainer.run.outcome import BY_ANOTHER, RunOutcome
from sweeptrainer.run.planner import Plan, plan_run
from sweeptrainer.snapshot import Provenance
from sweeptrainer.training.signals import StopNow, StopSignals

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
