"""Experiment-level housekeeping verbs: remove failed runs, remove surplus state files."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sweeptrainer.errors import ConfigError, DamagedRunError
from sweeptrainer.io.lease import Activity, activity
from sweeptrainer.io.lock import RunLock
from sweeptrainer.io.run_dir import TRAINING_DIR, RunDir


def experiment_runs(experiment_dir: str | Path) -> list[RunDir]:
    """Every run folder of an experiment; a ConfigError when it is not an experiment folder."""
    root = Path(experiment_dir)
    if not root.is_dir():
        raise ConfigError(f"EXPERIMENT_DIR: {str(root)!r} is not a folder")
    training = root / TRAINING_DIR
    if not training.is_dir():
        raise ConfigError(
            f"EXPERIMENT_DIR: {str(root)!r} is not an experiment folder "
            f"(it has no {TRAINING_DIR}/); expected <results_dir>/<experiment_id>"
        )
    # a symbolic link is never a run: following it could read or delete outside the experiment
    return [RunDir(p) for p in sorted(training.iterdir()) if p.is_dir() and not p.is_symlink()]


def _busy(live: Activity) -> str:
    """Why a run must be left alone now ("" when it may be cleaned up): a process trains it,
    on this host (its lock) or on another node (a fresh lease: that node's lock is not seen
    from here). A failed run with a fresh lease is being retried."""
    if live.elsewhere:
        return f"pid {live.pid} on {live.host} is training it right now"
    return "a process is training it right now" if live.running else ""


@contextmanager
def _claimed(run_path: Path) -> Iterator[str]:
    """Hold the run's lock for the block, so no run starts training it here meanwhile;
    yields why the run must be kept after all ("" when it may be cleaned up)."""
    lock = RunLock(run_path)
    if lock.path.is_symlink():  # locks nothing of this run, and is never opened through
        yield _busy(activity(run_path))
        return
    if not lock.acquire():
        yield "a process started training it"
        return
    try:
        live = activity(run_path)  # a lease of this host: our own lock, not a trainer's
        yield _busy(live) if live.elsewhere else ""
    finally:
        lock.release()


def rm_failed(
    experiment_dir: str | Path,
    yes: bool = False,
    dry_run: bool = False,
    ask: Callable[[str], str] | None = None,
) -> list[RunDir]:
    """Delete the folders of failed runs (after asking, unless ``yes``); return them."""
    failed, errors = [], {}
    for run in experiment_runs(experiment_dir):
        try:
            status = run.read_status() or {}
        except DamagedRunError as err:  # may hold a finished run's results: never removed here
            print(f"damaged, left alone: {run.path} ({err})")
            continue
        if status.get("state") == "failed" and (busy := _busy(activity(run.path))):
            print(f"kept {run.path}: {busy}")  # a retry that just started
        elif status.get("state") == "failed":
            failed.append(run)
            errors[run.name] = status.get("error", "")
    for run in failed:
        print(f"failed: {run.path} ({errors[run.name]})")
    if not failed:
        print("no failed runs")
        return []
    if dry_run:
        print(f"{len(failed)} failed run(s) would be removed (--dry-run: nothing removed)")
        return failed
    if not yes and not confirm(f"remove {len(failed)} failed run(s)? [y/N] ", ask or input):
        print("nothing removed")
        return []
    removed = []
    for run in failed:
        with _claimed(run.path) as busy:  # a retry may have taken it since it was listed
            if busy:
                print(f"kept {run.path}: {busy}")
                continue
            shutil.rmtree(run.path)
        removed.append(run)
    print(f"removed {len(removed)} failed run(s)")
    return removed


def confirm(question: str, ask: Callable[[str], str]) -> bool:
    try:
        return ask(question).strip().lower() in ("y", "yes")
    except (EOFError, OSError):  # no terminal to answer on (closed or captured stdin)
        print("\nno answer (standard input is closed); use --yes to remove without asking")
        return False


def rm_states(
    experiment_dir: str | Path,
    best_only: bool = False,
    dry_run: bool = False,
    yes: bool = False,
    ask: Callable[[str], str] | None = None,
) -> list[Path]:
    """Delete state files other than best.pt and last.pt (or all but best.pt), after
    asking unless ``yes``; return them. A states folder that is a symbolic link is left."""
    keep = {"best.pt"} if best_only else {"best.pt", "last.pt"}
    doomed = []
    for run in experiment_runs(experiment_dir):
        if not run.states.is_dir() or run.states.is_symlink():
            continue
        if busy := _busy(activity(run.path)):
            print(f"kept the states of {run.name}: {busy}")
            continue
        doomed += [p for p in sorted(run.states.glob("*.pt")) if p.name not in keep]
    sizes = {p: p.lstat().st_size for p in doomed}
    size = sum(sizes.values())
    for path in doomed:
        print(f"{'would remove' if dry_run else 'remove'} {path}")
    if doomed and not dry_run and not yes:
        question = f"remove {len(doomed)} state file(s), {size / 1e6:.1f} MB? [y/N] "
        if best_only:
            question = "runs without last.pt cannot be resumed or continued; " + question
        if not confirm(question, ask or input):
            print("nothing removed")
            return []
    removed = doomed if dry_run else []
    for run_dir, paths in itertools.groupby(doomed if not dry_run else [], lambda p: p.parent):
        with _claimed(run_dir.parent) as busy:  # held while deleting: no run starts meanwhile
            if busy:
                print(f"kept the states of {run_dir.parent.name}: {busy}")
                continue
            for path in paths:
                path.unlink()
                removed.append(path)
    verb = "would free" if dry_run else "freed"
    freed = sum(sizes[p] for p in removed)
    print(f"{len(removed)} state file(s), {verb} {freed / 1e6:.1f} MB")
    return removed
