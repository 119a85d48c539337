"""Saving states/*.pt while the training goes on.

A state is serialized once, on the training thread, when it is handed over: the bytes
are then a frozen copy the training cannot change, so no tensor is copied, and a state
saved as both ``best.pt`` and ``last.pt`` is pickled once. One worker thread writes the
bytes, in order, each file atomically (temp + rename), so a kill at any moment leaves the
previous complete file; the file system calls release the GIL, so the training's Python
goes on meanwhile. Pickling on the worker instead held the GIL against the training
thread, and copying the tensors first cost more than pickling them (``benches/notes.md``).

A large state (over ``INLINE_BYTES`` of tensors: a big model and its optimizer) is
written straight from the live tensors on the training thread: buffering it would hold a
second copy in memory, and its epochs are long enough that the write does not show.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

from sweeptrainer.io.run_dir import RunDir

log = logging.getLogger("sweeptrainer")

INLINE_BYTES = 64 * 2**20  # states up to this size are buffered and written beside training


class StateSaver:
    """Writes a run's state files; :meth:`wait` before relying on them."""

    def __init__(self, run_dir: RunDir) -> None:
        self.run_dir = run_dir
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []
        self._large: bool | None = None  # over INLINE_BYTES: told by the first state

    def save(
        self, names: str | tuple[str, ...], state: dict[str, Any], durable: bool = True
    ) -> None:
        """Write ``states/<name>.pt`` for each of ``names`` (in order) from one
        serialization of ``state``; an earlier failed write is raised here (a full disk
        stops the run as a synchronous write would)."""
        self._collect(block=False)
        names = (names,) if isinstance(names, str) else names
        if self._large is None:  # a run's states keep their tensors' sizes
            self._large = tensor_bytes(state) > INLINE_BYTES
        if self._large:
            self.wait()  # in order: what was handed over before lands first
            for name in names:
                self.run_dir.save_state(name, state, durable=durable)
            return
        payload = serialize(state)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-saver")
        for name in names:
            self._pending.append(
                self._pool.submit(self.run_dir.write_state, name, payload, durable=durable)
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


def serialize(state: dict[str, Any]) -> memoryview:
    """The bytes ``torch.save`` writes for ``state`` (a frozen copy of the live tensors)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getbuffer()


def tensor_bytes(value: Any) -> int:
    """The bytes of the tensors in a state tree."""
    return sum(t.nelement() * t.element_size() for t in _tensors(value))


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tensors(item)
