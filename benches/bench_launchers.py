"""Benchmark: an 8-run sweep with the basic launcher vs the joblib launcher (2 jobs).

Whole processes, alternating, median of ``--repeats``; each measurement starts from an
empty results folder. The runs are CPU-bound (Digits, a 256-128 MLP, 30 epochs).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEP = ["-m", "seed=1,2,3,4,5,6,7,8", "iterations=30", "progress_bar=false"]
LAUNCHERS = {
    "basic": [],
    "joblib, 2 jobs": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
}


def timed(workdir: Path, extra: list[str]) -> float:
    shutil.rmtree(workdir / "results", ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sweeptrainer", *SWEEP, *extra], cwd=workdir,
                   check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in LAUNCHERS}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for name, extra in LAUNCHERS.items():
                times[name].append(timed(Path(tmp), extra))
    basic = statistics.median(times["basic"])
    print(f"8-run sweep (Digits, 30 epochs each), median of {args.repeats}")
    print(f"{'launcher':16} {'wall (s)':>9} {'speed-up':>9}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:16} {median:9.1f} {basic / median:8.2f}x")
    print("target: joblib with 2 jobs at least 1.6x on 2 cores")


if __name__ == "__main__":
    main()
