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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.clusters

from launcher_sweeps import alternate, table
from tests.clusters.slurm import PARTITION, start


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
    try:
        times = alternate(sweep, launchers, args.repeats, cluster.env)
    finally:
        cluster.stop()
    print(f"8-run sweep (Digits, {args.epochs} epochs each), median of {args.repeats}; "
          f"cluster bring-up {cluster.bring_up_s:.0f} s (not counted)\n")  # fmt: skip
    print(table(times))


if __name__ == "__main__":
    main()
