"""Saving states/*.pt on a worker thread, so training goes on while a state is written.

A state is copied when it is handed over (the training changes the live tensors at
once), then pickled and written by one worker thread, in order, each file atomically
(temp + rename), so a kill at any moment leaves the previous complete file. Pickling
and writing a small model's state every epoch costs about 8 % of a Digits run's
training time on the training thread (``benches/notes.md``).
"""

from __future__ import annotations

import copy
import logging
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

from sweeptrainer.io.run_dir import RunDir

log = logging.getLogger("sweeptrainer")


class StateSaver:
    """Writes a run's state files in the background; :meth:`wait` before relying on them."""

    def __init__(self, run_dir: RunDir) -> None:
        self.run_dir = run_dir
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []

    def save(
        self, names: str | tuple[str, ...], state: dict[str, Any], durable: bool = True
    ) -> None:
        """Write ``states/<name>.pt`` for each of ``names`` (in order) from one copy of
        ``state``; an earlier failed write is raised here (a full disk stops the run as a
        synchronous write would)."""
        self._collect(block=False)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-saver")
        detached = detach(state)  # tensors are cloned: training may go on
        for name in (names,) if isinstance(names, str) else names:
            self._pending.append(
                self._pool.submit(self.run_dir.save_state, name, detached, durable=durable)
            )

    def wait(self) -> None:
        """Block until every state handed over is on disk; raise the first failed write."""
        self._collect(block=True)

    def close(self) -> None:
        """Wait, then stop the worker thread."""
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def close_quietly(self) -> None:
        """:meth:`close` while another error is on its way: a failed write is logged, the
        other error is the one raised."""
        try:
            self.close()
        except Exception as err:
            log.warning(f"warning: a state file could not be written: {type(err).__name__}: {err}")

    def _collect(self, block: bool) -> None:
        while self._pending and (block or self._pending[0].done()):
            self._pending.pop(0).result()


def detach(value: Any) -> Any:
    """A copy of a state tree that training cannot change: tensors cloned, containers
    rebuilt, immutable values shared. About 5x faster than ``copy.deepcopy`` for a state
    (``deepcopy`` rebuilds every tensor through its storage and pickling protocol)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        items = ((k, detach(v)) for k, v in value.items())
        if not isinstance(value, OrderedDict):
            return dict(items)
        copied = OrderedDict(items)  # a module's state_dict: keep its version metadata
        if hasattr(value, "_metadata"):
            copied._metadata = copy.deepcopy(value._metadata)  # type: ignore[attr-defined]
        return copied
    if isinstance(value, list):
        return [detach(v) for v in value]
    if isinstance(value, tuple):
        return tuple(detach(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    return copy.deepcopy(value)
