"""An epoch over 2,000 small image files with ``num_workers=2``: the trainer (the ``Files``
dataset) against the same loop hand-written with a plain DataLoader, in one process, the
order switching every pair. Both read every PNG with Pillow in 2 worker processes, scale it
to [-1, 1], and train the same small CNN (batch 32, Adam) for one epoch. Prints one JSON
line per pair: the seconds of the epoch's training batches on each side (workers' start-up
included on both).

Called by bench.py; runnable alone: ``python benches/bench_files.py --pairs 5``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn

import sweeptrainer

N_FILES, SIZE, BATCH, WORKERS = 2000, 28, 32, 2
CLASSES = 10


def make_images(root: Path) -> None:
    """2,000 grey 28x28 PNGs: scikit-learn's digits, upscaled, cycled with a one-pixel shift."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = []
    for i in range(N_FILES):
        k = i % len(digits.images)
        pixels = np.roll(digits.images[k], i // len(digits.images), axis=1) * (255 / 16)
        image = Image.fromarray(pixels.astype(np.uint8), mode="L").resize((SIZE, SIZE))
        name = f"{digits.target[k]}/{i:05d}.png"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        image.save(root / name)
        rows.append({"file": name, "label": int(digits.target[k])})
    frame = pd.DataFrame(rows)
    frame.iloc[:1600].to_csv(root / "train.csv", index=False)
    frame.iloc[1600:1800].to_csv(root / "dev.csv", index=False)
    frame.iloc[1800:].to_csv(root / "test.csv", index=False)


def overrides(root: Path, pair: int) -> list[str]:
    return [
        "dataset=Files", f"dataset.path={root}", "dataset.image_mode=L",
        "+dataset.transform=[{_target_: sweeptrainer.data.transforms.Normalize, mean: [0.5], "
        "std: [0.5]}]", "model=CNN", "model.channels=[8,16]", "iterations=1",
        f"batch_size={BATCH}", f"num_workers={WORKERS}", "progress_bar=false",
        "+callbacks=timer", f"experiment_id=pair{pair}",
    ]  # fmt: skip


def trainer_epoch_s(root: Path, results: Path, pair: int) -> float:
    run = sweeptrainer.train(overrides(root, pair), results_dir=results)
    return run.results["time_s"]["train"]  # Timer: the training batches of the epoch


class Pngs(torch.utils.data.Dataset):
    def __init__(self, root: Path, table: str) -> None:
        frame = pd.read_csv(root / table)
        self.paths = [root / f for f in frame.file]
        self.labels = torch.tensor(frame.label.to_numpy())

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        with Image.open(self.paths[i]) as image:
            x = torch.from_numpy(np.asarray(image.convert("L"), dtype=np.float32) / 255.0)
        return (x[None] - 0.5) / 0.5, self.labels[i]


def cnn() -> nn.Module:
    """sweeptrainer's CNN with channels [8, 16] on 1x28x28, written out."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.1), nn.Linear(16 * 7 * 7, CLASSES),
    )  # fmt: skip


def handwritten_epoch_s(root: Path) -> float:
    torch.manual_seed(1)
    model = cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(
        Pngs(root, "train.csv"), batch_size=BATCH, shuffle=True, num_workers=WORKERS,
        generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    model.train()
    start = time.perf_counter()
    for x, y in loader:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        make_images(root)
        for pair in range(args.pairs):
            if pair % 2 == 0:
                ours = trainer_epoch_s(root, Path(tmp), pair)
                theirs = handwritten_epoch_s(root)
            else:
                theirs = handwritten_epoch_s(root)
                ours = trainer_epoch_s(root, Path(tmp), pair)
            print(json.dumps({"trainer_s": ours, "handwritten_s": theirs}), flush=True)


if __name__ == "__main__":
    main()
