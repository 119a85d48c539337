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

from sweeptrainer.errors import ConfigError, did_you_mean
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

    @property
    def eta_s(self) -> float | None:
        if self.state != "running" or not self.iteration or not self.total or not self.elapsed_s:
            return None
        return self.elapsed_s / self.iteration * (self.total - self.iteration)


def progress(run: RunDir) -> RunProgress:
    status = run.read_status() or {}
    state = status.get("state", "unknown")
    if state == "running" and not RunLock(run.path).held_elsewhere():
        state = "killed"  # its process is gone: the next run of the command resumes it
    config = run.read_config() or {}
    metric = (config.get("dataset") or {}).get("tracking_metric")
    iteration, value, elapsed = 0, None, None
    metrics = run.read_metrics()
    if metrics is not None and len(metrics):
        last = metrics.iloc[-1]
        iteration, elapsed = int(last["iteration"]), float(last["elapsed_s"])
        column = f"dev_{metric}"
        value = float(last[column]) if column in metrics.columns else None
    total = status.get("iterations", config.get("iterations"))
    running = state == "running"
    return RunProgress(run.name, state, iteration, total, metric, value, elapsed,
                       status.get("host") if running else None,
                       status.get("pid") if running else None)  # fmt: skip


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def status_table(experiment_dir: str | Path) -> str:
    rows = [progress(run) for run in experiment_runs(experiment_dir)]
    header = ("run", "state", "progress", "last dev metric", "elapsed", "eta", "host:pid")
    lines = [header]
    for r in rows:
        metric = f"{r.metric} {r.value:.4f}" if r.value is not None else "-"
        where = f"{r.host}:{r.pid}" if r.pid else "-"
        done = f"{r.iteration}/{r.total}" if r.total else str(r.iteration)
        lines.append(
            (r.name, r.state, done, metric, _duration(r.elapsed_s), _duration(r.eta_s), where)
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
    return "\n".join(text)


def watch(experiment_dir: str | Path, interval: float, rounds: int | None = None) -> None:
    """Print the table every ``interval`` seconds (``rounds`` times, or until Ctrl-C)."""
    done = 0
    while rounds is None or done < rounds:
        print("\033[2J\033[H" if os.isatty(1) else "", end="")
        print(time.strftime("%H:%M:%S"), experiment_dir)
        print(status_table(experiment_dir), flush=True)
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
        if info.state != "running":
            if names:
                missed.append(f"{run.name}: not running ({info.state})")
            continue
        if info.host != host:
            missed.append(f"{run.name}: runs on {info.host}, not on this host ({host})")
            continue
        if not RunLock(run.path).held_by(info.pid):
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
