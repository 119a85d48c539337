"""Per epoch, interleaved: the default Digits run of the trainer, with a callback that runs
one epoch of the same training written by hand (handwritten.py) after each of the
trainer's evaluations. Both sides' epochs take turns within one process, a few tens of
milliseconds apart, so a machine whose speed drifts from second to second (a shared VM)
slows both alike. Prints one JSON line per run: the median epoch of each side and the
median of the per-epoch ratios, for the whole epoch and for its training batches alone
(the training loop: from the epoch's first batch to the end of its last optimizer step).

The trainer's epoch is timed from the callback's return to its next call: the rest of
the evaluation before (metrics.csv, states/last.pt and best.pt, TensorBoard), the training
batches, the dev evaluation with its three metrics. The hand-written epoch: the training
batches, one accuracy on dev in one batch, a copy of the best state. Both use the
trainer's torch threads; the hand-written epoch runs with its own RNG state, so the
trainer's random streams are untouched.

Called by bench.py; runnable alone: ``python benches/bench_epoch.py --runs 3``, and with
overrides to see what a part costs: ``... --runs 3 loggers.tensorboard=null``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import handwritten
import torch

import sweeptrainer


class HandEpochs:
    """A callback: one hand-written epoch between two of the trainer's; the pairs go to
    ``out`` (JSON) when training ends."""

    def __init__(self, out: str) -> None:
        self.out = out
        data = handwritten.splits(*handwritten.load("digits"))
        with torch.random.fork_rng():
            self.hand = handwritten.Training(data, [256, 128], 32, 1e-3, 1)
            self.rng = torch.get_rng_state()
        self.ours: list[tuple[float, float]] = []  # (epoch, its training batches)
        self.theirs: list[tuple[float, float]] = []
        self._left: float | None = None
        self._batches: tuple[float, float] = (0.0, 0.0)

    def cb_on_iteration_begin(self) -> None:
        self._batches = (time.perf_counter(), 0.0)

    def cb_on_dev_begin(self) -> None:
        self._batches = (self._batches[0], time.perf_counter())

    def cb_on_iteration_end(self) -> None:
        arrived = time.perf_counter()
        if self._left is not None:
            begin, end = self._batches
            self.ours.append((arrived - self._left, end - begin))
        with torch.random.fork_rng():
            torch.set_rng_state(self.rng)
            trained = self.hand.train_time
            epoch = self.hand.epoch()
            self.theirs.append((epoch, self.hand.train_time - trained))
            self.rng = torch.get_rng_state()
        self._left = time.perf_counter()

    def cb_on_train_end(self) -> None:
        pairs = list(zip(self.ours, self.theirs[1:], strict=True))  # epochs 2, 3, ...
        Path(self.out).write_text(json.dumps(pairs))


def run(results_dir: Path, number: int, overrides: list[str]) -> dict[str, float]:
    out = results_dir / f"pairs{number}.json"
    sweeptrainer.train(
        ["progress_bar=false", f"experiment_id=run{number}",
         "+callbacks.hand._target_=bench_epoch.HandEpochs", f"+callbacks.hand.out={out}",
         *overrides],
        results_dir=results_dir,
    )  # fmt: skip
    pairs = json.loads(out.read_text())
    result = {}
    for part, prefix in ((0, ""), (1, "batches_")):  # the whole epoch, its batches alone
        result[f"trainer_{prefix}ms"] = 1000 * statistics.median(a[part] for a, _ in pairs)
        result[f"handwritten_{prefix}ms"] = 1000 * statistics.median(b[part] for _, b in pairs)
        result[f"{prefix}ratio"] = statistics.median(a[part] / b[part] for a, b in pairs)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("overrides", nargs="*", help="for the trainer's runs (what costs what)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp), -1, args.overrides)  # warm-up: the first run imports, fills caches
        for number in range(args.runs):
            print(json.dumps(run(Path(tmp), number, args.overrides)), flush=True)


if __name__ == "__main__":
    main()
