"""Who trains a run right now, on any node that shares the results folder.

The OS lock (:mod:`sweeptrainer.io.lock`) guards training, but ``/proc/locks`` lists this
machine's locks only: a run another node trains looks killed from here. So the process
that holds a run's lock also keeps a lease in the run folder (``lease.yaml``: host, pid,
start, heartbeat, interval), refreshed by a daemon thread every ``interval_s`` seconds
and removed when the run ends. :func:`activity` answers liveness for every command:

- no lease, or a lease naming this host: this host's lock decides, as before leases;
- a lease from another host whose heartbeat is younger than ``STALE_INTERVALS`` intervals
  (plus ``GRACE_S``): that host trains it;
- an older one: its process is gone (killed, or its node died): stale.

A run folder is untrusted input: the lease is read without following a symbolic link, and
a lease that is damaged, a link or not a plain file counts as no lease.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from sweeptrainer.errors import DamagedRunError
from sweeptrainer.io.atomic import atomic_write
from sweeptrainer.io.lock import RunLock
from sweeptrainer.io.untrusted import read_yaml

LEASE = "lease.yaml"
STALE_INTERVALS = 3  # heartbeats a lease may miss before it is stale
GRACE_S = 2.0  # on top: a slow write, a busy file server, clocks a little apart

RUNNING_HERE = "running-here"
RUNNING_ELSEWHERE = "running-elsewhere"
STALE = "stale"
IDLE = "idle"

UTC = timezone.utc  # datetime.UTC from Python 3.11 on
log = logging.getLogger("sweeptrainer")


def now_utc() -> datetime:
    return datetime.now(UTC)


def lease_path(run_path: str | Path) -> Path:
    return Path(run_path) / LEASE


@dataclass(frozen=True)
class Lease:
    """What ``lease.yaml`` says: who trains the run, since when, last heard when."""

    host: str
    pid: int
    started: datetime
    heartbeat: datetime
    interval_s: float

    @property
    def stale_after_s(self) -> float:
        """Seconds after its last heartbeat that a lease stops counting."""
        return STALE_INTERVALS * self.interval_s + GRACE_S

    def fresh(self, now: datetime | None = None) -> bool:
        """Whether its holder was heard from recently enough to be alive."""
        age = ((now or now_utc()) - self.heartbeat).total_seconds()
        return age <= self.stale_after_s


@dataclass(frozen=True)
class Activity:
    """Whether a run is being trained now, and by whom (host and pid from the lease, when
    there is one)."""

    state: str  # running-here | running-elsewhere | stale | idle
    host: str | None = None
    pid: int | None = None
    last_heard: datetime | None = None

    @property
    def running(self) -> bool:
        """Some process, on this host or another, trains the run right now."""
        return self.state in (RUNNING_HERE, RUNNING_ELSEWHERE)

    @property
    def elsewhere(self) -> bool:
        """Another host trains the run right now (its lock cannot be seen from here)."""
        return self.state == RUNNING_ELSEWHERE


def activity(run_path: str | Path, now: datetime | None = None) -> Activity:
    """Whether the run in ``run_path`` is being trained right now, here or on another node.

    ``/proc/locks`` (through :class:`RunLock`) is asked only when there is no lease or the
    lease names this host: another host's lock is not in it, and its lease says more.
    """
    lease = read_lease(run_path)
    if lease is not None and lease.host != socket.gethostname():
        state = RUNNING_ELSEWHERE if lease.fresh(now) else STALE
        return Activity(state, lease.host, lease.pid, lease.heartbeat)
    state = RUNNING_HERE if RunLock(Path(run_path)).held_elsewhere() else IDLE
    if lease is None:
        return Activity(state)
    return Activity(state, lease.host, lease.pid, lease.heartbeat)


def read_lease(run_path: str | Path) -> Lease | None:
    """The run's lease; None when there is none, or it is damaged, a symbolic link or not a
    plain file (read as no lease: the lock decides then, as for runs from before leases)."""
    try:  # a run folder's file: regular, not followed, bounded (io/untrusted.py)
        data = read_yaml(lease_path(run_path))
    except DamagedRunError:
        return None
    if not isinstance(data, dict):
        return None
    host, pid, interval = data.get("host"), data.get("pid"), data.get("interval_s")
    started, heartbeat = _time(data.get("started")), _time(data.get("heartbeat"))
    if not (isinstance(host, str) and host and host.isprintable()):
        return None
    if isinstance(pid, bool) or not isinstance(pid, int) or pid < 1:
        return None
    if isinstance(interval, bool) or not isinstance(interval, int | float):
        return None
    if not (math.isfinite(interval) and interval > 0) or started is None or heartbeat is None:
        return None
    return Lease(host, pid, started, heartbeat, float(interval))


def _time(value: Any) -> datetime | None:
    """A timestamp of the lease (YAML may have parsed it already), in UTC; None if it is
    not one. A time without a zone is taken as UTC, as the lease writes it. Years at the
    ends of the calendar are refused: shown in local time they would overflow."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    try:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        return None
    return value if 1970 <= value.year <= 9000 else None


class Heartbeat:
    """The lease of a run this process trains: written at :meth:`start`, refreshed every
    ``interval_s`` seconds by a daemon thread (off the training thread: a long step does
    not make the run look dead), removed at :meth:`stop`. Used while the run's lock is held.

    A write that fails (a full disk, a hiccup of the file server) is a warning, once: the
    training goes on, and other nodes may read the run as killed until a write succeeds.
    """

    def __init__(self, run_path: str | Path, interval_s: float) -> None:
        if not (isinstance(interval_s, int | float) and 0 < interval_s < math.inf):
            raise ValueError(f"heartbeat interval: expected a positive number, got {interval_s!r}")
        self.path = lease_path(run_path)
        self.interval_s = float(interval_s)
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.started = now_utc()
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # a write never lands after stop() removed the lease
        self._ended = False
        self._warned = False
        self._thread: threading.Thread | None = None

    def claim(self) -> bool:
        """Take the run's lease and keep it fresh; False when another node's fresh lease is
        there, or another process claims it at the same moment.

        The lease is created as a hard link to a complete temp file, which fails when a
        lease exists (atomically, on NFS too): of two nodes that start the same run at once
        (their locks do not see each other), one gets it. A stale lease, one of this host
        (whose holder is gone: this process holds the run's lock), or a damaged one is
        removed first. Two nodes taking over the same stale lease within milliseconds of
        each other can still both remove and create: the window a lease cannot close.
        """
        current = read_lease(self.path.parent)
        if current is not None and current.host != self.host and current.fresh():
            return False
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # stale, this host's dead holder's, or damaged (a link: itself)
        claim = self.path.with_name(f".{LEASE}.{self.host}.{self.pid}.claim")
        with contextlib.suppress(FileNotFoundError):
            claim.unlink()
        fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(self._text())
        try:
            os.link(claim, self.path)
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                claim.unlink()
        self._start_thread()
        return True

    def start(self) -> Heartbeat:
        """Write the lease now, whatever is there, and keep it fresh from a daemon thread."""
        self.beat()
        self._start_thread()
        return self

    def _start_thread(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"sweeptrainer-heartbeat-{self.path.parent.name}", daemon=True
        )
        self._thread.start()

    def _text(self) -> bytes:
        lease = {
            "host": self.host,
            "pid": self.pid,
            "started": self.started.isoformat(timespec="milliseconds"),
            "heartbeat": now_utc().isoformat(timespec="milliseconds"),
            "interval_s": self.interval_s,
        }
        return yaml.safe_dump(lease, sort_keys=False).encode("utf-8")

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            if not self._still_ours():
                return
            self.beat()

    def _still_ours(self) -> bool:
        """Whether the lease is still this process's; if another took it over (this process
        was not heard for longer than a lease lasts: a stalled node), it is left to them,
        with a warning: two processes then train the run, and the other node's is the one
        other commands see."""
        current = read_lease(self.path.parent)
        if current is not None and (current.host, current.pid) == (self.host, self.pid):
            return True
        taker = f"{current.host}:{current.pid}" if current is not None else "another process"
        log.warning(
            f"warning: {self.path} was taken over by {taker} (this process was not heard for "
            "longer than its lease lasts); no longer refreshing it"
        )
        return False

    def beat(self) -> None:
        """Write the lease with the current time as its heartbeat (atomically)."""
        with self._lock:
            if self._ended:
                return
            text = self._text()
            try:
                atomic_write(self.path, lambda f: f.write(text), durable=False)
            except Exception as err:  # training goes on; other nodes may think it killed
                if not self._warned:
                    self._warned = True
                    log.warning(
                        f"warning: cannot write {self.path} ({type(err).__name__}: {err}); "
                        "training goes on, but other nodes may read this run as killed"
                    )

    def stop(self) -> None:
        """Stop the thread and remove the lease (if it is still this process's)."""
        self._stopping.set()
        with self._lock:
            self._ended = True
            lease = read_lease(self.path.parent)
            if lease is not None and (lease.host, lease.pid) == (self.host, self.pid):
                with contextlib.suppress(OSError):  # gone already: nothing to remove
                    self.path.unlink()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
