"""A 4-run sweep on audio files with the preprocessing cache and without it.

400 two-second stereo WAV clips at 44.1 kHz (synthesised, as from a recorder); each sample
is read, mixed to mono and resampled to 16 kHz (the loader), cut to 1 s and made a 64-bin
log-mel spectrogram; a small audio CNN trains for 3 epochs. ``cached``: those steps are
``preprocess`` (computed once into the cache by the first run, read by the other three);
``uncached``: the same steps as ``transform`` (computed for every sample of every epoch of
every run); ``cached, built before``: the sweep again with the cache already there
(``trainer preprocess`` ahead, or a second sweep command). Prints one JSON line per repeat
with the three wall times (whole ``trainer -m`` processes).

Called by bench.py; runnable alone: ``python benches/bench_cache.py --repeats 3``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

RATE = 44100
BIN = Path(sys.executable).parent
TRAINER = [str(BIN / "trainer")] if (BIN / "trainer").exists() else [sys.executable, "-m",
                                                                       "sweeptrainer"]  # fmt: skip
STEPS = ("[{_target_: sweeptrainer.data.transforms.FixedLength, length: 16000}, "
         "{_target_: sweeptrainer.data.transforms.MelSpectrogram, sample_rate: 16000, "
         "n_mels: 64}]")  # fmt: skip
COMMON = ["-m", "seed=1,2,3,4", "dataset=AudioFiles", "dataset.path=clips", "model=AudioCNN",
          "model.channels=[8,16]", "iterations=3", "progress_bar=false"]  # fmt: skip
CACHED = [*COMMON, f"dataset.preprocess={STEPS}"]
UNCACHED = [*COMMON, "dataset.preprocess=[]",
            "dataset.transform=" + STEPS[:-1] + ", {_target_: "
            "sweeptrainer.data.transforms.Standardize}]"]  # fmt: skip


def make_clips(root: Path, n: int = 400) -> None:
    import soundfile

    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        label = ["low", "mid", "high", "sweep"][i % 4]
        t = np.arange(2 * RATE) / RATE
        f = {"low": 200, "mid": 800, "high": 2500}.get(label, 0) or 200 + 1000 * t
        clip = 0.4 * np.sin(2 * np.pi * np.cumsum(np.broadcast_to(f, t.shape)) / RATE)
        stereo = np.stack([clip, 0.8 * clip], axis=1) + rng.normal(0, 0.05, (len(t), 2))
        name = f"{label}/{i:04d}.wav"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(root / name, stereo.astype(np.float32), RATE)
        rows.append({"file": name, "label": label})
    frame = pd.DataFrame(rows)
    frame.iloc[:280].to_csv(root / "train.csv", index=False)
    frame.iloc[280:340].to_csv(root / "dev.csv", index=False)
    frame.iloc[340:].to_csv(root / "test.csv", index=False)


def sweep_s(work: Path, args: list[str]) -> float:
    shutil.rmtree(work / "results", ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([*TRAINER, *args], cwd=work, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_clips(work / "clips")
        for _ in range(args.repeats):
            shutil.rmtree(work / "clips/.sweeptrainer-cache", ignore_errors=True)
            cached = sweep_s(work, CACHED)  # the first run builds the cache
            built = sweep_s(work, CACHED)  # the cache is there
            uncached = sweep_s(work, UNCACHED)
            print(json.dumps({"cached_s": cached, "cached_built_before_s": built,
                              "uncached_s": uncached}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
