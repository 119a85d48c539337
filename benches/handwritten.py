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


def train(data, hidden: list[int], epochs: int, batch: int, lr: float, seed: int) -> dict:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    (x_train, y_train), (x_dev, y_dev), (x_test, y_test) = data
    layers, size = [], x_train.shape[1]
    for h in hidden:
        layers += [nn.Linear(size, h), nn.ReLU(), nn.Dropout(0.2)]
        size = h
    model = nn.Sequential(*layers, nn.Linear(size, int(y_train.max()) + 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    criterion = nn.CrossEntropyLoss()

    def accuracy(xs, ys):
        model.eval()
        with torch.no_grad():
            return (model(xs).argmax(-1) == ys).float().mean().item()

    train_time, steps, epoch_s = 0.0, 0, []
    best_acc, best_state = -1.0, None
    fit_start = time.perf_counter()
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        perm = torch.randperm(len(x_train))
        for i in range(0, len(perm), batch):
            idx = perm[i : i + batch]
            optimizer.zero_grad()
            loss = criterion(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
            steps += 1
        train_time += time.perf_counter() - start
        acc = accuracy(x_dev, y_dev)
        if acc > best_acc:
            best_acc, best_state = acc, {k: v.clone() for k, v in model.state_dict().items()}
        epoch_s.append(time.perf_counter() - start)
    fit_time = time.perf_counter() - fit_start
    model.load_state_dict(best_state)
    return {
        "fit_time_s": fit_time,
        "train_time_s": train_time,
        "steps": steps,
        "step_ms": 1000 * train_time / steps,
        "epoch_s": epoch_s,  # each epoch: its training and the dev evaluation
        "test_accuracy": accuracy(x_test, y_test),
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
