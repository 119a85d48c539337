"""One run across processes (``torchrun``, or the tasks of a SLURM job step): who this
process is, and the few collectives the trainer needs. Outside them everything here is a
no-op for a world of one.

Each training batch of ``batch_size`` samples is split between the processes (rank r
takes every world-th sample, starting at r) and DistributedDataParallel averages the
gradients; each process evaluates a contiguous part of the dev and test sets, and the
outputs, targets and losses are gathered to every process in sample order, so every
process scores the whole split (and takes the same decisions from it); only rank 0 writes
the run folder.
"""

from __future__ import annotations

import datetime
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

import torch


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, timeout_s: float | None = None) -> Distributed:
        """Who this process is in its run, from torchrun's environment (WORLD_SIZE, RANK,
        LOCAL_RANK) or, in a SLURM job step of several tasks, from SLURM's (see
        :func:`slurm_environment`); starts the process group, whose collectives give up
        after ``timeout_s`` (a process of the run died or hangs)."""
        slurm = slurm_environment(os.environ)
        if slurm is not None:
            os.environ.update(slurm)  # env:// initialisation reads them
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            timeout = datetime.timedelta(seconds=timeout_s) if timeout_s else None
            dist.init_process_group(backend, timeout=timeout)
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

    def abandon(self) -> None:
        """Leave a process group that lost a process: no barrier (nobody would answer)."""
        if self.world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()

    def close(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()  # without it one rank sometimes aborts at exit (engines.md)
            dist.destroy_process_group()


def slurm_environment(env: Mapping[str, str]) -> dict[str, str] | None:
    """torchrun's variables for a task of a SLURM job step of several tasks (``srun`` with
    ``--ntasks``; hydra/launcher=slurm with ``tasks_per_node`` or ``nodes`` above 1): the
    task's rank, the step's tasks, its local rank, the step's first node as the master and a
    port from the job id (``MASTER_PORT`` when set). None outside such a step, or under
    torchrun (which sets them itself). A single task (``trainer`` in a batch script, an
    ``salloc`` shell) is not a step of several tasks, whatever the allocation holds."""
    tasks = int(env.get("SLURM_STEP_NUM_TASKS") or 1)
    if "WORLD_SIZE" in env or tasks < 2 or "SLURM_PROCID" not in env:
        return None
    nodes = int(env.get("SLURM_STEP_NUM_NODES") or 1)
    nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or ""
    master = "127.0.0.1" if nodes == 1 else first_host(nodelist)
    port = env.get("MASTER_PORT") or str(20000 + int(env.get("SLURM_JOB_ID") or 0) % 40000)
    return {
        "MASTER_ADDR": master,
        "MASTER_PORT": port,
        "RANK": env["SLURM_PROCID"],
        "WORLD_SIZE": str(tasks),
        "LOCAL_RANK": env.get("SLURM_LOCALID", "0"),
        "LOCAL_WORLD_SIZE": str(max(1, tasks // nodes)),
    }


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list (``node[03-05,07],gpu1`` -> ``node03``): from
    ``scontrol show hostnames`` where it runs, else read from the list's first entry."""
    try:
        shown = subprocess.run(
            ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
            timeout=30, check=True,
        ).stdout.split()  # fmt: skip
        if shown:
            return shown[0]
    except (OSError, subprocess.SubprocessError):
        pass
    return first_listed(nodelist)


def first_listed(nodelist: str) -> str:
    """The first host a SLURM node list names, read from the text alone."""
    first, depth = "", 0
    for char in nodelist:
        if char == "," and depth == 0:
            break
        depth += (char == "[") - (char == "]")
        first += char
    if "[" not in first:
        return first
    prefix, _, ranges = first.partition("[")
    return prefix + ranges.split(",")[0].split("-")[0].rstrip("]")


# what gloo and NCCL say when a process of the group is gone or does not answer
_LOST = ("connection closed", "connection reset", "broken pipe", "timed out", "timeout",
         "socket", "nccl", "gloo")  # fmt: skip


def lost_peer(err: BaseException) -> bool:
    """Whether ``err`` comes from a collective whose other processes died or hang (the
    run's fault is elsewhere: it resumes from its last state once they are back)."""
    import torch.distributed as dist

    if isinstance(err, dist.DistError):
        return True
    return isinstance(err, RuntimeError) and any(w in str(err).lower() for w in _LOST)
