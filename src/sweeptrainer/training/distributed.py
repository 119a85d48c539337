"""One run across processes (``torchrun``): who this process is, and the few collectives
the trainer needs. Outside torchrun everything here is a no-op for a world of one.

Each training batch of ``batch_size`` samples is split between the processes (rank r
takes every world-th sample, starting at r) and DistributedDataParallel averages the
gradients; each process evaluates a contiguous part of the dev and test sets, and the
outputs, targets and losses are gathered to every process in sample order, so every
process scores the whole split (and takes the same decisions from it); only rank 0 writes
the run folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Distributed:
        """The torchrun environment (WORLD_SIZE, RANK, LOCAL_RANK); starts the process group."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return cls(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, index: torch.Tensor) -> torch.Tensor:
        """This process's part of a batch's sample indices."""
        return index if self.world == 1 else index[self.rank :: self.world]

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            import torch.distributed as dist

            value = value.clone()
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value

    def any(self, flag: bool) -> bool:
        """True on every process when it is True on one (a stop signal reached one rank)."""
        if self.world == 1:
            return flag
        return bool(self.sum(torch.tensor(float(flag))) > 0)

    def part(self, n: int) -> tuple[int, int]:
        """This process's contiguous part ``[lo, hi)`` of ``n`` samples to evaluate: the
        parts in rank order are the split in order."""
        per = -(-n // self.world)
        return min(n, self.rank * per), min(n, (self.rank + 1) * per)

    def gather(self, value: object) -> list[object]:
        """Every process's ``value`` (CPU tensors, arrays, None), in rank order, on every
        process."""
        if self.world == 1:
            return [value]
        import torch.distributed as dist

        values: list[object] = [None] * self.world
        dist.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()  # without it one rank sometimes aborts at exit (engines.md)
            dist.destroy_process_group()
