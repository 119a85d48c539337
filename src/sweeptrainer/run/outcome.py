"""What happened to a run: its outcome (trained, skipped, failed, interrupted, invalid,
damaged, pruned) as the command that ran it saw it, or as its folder tells it afterwards (any
launcher: the jobs of a parallel launcher report nothing to the command)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sweeptrainer.errors import DamagedRunError
from sweeptrainer.io.lease import activity
from sweeptrainer.io.run_dir import RunDir
from sweeptrainer.run.planner import locate_run

BY_ANOTHER = "trained by another process"  # a skipped run's note: not "finished before"


@dataclass
class RunOutcome:
    """What happened to one run: trained, skipped, failed, interrupted or invalid, and where."""

    name: str
    path: Path | None
    state: str  # finished | skipped | failed | interrupted | invalid | damaged | running | pruned
    exit_code: int = 0
    error: str | None = None
    results: dict[str, Any] = field(default_factory=dict)


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
        live = activity(run_dir.path)
        if live.elsewhere:  # another node's fresh lease: still training there
            return RunOutcome(run_dir.name, run_dir.path, "running", 0, f"running on {live.host}")
        if live.running:  # another process of this host holds its lock
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
    if state == "pruned":  # by a search's pruner: final, as finished is
        return RunOutcome(run_dir.name, run_dir.path, "pruned", 0, status.get("reason"))
    if state == "failed":
        code = 2 if str(status.get("error", "")).startswith("ConfigError") else 1
        return RunOutcome(run_dir.name, run_dir.path, "failed", code, status.get("error"))
    if state in ("interrupted", "running"):
        return RunOutcome(run_dir.name, run_dir.path, "interrupted", 1, f"{state}: run it again")
    return RunOutcome(run_dir.name, run_dir.path, "not started", 1, "no status in its folder")
