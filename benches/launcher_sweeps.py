"""The launcher benches' one method (bench_launchers, bench_slurm, bench_ray): the same
sweep command with each launcher's overrides, whole processes, alternating, each from an
empty results folder; a markdown table of the medians against the basic launcher."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(workdir: Path, args: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds ``trainer ARGS`` takes in ``workdir``, from an empty results folder."""
    shutil.rmtree(workdir / "results", ignore_errors=True)
    clock = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sweeptrainer", *args], cwd=workdir,
                   env=env or dict(os.environ), check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - clock


def alternate(
    sweep: list[str], sides: dict[str, list[str]], repeats: int, env: dict[str, str] | None = None
) -> dict[str, list[float]]:
    """The wall times of ``sweep`` plus each side's overrides, the sides taking turns."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for name, extra in sides.items():
                times[name].append(timed(Path(tmp), [*sweep, *extra], env))
    return times


def table(times: dict[str, list[float]], baseline: str = "basic") -> str:
    """Median, every measurement, and the speed against ``baseline``, a row per side."""
    base = statistics.median(times[baseline])
    rows = ["| launcher | wall (s) | runs (s) | vs basic |", "|---|---:|---:|---:|"]
    for name, values in times.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.1f}" for v in values)
        rows.append(f"| {name} | {median:.1f} | {runs} | {base / median:.2f}x |")
    return "\n".join(rows)
