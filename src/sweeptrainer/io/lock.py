"""An OS file lock on a run folder, held while the run trains.

``fcntl.flock`` locks are released by the kernel when the process dies, so a
killed run never leaves a stale lock; a second process simply fails to take it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class RunLock:
    """Non-blocking exclusive lock on ``<run folder>/.lock``."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / ".lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock; False when another process holds it."""
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def holders(self) -> set[int] | None:
        """The pids holding the lock, from ``/proc/locks`` (Linux); None where the system
        does not say. What ``trainer cancel`` trusts, not the pid a status file names."""
        if self.path.is_symlink():
            return set()  # a lock file pointing elsewhere locks nothing of this run
        try:
            stat = self.path.stat()
            with open("/proc/locks", encoding="ascii") as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        device = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
        pids = set()
        for line in lines:
            fields = line.split()
            if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device:
                pids.add(int(fields[4]))
        return pids

    def held_by(self, pid: object) -> bool:
        """Whether process ``pid`` holds the lock (where the system cannot say which
        process does, whether any other process holds it)."""
        holders = self.holders()
        if holders is None:
            return self.held_elsewhere()
        return str(pid) in {str(p) for p in holders}

    def held_elsewhere(self) -> bool:
        """True when some other process holds the lock right now. Read from /proc/locks
        where there is one: a probe that takes the lock, even for a moment, can make a
        trainer of another command skip the run, and then nobody trains it."""
        if not self.path.exists():
            return False
        holders = self.holders()
        if holders is not None:
            return bool(holders)  # this process too: a lock taken on another descriptor
        if self.acquire():
            self.release()
            return False
        return True


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold a blocking exclusive lock on the file ``path`` (created if missing) for a block.

    For short critical sections shared by the processes of one sweep (e.g. creating one
    MLflow parent run): the others wait instead of giving up, as they do for a run folder.
    """
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
