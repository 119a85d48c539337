"""The hand-written baseline: what sweeptrainer's runs do, as a plain PyTorch loop.

Same data split and standardisation, model, optimizer, batch size, epochs and seed;
evaluates on dev every epoch, keeps the best state, tests it. No sweeptrainer import.

    python handwritten.py digits --seeds 1            # the default Digits run
    python handwritten.py digits --seeds 1,2,...,8    # several trainings in one process
    python handwritten.py synthetic --hidden 1024,1024 --epochs 3

Prints one JSON line per training: fit_time_s (training and evaluation),
train_time_s (the training batches only), steps, step_ms, test_accuracy.
"""

import argparse
import json
import random
import time

import numpy as np
import torch
from torch import nn


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "digits":
        from sklearn.datasets import load_digits

        data = load_digits()
        return data.data.astype(np.float32), data.target
    from synthetic import make_data

    return make_data()


def splits(x: np.ndarray, y: np.ndarray) -> list[tuple[torch.Tensor, torch.Tensor]]:
    order = np.random.default_rng(0).permutation(len(x))
    n_dev = n_test = round(len(x) * 0.15)
    parts = order[n_dev + n_test :], order[:n_dev], order[n_dev : n_dev + n_test]
    mean, std = x[parts[0]].mean(0), x[parts[0]].std(0)
    std[std == 0] = 1.0
    return [
        (torch.from_numpy((x[i] - mean) / std), torch.from_numpy(y[i].astype(np.int64)))
        for i in parts
    ]


class Training:
    """One hand-written training, epoch by epoch (bench_epoch.py interleaves its epochs with
    the trainer's)."""

    def __init__(self, data, hidden: list[int], batch: int, lr: float, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        (self.x_train, self.y_train), self.dev, self.test = data
        layers, size = [], self.x_train.shape[1]
        for h in hidden:
            layers += [nn.Linear(size, h), nn.ReLU(), nn.Dropout(0.2)]
            size = h
        self.model = nn.Sequential(*layers, nn.Linear(size, int(self.y_train.max()) + 1))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.criterion = nn.CrossEntropyLoss()
        self.batch, self.steps, self.train_time = batch, 0, 0.0
        self.best_acc, self.best_state = -1.0, None

    def accuracy(self, xs, ys) -> float:
        self.model.eval()
        with torch.no_grad():
            return (self.model(xs).argmax(-1) == ys).float().mean().item()

    def epoch(self) -> float:
        """Train one epoch, evaluate on dev, keep the best state; its seconds."""
        start = time.perf_counter()
        self.model.train()
        perm = torch.randperm(len(self.x_train))
        for i in range(0, len(perm), self.batch):
            idx = perm[i : i + self.batch]
            self.optimizer.zero_grad()
            loss = self.criterion(self.model(self.x_train[idx]), self.y_train[idx])
            loss.backward()
            self.optimizer.step()
            self.steps += 1
        self.train_time += time.perf_counter() - start
        acc = self.accuracy(*self.dev)
        if acc > self.best_acc:
            self.best_acc = acc
            self.best_state = {k: v.clone() for k, v in self.model.state_dict().items()}
        return time.perf_counter() - start


def train(data, hidden: list[int], epochs: int, batch: int, lr: float, seed: int) -> dict:
    training = Training(data, hidden, batch, lr, seed)
    fit_start = time.perf_counter()
    epoch_s = [training.epoch() for _ in range(epochs)]
    fit_time = time.perf_counter() - fit_start
    training.model.load_state_dict(training.best_state)
    return {
        "fit_time_s": fit_time,
        "train_time_s": training.train_time,
        "steps": training.steps,
        "step_ms": 1000 * training.train_time / training.steps,
        "epoch_s": epoch_s,  # each epoch: its training and the dev evaluation
        "test_accuracy": training.accuracy(*training.test),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", choices=["digits", "synthetic"])
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--hidden", default="256,128")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    data = splits(*load(args.data))
    hidden = [int(h) for h in args.hidden.split(",")]
    for seed in map(int, args.seeds.split(",")):
        print(json.dumps(train(data, hidden, args.epochs, args.batch, args.lr, seed)), flush=True)


if __name__ == "__main__":
    main()
