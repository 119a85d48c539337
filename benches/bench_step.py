"""Per-step overhead, measured in one process: the trainer and the hand-written loop take
turns on the same compute-bound problem (an MLP with one hidden layer of 1024 units on
20 000 synthetic samples x 256 features, batch 32, 3 epochs), the order switching every
pair so neither side always runs second. Prints one JSON line per pair: the time per
optimizer step of each side, training batches only (no evaluation, no saving).

Called by bench.py; runnable alone: ``python benches/bench_step.py --pairs 5``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import handwritten

import sweeptrainer

EPOCHS, HIDDEN, BATCH = 3, 1024, 32
OVERRIDES = ["dataset._target_=synthetic.Synthetic", "dataset.id=Synthetic",
             f"model.hidden_sizes=[{HIDDEN}]", f"iterations={EPOCHS}", f"batch_size={BATCH}",
             "progress_bar=false", "+callbacks=timer"]  # fmt: skip
STEPS = EPOCHS * -(-14_000 // BATCH)  # the 70 % training split of synthetic.py, in batches


def trainer_step_ms(results_dir: Path, pair: int) -> float:
    run = sweeptrainer.train([*OVERRIDES, f"experiment_id=pair{pair}"], results_dir=results_dir)
    return 1000 * run.results["time_s"]["train"] / STEPS  # Timer: training batches only


def handwritten_step_ms(data) -> float:
    return handwritten.train(data, [HIDDEN], EPOCHS, BATCH, 1e-3, 1)["step_ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    data = handwritten.splits(*handwritten.load("synthetic"))
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.pairs):
            if pair % 2 == 0:
                ours, theirs = trainer_step_ms(Path(tmp), pair), handwritten_step_ms(data)
            else:
                theirs, ours = handwritten_step_ms(data), trainer_step_ms(Path(tmp), pair)
            print(json.dumps({"trainer_ms": ours, "handwritten_ms": theirs}), flush=True)


if __name__ == "__main__":
    main()
