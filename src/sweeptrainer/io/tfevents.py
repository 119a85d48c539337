"""TensorBoard event files, written on the caller's thread a buffer at a time.

``torch.utils.tensorboard.SummaryWriter`` hands every event to a thread of its own, which
frames it (a pure-Python CRC-32C) and opens, appends to and closes the file for each
record. The thread's Python and its file calls take turns with the training thread for
the interpreter lock: a training-loss point cost the training about 0.36 ms, against
about 0.09 ms for the same event framed and buffered here (``benches/notes.md``).

The records are TensorBoard's own: ``brain.Event:2`` files of ``Event`` protos, each framed
as length, masked CRC-32C of the length, data, masked CRC-32C of the data; a resumed run's
file starts with the purge marker; the hparams summaries are those of TensorBoard's
hparams plugin. Only TensorBoard's protos are imported: its writer and plugin modules
import its TensorFlow stub (absl flags and more), about 0.15 s of every process's start.

Records are buffered and appended to the file (open, write, close) at
:meth:`EventFile.flush` (the logger flushes after each evaluation), at most
``FLUSH_SECONDS`` after they were added, and at :meth:`EventFile.close`: no file stays open
between two flushes, and a run that dies in between leaves a file of whole records.
"""

from __future__ import annotations

import functools
import io
import os
import socket
import struct
import time
from pathlib import Path
from typing import Any

FLUSH_SECONDS = 10.0  # the longest a point waits in the buffer (a long evaluation period)

# the hparams plugin's names (tensorboard/plugins/hparams/metadata.py)
HPARAMS_PLUGIN, HPARAMS_VERSION = "hparams", 0
EXPERIMENT_TAG = "_hparams_/experiment"
SESSION_START_TAG = "_hparams_/session_start_info"
SESSION_END_TAG = "_hparams_/session_end_info"


@functools.cache
def _crc32c_table() -> tuple[int, ...]:
    """CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), one entry per byte value."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return tuple(table)


def masked_crc32c(data: bytes) -> int:
    """The checksum a TFRecord carries: CRC-32C, rotated and offset ("masked")."""
    table, crc = _crc32c_table(), 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record(data: bytes) -> bytes:
    """``data`` framed as one TFRecord."""
    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", masked_crc32c(length))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


class EventFile:
    """One ``events.out.tfevents.*`` file in ``log_dir``, created at once (empty of points).

    ``purge_step``: a resumed run's first step; TensorBoard then hides the points at and
    after it that an earlier (killed) process wrote into the folder's other files.
    """

    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog

        self._event = Event
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        # TensorBoard's naming: seconds, host, process; then the nanoseconds, so that two
        # files of one process (a sweep in one process, an in-process resume) never share a
        # name, here or where the logger links them, and sort in the order they were made
        seconds, nanoseconds = divmod(time.time_ns(), 10**9)
        host, pid = socket.gethostname(), os.getpid()
        path = log_dir / f"events.out.tfevents.{seconds:010d}.{host}.{pid}.{nanoseconds:09d}"
        path.touch(exist_ok=False)
        self.path = path
        self.closed = False
        self._buffer = io.BytesIO()
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
        self._buffer.write(record(event.SerializeToString()))

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


def hparams_summaries(values: dict[str, str | int | float | bool], metrics: list[str]) -> list[Any]:
    """The hparams plugin's three summaries for one run: the experiment (which
    hyper-parameters and which metric tags), the session's values, its successful end."""
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo()
    infos = []
    for key, value in values.items():
        if isinstance(value, bool):
            start.hparams[key].bool_value, kind = value, "DATA_TYPE_BOOL"
        elif isinstance(value, int | float):
            start.hparams[key].number_value, kind = float(value), "DATA_TYPE_FLOAT64"
        else:
            start.hparams[key].string_value, kind = str(value), "DATA_TYPE_STRING"
        infos.append(api_pb2.HParamInfo(name=key, type=api_pb2.DataType.Value(kind)))
    experiment = api_pb2.Experiment(
        hparam_infos=infos,
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in metrics],
    )
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value("STATUS_SUCCESS"))

    def summary(tag: str, **content: Any) -> Any:
        data = plugin_data_pb2.HParamsPluginData(version=HPARAMS_VERSION, **content)
        plugin = SummaryMetadata.PluginData(
            plugin_name=HPARAMS_PLUGIN, content=data.SerializeToString()
        )
        return Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))])

    return [
        summary(EXPERIMENT_TAG, experiment=experiment),
        summary(SESSION_START_TAG, session_start_info=start),
        summary(SESSION_END_TAG, session_end_info=end),
    ]
