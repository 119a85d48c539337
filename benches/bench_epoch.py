"""Per epoch, measured in one process: the default Digits run of the trainer and the same
training written by hand (handwritten.py) take turns, the order switching every pair, so
both sides see the same machine at nearly the same moment (a whole process each would add
the start-up's noise to a 50 ms quantity). Prints one JSON line per pair: the median epoch
of each side, epochs 2-20.

An epoch is what happens between two evaluations: the training batches, the dev
evaluation, and for the trainer everything it does per epoch besides (metrics.csv,
states/last.pt and best.pt, TensorBoard, the log line); on the hand-written side one
accuracy on dev and a copy of the best state. Both sides use the trainer's thread count.

Called by bench.py; runnable alone: ``python benches/bench_epoch.py --pairs 5``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import statistics
import tempfile
from pathlib import Path

import handwritten
import torch

import sweeptrainer


def trainer_epoch_ms(results_dir: Path, pair: int) -> float:
    run = sweeptrainer.train(["progress_bar=false", f"experiment_id=pair{pair}"],
                             results_dir=results_dir)  # fmt: skip
    with open(run.run_dir / "metrics.csv", encoding="utf-8") as f:
        elapsed = [float(row["elapsed_s"]) for row in csv.DictReader(f)]
    return 1000 * statistics.median(b - a for a, b in itertools.pairwise(elapsed))


def handwritten_epoch_ms(data, threads: int) -> float:
    torch.set_num_threads(threads)  # the trainer's choice, so both sides compute alike
    epochs = handwritten.train(data, [256, 128], 20, 32, 1e-3, 1)["epoch_s"]
    return 1000 * statistics.median(epochs[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    data = handwritten.splits(*handwritten.load("digits"))
    with tempfile.TemporaryDirectory() as tmp:
        trainer_epoch_ms(Path(tmp), -1)  # warm-up: the first run imports and builds caches
        threads = torch.get_num_threads()
        handwritten_epoch_ms(data, threads)
        for pair in range(args.pairs):
            if pair % 2 == 0:
                ours = trainer_epoch_ms(Path(tmp), pair)
                theirs = handwritten_epoch_ms(data, threads)
            else:
                theirs = handwritten_epoch_ms(data, threads)
                ours = trainer_epoch_ms(Path(tmp), pair)
            print(json.dumps({"trainer_ms": ours, "handwritten_ms": theirs}), flush=True)


if __name__ == "__main__":
    main()
