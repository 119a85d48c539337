"""A TensorBoard event file written on the caller's thread, a buffer at a time.

``torch.utils.tensorboard.SummaryWriter`` hands every event to a thread of its own, which
frames it (a pure-Python CRC-32C) and opens, appends to and closes the file for each
record. The thread's Python and its file calls take turns with the training thread for
the interpreter lock: a training-loss point cost the training about 0.37 ms, most of
it waiting, against about 0.05 ms for the same event framed and buffered here
(``benches/notes.md``). The records are those of TensorBoard's own writer (its
``RecordWriter`` framing, ``brain.Event:2`` files, the purge marker of a resumed run), so
every reader of TensorBoard files reads them.

Records are framed into a memory buffer and appended to the file (open, write, close) at
:meth:`EventFile.flush` (the logger flushes after each evaluation), at most
``FLUSH_SECONDS`` after they were added, and at :meth:`close`: no file stays open between
two flushes, so a run that dies in between leaves a file that ends with a whole record.
"""

from __future__ import annotations

import io
import os
import socket
import time
from pathlib import Path
from typing import Any

FLUSH_SECONDS = 10.0  # the longest a point waits in the buffer (a long evaluation period)


class EventFile:
    """One ``events.out.tfevents.*`` file in ``log_dir``, created at once (empty of points).

    ``purge_step``: a resumed run's first step; TensorBoard then hides the points at and
    after it that an earlier (killed) process wrote into the folder's other files.
    """

    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog
        from tensorboard.summary.writer.record_writer import RecordWriter

        self._event = Event
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}"
        path = log_dir / name
        number = 0
        while path.exists():  # a second file of this process in the same second
            number += 1
            path = log_dir / f"{name}.{number}"
        path.touch(exist_ok=False)
        self.path = path
        self.closed = False
        self._buffer = io.BytesIO()
        self._records = RecordWriter(self._buffer)
        self._add(Event(file_version="brain.Event:2"))
        if purge_step is not None:
            self._add(Event(step=purge_step, file_version="brain.Event:2"))
            self._add(Event(step=purge_step, session_log=SessionLog(status=SessionLog.START)))
        self.flush()

    def add_summary(self, summary: Any, step: int | None = None) -> None:
        """One event holding ``summary`` (a ``Summary`` proto) at ``step``."""
        if self.closed:
            raise ValueError(f"{self.path}: the event file is closed")
        event = self._event(summary=summary)
        if step is not None:
            event.step = int(step)
        self._add(event)
        if time.monotonic() - self._flushed > FLUSH_SECONDS:
            self.flush()

    def _add(self, event: Any) -> None:
        event.wall_time = time.time()
        self._records.write(event.SerializeToString())

    def flush(self) -> None:
        data = self._buffer.getvalue()
        if data:  # O_NOFOLLOW: a link put in the file's place is not written through
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0))
            with open(fd, "wb") as file:
                file.write(data)
            self._buffer.seek(0)
            self._buffer.truncate()
        self._flushed = time.monotonic()

    def close(self) -> None:
        """Flush; later points are refused, closing again does nothing."""
        if not self.closed:
            self.flush()
            self.closed = True
