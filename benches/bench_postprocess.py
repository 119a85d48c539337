"""Benchmark: `trainer postprocess` on 100 synthetic run folders, plots included and excluded.

The runs are written through RunDir (the same files a real run leaves): a 5 x 4 x 5 sweep
(learning rate x hidden size x seed), 20 evaluations each, Digits-sized test outputs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from sweeptrainer.io.run_dir import RunDir, training_dir


def make_experiment(root: Path, n_lr: int = 5, n_hidden: int = 4, n_seeds: int = 5) -> Path:
    rng = np.random.default_rng(0)
    classes = [str(i) for i in range(10)]
    for lr in np.logspace(-4, -2, n_lr):
        for hidden in (32, 64, 128, 256)[:n_hidden]:
            for seed in range(1, n_seeds + 1):
                config = {"dataset": {"id": "Digits"}, "model": {"id": "FFNN", "hidden": hidden},
                          "optimizer": {"id": "Adam", "lr": float(lr)}, "learning_rate": float(lr),
                          "seed": seed, "iterations": 20, "results_dir": str(root)}  # fmt: skip
                name = f"Digits_FFNN_Adam_{lr:g}_32_epoch_20_None_{seed}_hidden-{hidden}"
                run = RunDir(training_dir(root, "bench") / name)
                run.path.mkdir(parents=True)
                run.write_config(yaml.safe_dump(config))
                acc = np.clip(
                    0.8 + 0.15 * (1 - np.exp(-np.arange(1, 21) / 5)) + rng.normal(0, 0.01, 20), 0, 1
                )
                rows = [
                    {"iteration": i + 1, "train_loss": 1 / (i + 1), "dev_loss": 1.2 / (i + 1),
                     "dev_accuracy": a, "dev_uar": a, "dev_f1": a,
                     "learning_rate": float(lr), "elapsed_s": 0.1 * i}
                    for i, a in enumerate(acc.tolist())
                ]  # fmt: skip
                run.write_metrics(rows)
                best = float(acc.max())
                scores = {"loss": 0.1, "accuracy": best, "uar": best, "f1": best}
                run.write_results({
                    "best_iteration": int(np.argmax(acc)) + 1, "tracking_metric": "accuracy",
                    "dev": scores, "test": {**scores, "accuracy": best - 0.01},
                    "train_time_s": 2.0,
                })  # fmt: skip
                target = rng.integers(0, 10, 270)
                pred = np.where(rng.random(270) < 0.95, target, rng.integers(0, 10, 270))
                scores = rng.dirichlet(np.ones(10), 270)
                frame = pd.DataFrame(
                    {"index": range(270), "target": target, "prediction": pred, "loss": 0.1}
                )
                frame = frame.join(pd.DataFrame(scores, columns=[f"score_{c}" for c in classes]))
                run.write_output("test", frame)
                run.write_status("finished", "hash")
    return root / "bench"


def timed(args: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "sweeptrainer", *args], check=True, capture_output=True
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        experiment = make_experiment(Path(tmp))
        runs = len(list((experiment / "training").iterdir()))
        with_plots = timed(["postprocess", str(experiment)], args.repeats)
        without = timed(["postprocess", str(experiment), "--no-plots"], args.repeats)
        start = time.perf_counter()
        from sweeptrainer.postprocess import postprocess

        postprocess(experiment, plots=False)
        in_process = time.perf_counter() - start
    print(f"trainer postprocess on {runs} synthetic runs, median of {args.repeats}")
    print(f"{'':34} {'seconds':>8}")
    print(f"{'whole process, with plots':34} {with_plots:8.2f}")
    print(f"{'whole process, --no-plots':34} {without:8.2f}")
    print(f"{'collect+aggregate+write, in-process':34} {in_process:8.2f}")
    print("target: a few seconds for 100 runs")


if __name__ == "__main__":
    main()
