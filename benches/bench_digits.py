"""Benchmark: `trainer` on the default Digits config vs the hand-written script.

Both run as whole processes, alternating, ``--repeats`` times each; the table
shows medians and the ratio of the medians. Run with ``make bench``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def run_trainer(workdir: Path) -> dict[str, float]:
    shutil.rmtree(workdir / "results", ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "sweeptrainer", "progress_bar=false"],
        cwd=workdir, check=True, capture_output=True,
    )  # fmt: skip
    wall = time.perf_counter() - start
    (run,) = (workdir / "results/default/training").iterdir()
    results = yaml.safe_load((run / "results.yaml").read_text())
    return {
        "wall_s": wall,
        "train_time_s": results["train_time_s"],
        "test_accuracy": results["test"]["accuracy"],
    }


def run_handwritten(workdir: Path) -> dict[str, float]:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(HERE / "handwritten_digits.py")],
        cwd=workdir, check=True, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - start
    return {"wall_s": wall, **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows: dict[str, list[dict[str, float]]] = {"trainer": [], "hand-written": []}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        run_handwritten(workdir)  # warm the file cache for both
        for _ in range(args.repeats):
            rows["trainer"].append(run_trainer(workdir))
            rows["hand-written"].append(run_handwritten(workdir))
    med = {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for name, runs in rows.items()
    }
    print(f"Digits default config, {args.repeats} alternating runs each, medians")
    print(f"{'':14} {'wall time (s)':>14} {'training (s)':>13} {'test accuracy':>14}")
    for name, m in med.items():
        print(f"{name:14} {m['wall_s']:14.2f} {m['train_time_s']:13.2f} {m['test_accuracy']:14.4f}")
    ratio_wall = med["trainer"]["wall_s"] / med["hand-written"]["wall_s"]
    ratio_train = med["trainer"]["train_time_s"] / med["hand-written"]["train_time_s"]
    print(f"{'ratio':14} {ratio_wall:14.2f}x {ratio_train:12.2f}x")
    print("target: trainer wall time within 1.5x the hand-written script")


if __name__ == "__main__":
    main()
