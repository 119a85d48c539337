"""The hand-written baseline: the default sweeptrainer run, as a plain PyTorch script.

Same data split, preprocessing, model, optimizer, batch size, epochs and seed;
evaluates on dev every epoch, keeps the best state, tests it. No sweeptrainer import.
Prints one JSON line: train_time_s, test_accuracy.
"""

import json
import random
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

SEED, EPOCHS, BATCH, LR = 1, 20, 32, 1e-3

random.seed(SEED)
np.random.seed(SEED)
torch.manual_seed(SEED)

data = load_digits()
x, y = data.data.astype(np.float32), data.target
order = np.random.default_rng(0).permutation(len(x))
n_dev = n_test = round(len(x) * 0.15)
dev_idx, test_idx, train_idx = order[:n_dev], order[n_dev : n_dev + n_test], order[n_dev + n_test :]
mean, std = x[train_idx].mean(0), x[train_idx].std(0)
std[std == 0] = 1.0


def tensors(idx):
    return torch.from_numpy((x[idx] - mean) / std), torch.from_numpy(y[idx].astype(np.int64))


(x_train, y_train), (x_dev, y_dev), (x_test, y_test) = map(tensors, (train_idx, dev_idx, test_idx))

model = nn.Sequential(
    nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.2),
    nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.2),
    nn.Linear(128, 10),
)  # fmt: skip
optimizer = torch.optim.Adam(model.parameters(), lr=LR)
criterion = nn.CrossEntropyLoss()


def accuracy(xs, ys):
    model.eval()
    with torch.no_grad():
        return (model(xs).argmax(-1) == ys).float().mean().item()


start = time.perf_counter()
best_acc, best_state = -1.0, None
for _ in range(EPOCHS):
    model.train()
    perm = torch.randperm(len(x_train))
    for i in range(0, len(perm), BATCH):
        idx = perm[i : i + BATCH]
        optimizer.zero_grad()
        loss = criterion(model(x_train[idx]), y_train[idx])
        loss.backward()
        optimizer.step()
    acc = accuracy(x_dev, y_dev)
    if acc > best_acc:
        best_acc, best_state = acc, {k: v.clone() for k, v in model.state_dict().items()}
train_time = time.perf_counter() - start
model.load_state_dict(best_state)
print(json.dumps({"train_time_s": train_time, "test_accuracy": accuracy(x_test, y_test)}))
