"""Benchmark: an 8-run sweep with the basic launcher vs a real one-node SLURM cluster.

The cluster is brought up by ``tests/clusters/slurm.py`` (root and the Debian packages
slurmctld slurmd slurm-client slurmdbd munge mariadb-server needed; it says what is
missing) and stopped at the end. Whole processes, alternating, median of ``--repeats``;
each measurement starts from an empty results folder. The SLURM sweep uses the packaged
``hydra/launcher=slurm_cpu`` (one core per job: as many jobs at once as the node has
cores). Prints a markdown table.

    python benches/bench_slurm.py [--repeats 3] [--epochs 30]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.clusters

from tests.clusters.slurm import PARTITION, start


def timed(workdir: Path, args: list[str], env: dict[str, str]) -> float:
    shutil.rmtree(workdir / "results", ignore_errors=True)
    clock = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sweeptrainer", *args], cwd=workdir, env=env,
                   check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    sweep = ["-m", "seed=1,2,3,4,5,6,7,8", f"iterations={args.epochs}", "progress_bar=false"]
    cluster = start()
    if isinstance(cluster, str):
        raise SystemExit(f"bench_slurm: {cluster}")
    launchers = {
        "basic": [],
        f"SLURM, slurm_cpu, {cluster.cpus} cores": [
            "hydra/launcher=slurm_cpu",
            f"hydra.launcher.partition={PARTITION}",
        ],
    }
    times: dict[str, list[float]] = {name: [] for name in launchers}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeats):
                for name, extra in launchers.items():
                    times[name].append(timed(Path(tmp), sweep + extra, cluster.env))
    finally:
        cluster.stop()
    basic = statistics.median(times["basic"])
    print(f"8-run sweep (Digits, {args.epochs} epochs each), median of {args.repeats}; "
          f"cluster bring-up {cluster.bring_up_s:.0f} s (not counted)\n")  # fmt: skip
    print("| launcher | wall (s) | runs (s) | vs basic |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {name} | {median:.1f} | {runs} | {basic / median:.2f}x |")


if __name__ == "__main__":
    main()
