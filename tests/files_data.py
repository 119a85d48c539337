"""Small datasets of real files, written by the tests themselves (PNG, WAV, .npy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def split_tables(frame: pd.DataFrame, root: Path, fractions=(0.6, 0.2), seed: int = 0) -> None:
    """train/dev/test.csv under ``root`` from ``frame`` (a seeded shuffle)."""
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = [round(len(frame) * fractions[0]), round(len(frame) * sum(fractions))]
    for name, rows in zip(("train", "dev", "test"), np.split(order, cut), strict=True):
        frame.iloc[np.sort(rows)].to_csv(root / f"{name}.csv", index=False)


def write_digit_pngs(root: Path, n: int = 300, labels=DIGIT_NAMES[:4]) -> pd.DataFrame:
    """``n`` 8x8 digit images of the first classes as grey PNGs in a class layout, with
    train/dev/test.csv (columns file, label, writer): string labels."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = np.flatnonzero(digits.target < len(labels))[:n]
    rows = []
    for i in keep:
        label = labels[digits.target[i]]
        path = root / label / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8), mode="L").save(path)
        rows.append({"file": f"{label}/{i:04d}.png", "label": label, "writer": f"w{i % 3}"})
    frame = pd.DataFrame(rows)
    split_tables(frame, root)
    return frame


def write_tone_wavs(root: Path, n_per_class: int = 12, rate: int = 8000) -> pd.DataFrame:
    """Short WAV clips of three classes (low, mid, high tones in noise, 0.2 to 0.3 s, lengths
    differ) by three speakers, with train/dev/test.csv (columns file, label, speaker)."""
    import soundfile

    rng = np.random.default_rng(0)
    rows = []
    for label, freq in (("low", 300.0), ("mid", 900.0), ("high", 2000.0)):
        for k in range(n_per_class):
            speaker = f"s{k % 3}"
            t = np.arange(int(rate * rng.uniform(0.2, 0.3))) / rate
            tone = 0.5 * np.sin(2 * np.pi * freq * (1 + 0.05 * (k % 3)) * t)
            clip = (tone + rng.normal(0, 0.05, len(t))).astype(np.float32)
            name = f"{label}/{speaker}_{k}.wav"
            (root / label).mkdir(parents=True, exist_ok=True)
            soundfile.write(root / name, clip, rate, subtype="PCM_16")
            rows.append({"file": name, "label": label, "speaker": speaker})
    frame = pd.DataFrame(rows)
    split_tables(frame, root)
    return frame


# Overrides for a tiny audio run on write_tone_wavs' clips: 8 kHz, 0.25 s, 16 mel bins.
AUDIO = (
    "dataset=AudioFiles", "dataset.path=clips", "dataset.sample_rate=8000",
    "dataset.preprocess.0.length=2000", "dataset.preprocess.1.sample_rate=8000",
    "dataset.preprocess.1.n_mels=16", "+dataset.preprocess.1.n_fft=256",
    "+dataset.preprocess.1.hop_length=128", "model=AudioCNN", "model.channels=[4,8]",
    "batch_size=8", "progress_bar=false",
)  # fmt: skip
# Overrides for a tiny image run on write_digit_pngs' files.
IMAGES = (
    "dataset=ImageFiles", "dataset.path=images", "dataset.preprocess=[]", "model=CNN",
    "model.channels=[4,8]", "batch_size=16", "progress_bar=false",
)  # fmt: skip
