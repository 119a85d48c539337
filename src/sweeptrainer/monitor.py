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
from sweeptrainer.io.sweep_record import SweepRecord
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
    import pandas as pd

    # the direction by the metric's name: nothing a run folder names is imported
    from sweeptrainer.components.metrics import higher_is_better
    from sweeptrainer.io.untrusted import finite

    # every file through the run folder's readers (io/untrusted.py): anything of a shape
    # they do not expect is a DamagedRunError, listed as damaged
    status = run.read_status() or {}
    state = status.get("state", "unknown")
    if state == "finished" and (problem := run.finished_problem()):
        raise DamagedRunError(problem)
    state, host, pid, note = _liveness(run, state, status)
    config = run.read_config() or {}
    metric = config.get("dataset", {}).get("tracking_metric")
    iteration, value, elapsed = 0, None, None
    metrics = run.read_metrics()
    if metrics is not None and len(metrics):
        last = metrics.iloc[-1]  # its iteration a whole number: the reader checked
        iteration = int(last["iteration"])
        elapsed = finite(last["elapsed_s"]) if "elapsed_s" in metrics.columns else None
        column = "dev_loss" if metric == "loss" else f"dev_{metric}"
        if column in metrics.columns:
            scores = pd.to_numeric(metrics[column], errors="coerce")
            best = scores.max() if higher_is_better(str(metric)) else scores.min()
            value = finite(best)
    total = status.get("iterations", config.get("iterations"))
    # the status's world is checked when read: a whole number >= 1, or none
    return RunProgress(run.name, state, iteration, total, metric, value, elapsed, host, pid,
                       note=note, world=status.get("world") or 1)  # fmt: skip


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


PENDING_SHOWN = 20  # pending rows listed; the others are counted (a sweep may list 100,000)


def _pending(name: str) -> RunProgress:
    return RunProgress(name, "pending", 0, None, None, None, None, None, None)


def _ordered(rows: list[RunProgress], record: SweepRecord | None) -> tuple[list[RunProgress], int]:
    """The rows to list and the number of pending runs left out: the newest sweep's runs in
    its order (those without a folder yet as pending, the first :data:`PENDING_SHOWN`
    listed), then the experiment's other runs."""
    by_name = {r.name: r for r in rows}
    listed: list[RunProgress] = []
    shown, left_out = 0, 0
    # a name twice (two runs of one folder): listed once
    for name in dict.fromkeys(record.runs if record is not None else ()):
        row = by_name.pop(name, None)
        if row is not None:
            listed.append(row)
        elif shown < PENDING_SHOWN:
            listed.append(_pending(name))
            shown += 1
        else:
            left_out += 1
    return listed + sorted(by_name.values(), key=lambda r: r.name), left_out


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
    from sweeptrainer.io import sweep_record

    rows = [progress(run) for run in experiment_runs(experiment_dir)]
    problems: list[str] = []  # a damaged runs.yaml: said, and the table goes on without it
    record = sweep_record.latest(Path(experiment_dir), problems)  # read once
    rows, left_out = _ordered(rows, record)
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
    if left_out:
        text.append(f"... {left_out:,} more pending")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    if left_out:
        counts["pending"] = counts.get("pending", 0) + left_out
    text.append(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    text += [f"damaged: {r.name}: {r.problem}" for r in rows if r.problem]
    text += [f"damaged: {problem}" for problem in problems]
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
