"""Batches: a seeded data order per epoch, and batching that can resume mid-epoch.

The order of epoch ``e`` is a pure function of (seed, e), so a resumed run
recomputes it and continues at the same batch of the same shuffled order.
In-memory ``TensorDataset``s are moved to the device once and batched by
indexing (no per-sample collation); any other dataset goes through a DataLoader
with the same order.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

Batch = tuple[torch.Tensor, torch.Tensor]


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled sample order of one epoch, independent of any global RNG."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


class BatchSource:
    """Batches of one split, in a given order, from a given batch on."""

    def __init__(self, dataset: Dataset, batch_size: int, device: torch.device) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.device = device
        self.n = len(dataset)  # type: ignore[arg-type]
        self._tensors: tuple[torch.Tensor, ...] | None = None
        if isinstance(dataset, TensorDataset):
            self._tensors = tuple(t.to(device) for t in dataset.tensors)

    @property
    def num_batches(self) -> int:
        return -(-self.n // self.batch_size)

    def batches(self, order: torch.Tensor | None = None, start: int = 0) -> Iterator[Batch]:
        """Yield batches ``start, start+1, ...`` of ``order`` (the natural order when None)."""
        if order is None:
            order = torch.arange(self.n)
        chunks = order[start * self.batch_size :].split(self.batch_size)
        if self._tensors is not None:
            x_all, y_all = self._tensors
            on_device = order.to(x_all.device)
            for i in range(start, self.num_batches):
                index = on_device[i * self.batch_size : (i + 1) * self.batch_size]
                yield x_all[index], y_all[index]
            return
        loader = DataLoader(self.dataset, batch_sampler=[c.tolist() for c in chunks])
        for x, y in loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
