"""Batches: a seeded data order per epoch, and batching that can resume mid-epoch.

The order of epoch ``e`` is a pure function of (seed, e), so a resumed run
recomputes it and continues at the same batch of the same shuffled order.
In-memory ``TensorDataset``s are moved to the device once and batched by
indexing (no per-sample collation, no workers needed). Any other dataset goes
through one DataLoader per split, with ``num_workers`` workers, fed the same
order; each batch is fetched with the random generators seeded from the run's
seed and the batch's indices, so random augmentations do not depend on how many
workers there are.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from sweeptrainer.data.collate import stack
from sweeptrainer.data.workers import ignore_stop_signals
from sweeptrainer.training.batch import to_device

Batch = Any  # (inputs, target) tensors, or any nested tuple/list/dict: see training/batch.py


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled sample order of one epoch, independent of any global RNG."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


class SeededBatches(Dataset):
    """Fetches and collates a whole batch with Python, NumPy and torch RNGs seeded from the
    run's seed, the pass (the epoch) and the batch's indices.

    The generators are restored afterwards, so fetching in the main process
    (``num_workers: 0``) leaves the training's random stream untouched. Batch steps
    (MixUp) run here too, right after collation: inside the same seeding.
    """

    def __init__(
        self,
        dataset: Dataset,
        seed: int,
        collate: Callable[[list[Any]], Any],
        batch_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        self.dataset, self.seed, self.collate = dataset, seed, collate
        self.batch_transform = batch_transform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]  # torch's Dataset types no __len__

    def __getitem__(self, key: tuple[int, int]) -> Any:
        return self.__getitems__([key])

    def __getitems__(self, keys: list[tuple[int, int]]) -> Any:
        """``keys``: (pass, index) pairs, the pass the same for all."""
        indices = [index for _, index in keys]
        token = keys[0][0] if keys else 0
        digest = hashlib.blake2b(repr((self.seed, token, indices)).encode(), digest_size=8)
        batch_seed = int.from_bytes(digest.digest(), "little") % 2**32
        saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
        random.seed(batch_seed)
        np.random.seed(batch_seed)
        # the CPU generator only: torch.manual_seed would reseed the GPU's too, so fetching
        # in the main process (num_workers 0) would change dropout's stream on a GPU
        torch.default_generator.manual_seed(batch_seed)
        try:
            batch = self.collate([self.dataset[i] for i in indices])
            return batch if self.batch_transform is None else self.batch_transform(batch)
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])


def _as_is(batch: Any) -> Any:
    return batch  # SeededBatches collates itself


class _OrderSampler:
    """A batch sampler whose order and start batch are set before each pass."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.order: list[int] = []
        self.start = 0
        self.token = 0  # the pass (epoch): part of each batch's seed
        self.shard: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for i in range(self.start * self.batch_size, len(self.order), self.batch_size):
            batch = self.order[i : i + self.batch_size]
            if self.shard is not None:
                batch = self.shard(torch.tensor(batch)).tolist()
            yield [(self.token, index) for index in batch]

    def __len__(self) -> int:
        return max(0, -(-len(self.order) // self.batch_size) - self.start)


class BatchSource:
    """Batches of one split, in a given order, from a given batch on."""

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        device: torch.device,
        seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool | str = "auto",
        persistent_workers: bool = False,
        batch_transform: Callable[[Any], Any] | None = None,
        collate: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        """``batch_transform``: run on every collated batch (the training split's batch
        augmentation steps). ``collate``: ``dataset.batch.collate``; else the split's own
        ``collate`` attribute, else stacking."""
        self.dataset = dataset
        self.batch_size = batch_size
        self.device = device
        self.n = len(dataset)  # type: ignore[arg-type]  # torch's Dataset types no __len__
        self._tensors: tuple[torch.Tensor, ...] | None = None
        self._loader: DataLoader | None = None
        if isinstance(dataset, TensorDataset) and batch_transform is None:
            self._tensors = tuple(t.to(device) for t in dataset.tensors)
            return
        pin = device.type == "cuda" if pin_memory == "auto" else bool(pin_memory)
        self._sampler = _OrderSampler(batch_size)
        collate = collate or getattr(dataset, "collate", None) or stack
        self._loader = DataLoader(
            SeededBatches(dataset, seed, collate, batch_transform),
            batch_sampler=self._sampler,
            collate_fn=_as_is,
            num_workers=num_workers,
            pin_memory=pin,
            persistent_workers=persistent_workers and num_workers > 0,
            worker_init_fn=ignore_stop_signals,  # the main process stops them
            # its own generator: creating an iterator must not draw from the global torch
            # RNG (dropout's), or the number of iterators created would change the results
            generator=torch.Generator().manual_seed(seed),
        )

    @property
    def num_batches(self) -> int:
        return -(-self.n // self.batch_size)

    def batches(
        self,
        order: torch.Tensor | None = None,
        start: int = 0,
        shard: Callable[[torch.Tensor], torch.Tensor] | None = None,
        token: int = 0,
    ) -> Iterator[Batch]:
        """Yield batches ``start, start+1, ...`` of ``order`` (the natural order when None);
        ``shard`` picks this process's part of each batch (one run across processes);
        ``token`` (the epoch) goes into each batch's seed, so an augmentation differs from
        one epoch to the next even for a batch of the same samples."""
        if order is None:
            order = torch.arange(self.n)
        if self._tensors is not None:
            tensors = self._tensors  # (x, y), or any number: dataset.batch says which is what
            on_device = order.to(tensors[0].device)
            for i in range(start, -(-len(order) // self.batch_size)):  # order may be a part
                index = on_device[i * self.batch_size : (i + 1) * self.batch_size]
                index = shard(index) if shard is not None else index
                # copies, as x_all[index] makes, in about half the time (a model may change
                # its input in place: a view would change the data)
                if len(tensors) == 2:  # the common case, without a generator per batch
                    yield tensors[0].index_select(0, index), tensors[1].index_select(0, index)
                else:
                    yield tuple(t.index_select(0, index) for t in tensors)
            return
        assert self._loader is not None
        self._sampler.order, self._sampler.start = order.tolist(), start
        self._sampler.shard, self._sampler.token = shard, token
        batches = iter(self._loader)
        try:
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                except Exception as err:  # a worker's, re-raised by the DataLoader
                    _end_workers(batches)  # the traceback holds the iterator: not by it
                    raise worker_error(err) from None
                yield to_device(batch, self.device)
        finally:
            del batches  # the workers end with it (its finaliser tells them)


def _end_workers(batches: Any) -> None:
    """End a DataLoader iterator's workers now. Its finaliser would, but an exception's
    traceback keeps the iterator alive, and workers ignore the stop signals
    (:mod:`sweeptrainer.data.workers`): left running, they would keep the process waiting
    for them at exit."""
    shutdown = getattr(batches, "_shutdown_workers", None)  # PyTorch's own clean-up
    if callable(shutdown):
        shutdown()


def worker_error(err: Exception) -> Exception:
    """The exception a DataLoader worker raised, with its own message: the DataLoader
    re-raises it as ``Caught X in DataLoader worker process N.`` followed by the worker's
    traceback, where the main process (``num_workers: 0``) gives one line. Anything else is
    returned as it is."""
    text = str(err)
    if not text.startswith("Caught ") or "Original Traceback" not in text:
        return err
    name = re.escape(type(err).__name__)
    found = list(re.finditer(rf"^(?:[\w.]+\.)?{name}: ", text, re.M))
    if not found:
        return err
    message = text[found[-1].end() :].strip()
    try:
        return type(err)(message)
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {message}")
