"""Benchmark: an 8-run tiny sweep with the basic launcher vs a local Ray (hydra/launcher=ray).

Run it with the Ray venv (``make install-ray``; ``make bench-ray``): both sides run there.
Whole processes, alternating, median of ``--repeats``; each measurement starts from an
empty results folder. The runs are tiny (Digits, 10 epochs): the table shows what Ray's
start-up and per-task costs are worth against runs of a few seconds. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

from launcher_sweeps import alternate, table

SWEEP = ["-m", "seed=1,2,3,4,5,6,7,8", "iterations=10", "progress_bar=false"]


def launchers(ray_temp: Path) -> dict[str, list[str]]:
    return {
        "basic": [],
        # a private session folder: a short path (Ray's sockets) apart from any other Ray here
        "ray (local, 1 CPU a run)": [
            "hydra/launcher=ray",
            f"+hydra.launcher.ray.init._temp_dir={ray_temp}",
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    try:
        import hydra_plugins.hydra_ray_launcher  # noqa: F401
    except ImportError:
        sys.exit("needs hydra-ray-launcher: make install-ray, then make bench-ray")
    ray_temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        times = alternate(SWEEP, launchers(ray_temp), args.repeats, env)
    finally:
        shutil.rmtree(ray_temp, ignore_errors=True)
    print(f"8-run sweep (Digits, 10 epochs each), median of {args.repeats}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}\n")  # fmt: skip
    print(table(times))


if __name__ == "__main__":
    main()
