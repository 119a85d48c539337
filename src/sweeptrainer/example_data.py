"""Small real datasets of files, written at ``trainer create`` time (no download).

- :func:`digit_images`: scikit-learn's handwritten digits as 32x32 grey PNG files in a
  class layout (``images/<label>/<n>.png``), listed in ``train/dev/test.csv``.
- :func:`audio_clips`: short WAV clips of four classes by five speakers, listed with
  their label and speaker. Spoken words (``yes``, ``no``, ``up``, ``down``) by the
  espeak-ng text-to-speech program when it is installed; else synthesised sounds
  (``rising``, ``falling``, ``steady``, ``beeps``: tones shaped per class, with a pitch
  and timbre per speaker and background noise), made with NumPy.

Both are seeded: the same files every time.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

SPLIT = (0.7, 0.15)  # train and dev fractions; the rest is test
SAMPLE_RATE = 16000


def _write_splits(frame: pd.DataFrame, root: Path, seed: int = 0) -> list[Path]:
    """train/dev/test.csv under ``root``, split per label (every split has every class)."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {"train": [], "dev": [], "test": []}
    for _, group in frame.groupby("label", sort=True):
        order = rng.permutation(group.index.to_numpy())
        n_train, n_dev = round(len(order) * SPLIT[0]), round(len(order) * SPLIT[1])
        parts["train"] += order[:n_train].tolist()
        parts["dev"] += order[n_train : n_train + n_dev].tolist()
        parts["test"] += order[n_train + n_dev :].tolist()
    paths = []
    for split, rows in parts.items():
        paths.append(root / f"{split}.csv")
        frame.loc[sorted(rows)].to_csv(paths[-1], index=False)
    return paths


DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def digit_images(root: Path, size: int = 32) -> list[Path]:
    """scikit-learn's 1797 digits as grey PNG files under ``root``; returns what was written."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows, written = [], []
    for i, (pixels, target) in enumerate(zip(digits.images, digits.target, strict=True)):
        label = DIGITS[int(target)]
        path = root / label / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray((pixels * (255 / 16)).astype(np.uint8), mode="L")
        image.resize((size, size), Image.Resampling.BILINEAR).save(path)
        rows.append({"file": f"{label}/{i:04d}.png", "label": label})
        written.append(path)
    return written + _write_splits(pd.DataFrame(rows), root)


# ----------------------------------------------------------------- audio

SPEAKERS = ("anna", "ben", "chloe", "dev", "emil")
WORDS = ("yes", "no", "up", "down")
SOUNDS = ("rising", "falling", "steady", "beeps")
VOICES = {"anna": "en+f2", "ben": "en+m1", "chloe": "en+f4", "dev": "en+m3", "emil": "en+m7"}


def _synthesised(label: str, speaker: int, rng: np.random.Generator) -> np.ndarray:
    """One clip of a class (0.5 to 1 s): a tone shaped per class, pitch and timbre per
    speaker, in background noise."""
    n = int(SAMPLE_RATE * rng.uniform(0.5, 1.0))
    t = np.arange(n) / SAMPLE_RATE
    f0 = (150.0 + 60.0 * speaker) * rng.uniform(0.93, 1.07)
    if label == "rising":
        freq = f0 * (1 + t / t[-1])
    elif label == "falling":
        freq = f0 * (2 - t / t[-1])
    else:
        freq = f0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t)) * (1.5 if label == "beeps" else 1)
    phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE
    weights = [1.0, 0.3 + 0.12 * speaker, 0.5 - 0.08 * speaker]  # timbre: the harmonics
    tone = sum(w * np.sin((k + 1) * phase) for k, w in enumerate(weights))
    envelope = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.03)
    if label == "beeps":
        envelope *= (np.sin(2 * np.pi * 3.0 * t / t[-1] * 2) > 0).astype(float)
    clip = 0.3 * tone * envelope / max(weights)
    noise = rng.normal(0, 1, n) * 0.3 * 10 ** (-rng.uniform(10, 25) / 20)
    return (clip + noise).astype(np.float32)


def _spoken(word: str, speaker: str, rate: int, pitch: int, path: Path) -> None:
    subprocess.run(
        [
            "espeak-ng",
            "-v",
            VOICES[speaker],
            "-s",
            str(rate),
            "-p",
            str(pitch),
            "-w",
            str(path),
            word,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def audio_clips(root: Path, per_speaker: int = 12, speech: bool | None = None) -> list[Path]:
    """WAV clips under ``root`` (``<label>/<speaker>_<n>.wav``) and train/dev/test.csv
    (columns file, label, speaker). ``speech``: None uses espeak-ng when installed."""
    import soundfile

    speech = shutil.which("espeak-ng") is not None if speech is None else speech
    labels = WORDS if speech else SOUNDS
    rng = np.random.default_rng(0)
    jobs, rows = [], []
    for label in labels:
        for s, speaker in enumerate(SPEAKERS):
            for k in range(per_speaker):
                name = f"{label}/{speaker}_{k:02d}.wav"
                (root / label).mkdir(parents=True, exist_ok=True)
                rows.append({"file": name, "label": label, "speaker": speaker})
                settings = (int(rng.integers(140, 200)), int(rng.integers(30, 70)))
                jobs.append((name, label, s, speaker, settings))
    if speech:
        with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(4) as pool:
            raw = [Path(tmp) / f"{i}.wav" for i in range(len(jobs))]

            def speak(i: int) -> None:
                _name, label, _s, speaker, (rate, pitch) = jobs[i]
                _spoken(label, speaker, rate, pitch, raw[i])

            list(pool.map(speak, range(len(jobs))))
            for path, (name, *_rest) in zip(raw, jobs, strict=True):
                signal, rate = soundfile.read(path, dtype="float32")
                noise = rng.normal(0, 0.003, len(signal)).astype(np.float32)
                soundfile.write(root / name, signal + noise, rate, subtype="PCM_16")
    else:
        for name, label, s, _speaker, _settings in jobs:
            soundfile.write(root / name, _synthesised(label, s, rng), SAMPLE_RATE, subtype="PCM_16")
    written = [root / name for name, *_ in jobs]
    return written + _write_splits(pd.DataFrame(rows), root)
