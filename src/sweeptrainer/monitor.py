"""`trainer status` and `trainer cancel`: watch and stop the runs of an experiment.

Both read the run folders alone (status.yaml, metrics.csv, config.yaml), so they work
for runs started by any launcher whose jobs share the file system.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeptrainer.errors import ConfigError, DamagedRunError, did_you_mean
from sweeptrainer.io.lease import STALE, activity
from sweeptrainer.io.lock import RunLock
from sweeptrainer.io.run_dir import RunDir
from sweeptrainer.maintenance import experiment_runs


@dataclass
class RunProgress:
    """One row of `trainer status`."""

    name: str
    state: str
    iteration: int
    total: int | None
    metric: str | None
    value: float | None
    elapsed_s: float | None
    host: str | None
    pid: int | None
    problem: str | None = None  # why a damaged run is damaged
    world: int = 1  # the processes that train it (one run across ranks: rank 0's row)
    note: str | None = None  # after the state: the node that trains it, or a killed run's
    # node and when it was last heard

    @property
    def shown_state(self) -> str:
        """The state column: ``running on node2`` for another node's fresh lease, ``killed
        (node2, last heard at ...)`` for a stale one."""
        if not self.note:
            return self.state
        return (
            f"{self.state} {self.note}"
            if self.state == "running"
            else f"{self.state} ({self.note})"
        )

    @property
    def eta_s(self) -> float | None:
        if self.state != "running" or not self.iteration or not self.total or not self.elapsed_s:
            return None
        return self.elapsed_s / self.iteration * (self.total - self.iteration)


def progress(run: RunDir) -> RunProgress:
    try:
        return _progress(run)
    except DamagedRunError as err:  # listed, and the table goes on
        return RunProgress(run.name, "damaged", 0, None, None, None, None, None, None, str(err))
    except (ValueError, KeyError, TypeError, AttributeError) as err:  # fields of odd types
        problem = f"{run.path}: unexpected content ({type(err).__name__}: {err})"
        return RunProgress(run.name, "damaged", 0, None, None, None, None, None, None, problem)


def _progress(run: RunDir) -> RunProgress:
    # the direction by the metric's name: nothing a run folder names is imported
    from sweeptrainer.components.metrics import higher_is_better

    status = run.read_status() or {}
    state = status.get("state", "unknown")
    if state == "finished" and (problem := run.finished_problem()):
        raise DamagedRunError(problem)
    state, host, pid, note = _liveness(run, state, status)
    config = run.read_config() or {}
    metric = (config.get("dataset") or {}).get("tracking_metric")
    iteration, value, elapsed = 0, None, None
    metrics = run.read_metrics()
    if metrics is not None and len(metrics):
        last = metrics.iloc[-1]
        iteration, elapsed = int(last["iteration"]), float(last["elapsed_s"])
        column = "dev_loss" if metric == "loss" else f"dev_{metric}"
        if column in metrics.columns and metrics[column].notna().any():
            scores = metrics[column].astype(float)
            value = float(scores.max() if higher_is_better(str(metric)) else scores.min())
    total = status.get("iterations", config.get("iterations"))
    world = status.get("world", 1)
    return RunProgress(run.name, state, iteration, total, metric, value, elapsed, host, pid,
                       note=note, world=world if isinstance(world, int) else 1)  # fmt: skip


def _liveness(
    run: RunDir, state: str, status: dict[str, Any]
) -> tuple[str, str | None, int | None, str | None]:
    """State, host, pid and note of a run: a run marked running whose process is gone is
    ``killed`` (the next run of the command resumes it). Its lease says who trains it on
    another node (that node's lock is not seen from here), or when that node was last heard."""
    if state != "running":
        return state, None, None, None
    live = activity(run.path)
    if live.elsewhere:
        return "running", live.host, live.pid, f"on {live.host}"
    if live.state == STALE and live.last_heard is not None:
        heard = live.last_heard.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        return "killed", None, None, f"{live.host}, last heard at {heard}"
    if not live.running:
        return "killed", None, None, None
    return "running", status.get("host"), status.get("pid"), None


def pending(experiment_dir: str | Path, present: set[str]) -> list[RunProgress]:
    """The runs the experiment's newest sweep listed that have no folder yet."""
    from sweeptrainer.io import sweep_record

    record = sweep_record.latest(Path(experiment_dir))
    if record is None:
        return []
    return [
        RunProgress(name, "pending", 0, None, None, None, None, None, None)
        for name in record.runs
        if name not in present
    ]


def _order(experiment_dir: str | Path, rows: list[RunProgress]) -> list[RunProgress]:
    """The newest sweep's runs in its order first, then the experiment's other runs."""
    from sweeptrainer.io import sweep_record

    record = sweep_record.latest(Path(experiment_dir))
    place = {name: i for i, name in enumerate(record.runs)} if record is not None else {}
    return sorted(rows, key=lambda r: (place.get(r.name, len(place)), r.name))


def duration(seconds: float | None) -> str:
    """``1:02:03`` or ``2:03`` (``-`` for None): elapsed times, ETAs, a sweep's total."""
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def status_table(experiment_dir: str | Path) -> str:
    """Every run of the experiment, and those its newest sweep has not started yet: state,
    progress, the best dev score of the tracking metric so far, elapsed time and ETA."""
    rows = [progress(run) for run in experiment_runs(experiment_dir)]
    rows = _order(experiment_dir, rows + pending(experiment_dir, {r.name for r in rows}))
    header = ("run", "state", "progress", "best dev", "elapsed", "eta", "host:pid")
    lines = [header]
    for r in rows:
        metric = f"{r.metric} {r.value:.4f}" if r.value is not None else "-"
        where = f"{r.host}:{r.pid}" if r.pid else "-"
        where += f", {r.world} processes" if r.world > 1 else ""  # one run across ranks
        done = (
            f"{r.iteration}/{r.total}"
            if r.total
            else ("-" if r.state in ("pending", "damaged") else str(r.iteration))
        )
        lines.append(
            (r.name, r.shown_state, done, metric, duration(r.elapsed_s), duration(r.eta_s), where)
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(f"{cell:{w}}" for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    text.append(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    text += [f"damaged: {r.name}: {r.problem}" for r in rows if r.problem]
    from sweeptrainer.study import study_lines

    text += study_lines(Path(experiment_dir))  # a search's progress: trials done of N, best
    return "\n".join(text)


def watch(experiment_dir: str | Path, interval: float, rounds: int | None = None) -> None:
    """Print the table every ``interval`` seconds (``rounds`` times, or until Ctrl-C)."""
    done, terminal = 0, os.isatty(1)
    if terminal:
        print("\033[2J", end="")  # clear once; then each round redraws in place
    while rounds is None or done < rounds:
        text = f"{time.strftime('%H:%M:%S')} {experiment_dir}\n{status_table(experiment_dir)}"
        if terminal:  # home, each line cleared to its end, the rest of the screen cleared
            text = "\033[H" + text.replace("\n", "\033[K\n") + "\033[K\033[J"
        print(text, flush=True)
        done += 1
        if rounds is None or done < rounds:
            time.sleep(interval)


def cancel(experiment_dir: str | Path, names: list[str]) -> tuple[list[str], list[str]]:
    """SIGTERM the running runs (all, or those named) on this host: they save and stop.

    Returns (signalled, not reached) with a reason for each run not reached.
    """
    runs = {r.name: r for r in experiment_runs(experiment_dir)}
    unknown = [n for n in names if n not in runs]
    if unknown:
        raise ConfigError(
            f"RUN: no run {unknown[0]!r} in {str(experiment_dir)!r}"
            f"{did_you_mean(unknown[0], runs)}; its runs: {', '.join(sorted(runs)) or '(none)'}"
        )
    chosen = [runs[n] for n in names] if names else list(runs.values())
    signalled, missed = [], []
    host = socket.gethostname()
    for run in chosen:
        info = progress(run)
        proven = info.state == "running" and RunLock(run.path).held_by(info.pid)
        if info.state == "running" and not proven:
            info = progress(run)  # a free lock: the run may have ended since the first look
        if info.state != "running":
            if names:
                missed.append(f"{run.name}: not running ({info.state})")
            continue
        if info.host != host:
            missed.append(f"{run.name}: runs on {info.host}, not on this host ({host})")
            continue
        if not proven:
            # status.yaml is stale, damaged or not the run's: its pid proves nothing
            missed.append(f"{run.name}: pid {info.pid} does not hold the run's lock; not signalled")
            continue
        try:
            os.kill(int(info.pid), signal.SIGTERM)  # type: ignore[arg-type]
        except (ProcessLookupError, PermissionError, TypeError) as err:
            missed.append(f"{run.name}: pid {info.pid} not reachable ({type(err).__name__})")
            continue
        signalled.append(run.name)
    return signalled, missed
