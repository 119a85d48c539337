"""Dev evaluation split across processes (issue 32): ``evaluate`` over a 20 000-sample split
(synthetic.py's data) with an MLP of hidden size 1024, timed in one process and split over
processes (gloo, CPU).

Run under torchrun: ``torchrun --nproc_per_node=N benches/bench_eval.py``; rank 0 prints
one JSON line ``{"processes": N, "eval_s": median of 7}``. Each process has one torch
thread: what the trainer gives a run on this 2-core machine alone (half the cores) and a
run of two processes (the cores divided among them).
"""

from __future__ import annotations

import json
import statistics
import time
from types import SimpleNamespace

import torch
from synthetic import N_CLASSES, N_FEATURES, make_data
from torch import nn
from torch.utils.data import TensorDataset

from sweeptrainer.components.metrics import get_metrics
from sweeptrainer.training.batch_source import BatchSource
from sweeptrainer.training.distributed import Distributed
from sweeptrainer.training.evaluate import evaluate


def main() -> None:
    torch.set_num_threads(1)
    dist = Distributed.from_env()
    x, y = make_data()
    split = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(N_FEATURES, 1024), nn.ReLU(), nn.Linear(1024, N_CLASSES))
    source = BatchSource(split, 256, torch.device("cpu"))
    metrics = get_metrics(["accuracy", "uar", "f1"], "classification")
    dataset = SimpleNamespace(task="classification")
    times = []
    for attempt in range(8):  # the first is a warm-up
        dist.barrier()
        start = time.perf_counter()
        result = evaluate(model, nn.CrossEntropyLoss(), source, dataset, metrics, dist=dist)
        dist.barrier()
        if attempt:
            times.append(time.perf_counter() - start)
    assert len(result.losses) == len(split)
    if dist.is_main:
        print(json.dumps({"processes": dist.world, "eval_s": statistics.median(times)}))
    dist.close()


if __name__ == "__main__":
    main()
