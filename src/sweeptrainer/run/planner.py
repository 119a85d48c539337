"""Planning a run from its folder alone: new, skip, resume, retry, continue or rerun.

Pure reads of the run folder (``status.yaml``, the states, the lease): nothing is written,
so ``trainer validate`` shows the plans of a whole sweep, and the lifecycle plans again
once it holds the run's lock.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from omegaconf import DictConfig

from sweeptrainer.config.naming import config_hash, run_name
from sweeptrainer.errors import ConfigError, DamagedRunError
from sweeptrainer.io.lease import activity
from sweeptrainer.io.run_dir import RunDir, training_dir


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
    """The run's folder: by its name, or by the name runs had before ``+k=v`` and ``k=v``
    were named alike, when a folder of that name exists (and none of the new name)."""
    parent = training_dir(cfg.results_dir, cfg.experiment_id)
    name = run_name(cfg, overrides)
    if any(o.startswith("+") for o in overrides) and not (parent / name).exists():
        legacy = run_name(cfg, overrides, legacy=True)
        if legacy != name and (parent / legacy).is_dir():
            return RunDir(parent / legacy)
    return RunDir(parent / name)


def find_continuation(plan: Plan) -> RunDir | None:
    """The finished (or pruned) run with the same config but fewer iterations (the most
    trained), if any (the plan's ``base_hash`` is computed only when there is a finished
    run to compare). A pruned run's iterations are where its pruner stopped it."""
    cfg = plan.cfg
    best: tuple[int, RunDir] | None = None
    parent = training_dir(cfg.results_dir, cfg.experiment_id)
    for folder in sorted(parent.glob("*/")) if parent.is_dir() else []:
        other = RunDir(folder)
        try:
            status = other.read_status() or {}
            iterations = status.get("iterations")
            if status.get("state") == "pruned":
                iterations = status.get("pruned_at")
            if (
                status.get("state") in ("finished", "pruned")
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


def _other_config(plan: Plan, status: dict[str, Any]) -> Plan:
    """The run's folder holds another config's run (same name, another hash): a rerun
    when ``rerun_on_change=rerun`` asks for it, else an error naming the ways out."""
    run_dir = plan.run_dir
    clash = f"hash {status.get('config_hash')} there, {plan.config_hash} now"
    if plan.cfg.get("rerun_on_change", "warn") == "rerun":  # asked for: train it anew there
        plan.action, plan.reason = "rerun", f"its config changed ({clash})"
        return _unless_linked(plan)
    failed = status.get("state") == "failed"
    way = (
        f"`trainer rm-failed {run_dir.path.parent.parent}` removes it (it failed), or "
        if failed
        else ""
    )
    raise ConfigError(
        f"run folder {run_dir.path} holds a run of a different config ({clash}): {way}"
        "use another experiment_id (experiment_id=NAME), or rerun_on_change=rerun to "
        "train this config anew in that folder (its results are replaced)"
    )


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
        return _other_config(plan, status)
    state, plan.attempt = status.get("state"), int(status.get("attempt", 1))
    changed = _changed_since(cfg, status) if state in ("finished", "interrupted", "pruned") else []
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
    elif state == "pruned":  # a search stopped it: final (a longer run continues from it)
        plan.action = "skip"
        plan.reason = str(status.get("reason") or "pruned") + since
    elif state == "failed" and plan.attempt > cfg.max_retries:
        plan.action = "skip"
        plan.reason = f"failed {plan.attempt} times, max_retries is {cfg.max_retries}"
    elif state == "failed":
        plan.action, plan.attempt = "retry", plan.attempt + 1
    elif state == "running" and not holding_lock and (live := activity(run_dir.path)).running:
        plan.action, plan.elsewhere = "skip", True  # here, or on another node (its lease)
        pid = live.pid or status.get("pid")
        plan.reason = (
            f"running on {live.host} (pid {pid})"
            if live.elsewhere
            else f"being trained by pid {pid} on {status.get('host')}"
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
