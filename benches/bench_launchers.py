"""Benchmark: an 8-run sweep with the basic launcher vs the joblib launcher (2 jobs).

Whole processes, alternating, median of ``--repeats``; each measurement starts from an
empty results folder. The runs are CPU-bound (Digits, a 256-128 MLP, 30 epochs).
"""

from __future__ import annotations

import argparse

from launcher_sweeps import alternate, table

SWEEP = ["-m", "seed=1,2,3,4,5,6,7,8", "iterations=30", "progress_bar=false"]
LAUNCHERS = {
    "basic": [],
    "joblib, 2 jobs": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times = alternate(SWEEP, LAUNCHERS, args.repeats)
    print(f"8-run sweep (Digits, 30 epochs each), median of {args.repeats}\n")
    print(table(times))
    print("\ntarget: joblib with 2 jobs at least 1.6x on 2 cores")


if __name__ == "__main__":
    main()
