"""Stop signals: SIGINT, SIGTERM, and SIGUSR1/SIGUSR2, which clusters send before a time
limit (SLURM's ``--signal``; submitit asks for SIGUSR2).

The first signal only sets ``received``; the trainer checks it after each optimizer
step, saves ``states/last.pt`` and stops. A second Ctrl-C stops at once.

A sweep on a parallel launcher runs in several processes (joblib's workers, submitit or
Ray jobs, on other hosts too) and a signal reaches only some of them: the one the user
pressed Ctrl-C in, the worker ``trainer cancel`` signalled. So SIGINT and SIGTERM (a stop
of the sweep) are also written to the sweep's stop file, which every process of the sweep
watches. SIGUSR1/SIGUSR2 stop only the job they reach (its time limit, its preemption).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from sweeptrainer.data.workers import STOP_SIGNALS  # the ones DataLoader workers ignore
from sweeptrainer.errors import Interrupted
from sweeptrainer.io.atomic import atomic_write_text

log = logging.getLogger("sweeptrainer")

SWEEP_STOPS = (signal.SIGINT, signal.SIGTERM)
STOP_FILE = "stop"  # in the sweep folder
LOOK_EVERY_S = 0.5  # how often ``received`` looks at the stop file: a stat, rarely


class StopNow(KeyboardInterrupt):
    """A second Ctrl-C: stop at once, leaving the run as a kill would (the next command
    resumes it from its last state). A KeyboardInterrupt of any other kind, raised by a
    run's own code while these handlers are in charge, is that run's failure."""


class StopSignals:
    """Context manager that turns stop signals into a flag, for as long as it is entered;
    with a ``stop_file``, a stop of the sweep is also written there and read from there."""

    def __init__(self, stop_file: Path | None = None) -> None:
        self._received: int | None = None
        self.stop_file = stop_file
        self._next_look = 0.0
        # what signal.signal() returned: the handlers to put back
        self._previous: dict[
            int, Callable[[int, FrameType | None], Any] | int | signal.Handlers | None
        ] = {}
        self._at_once = False

    @property
    def received(self) -> int | None:
        """The signal that asked this process to stop, or that stopped its sweep."""
        if self._received is None and self.stop_file is not None:
            now = time.monotonic()
            if now >= self._next_look:
                self._next_look = now + LOOK_EVERY_S
                self._received = _read_stop(self.stop_file)
        return self._received

    def look(self) -> int | None:
        """``received``, looking at the stop file now."""
        self._next_look = 0.0
        return self.received

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def __getstate__(self) -> dict:
        """A launcher pickles the task to its workers: what was received travels, the
        handlers installed in this process do not."""
        return {"_received": self._received, "stop_file": self.stop_file}

    def __setstate__(self, state: dict) -> None:
        # __init__ again: the state __getstate__ left out (no handlers installed here)
        self.__init__(state["stop_file"])  # type: ignore[misc]
        self._received = state["_received"]

    @contextlib.contextmanager
    def at_once(self) -> Iterator[None]:
        """While a run's components are built (reading data, building a preprocessing cache,
        a model's own start-up: minutes, with nothing of the run saved yet), a stop signal
        raises :class:`~sweeptrainer.errors.Interrupted` where the code is, instead of
        waiting for a training step that is far away."""
        if self.received is not None:
            raise Interrupted(self.received)
        self._at_once = True
        try:
            yield
        finally:
            self._at_once = False

    def installed(self) -> bool:
        """Whether this object's handlers are this process's."""
        return signal.getsignal(signal.SIGTERM) == self._handle

    def for_job(self, stop_file: Path | None) -> StopSignals:
        """The stop signals of a job in this process: these, where they are installed (the
        process that launched the sweep runs its jobs itself); in a launcher's worker the
        worker's own, installed at its first job and kept for its life (a signal between
        two jobs then still counts), watching the job's sweep's stop file."""
        if self.installed():
            if self.stop_file is None:
                self.stop_file = stop_file
            return self
        handler = signal.getsignal(signal.SIGTERM)
        own = getattr(handler, "__self__", None)
        if not isinstance(own, StopSignals):
            own = StopSignals().__enter__()  # never left: see above
        if own.stop_file != stop_file:
            own.stop_file, own._next_look = stop_file, 0.0
        if self._received is not None:  # the launching process was stopping already
            own._received = own._received or self._received
        return own

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._received is not None and signum == signal.SIGINT:
            raise StopNow  # a second Ctrl-C: stop at once
        if self._received is None:
            name = signal.Signals(signum).name
            log.warning(
                f"{name} received: saving state after the current step (Ctrl-C again to stop now)"
            )
        self._received = self._received or signum
        if signum in SWEEP_STOPS and self.stop_file is not None:
            with contextlib.suppress(OSError):  # a read-only or full disk: this process stops
                if not self.stop_file.exists():  # whole or not there: written atomically
                    atomic_write_text(self.stop_file, f"{signal.Signals(signum).name}\n")
        if self._at_once:
            self._at_once = False  # once: the clean-up below it runs undisturbed
            raise Interrupted(signum)


_ODD_STOPS: set[Path] = set()  # stop files that are no regular file: warned about once


def _read_stop(stop_file: Path) -> int | None:
    """The signal written to a sweep's stop file, if it is there (SIGTERM if unrecognised).
    Read as a regular file only, a few bytes at most: a folder, a FIFO (which would block
    the sweep), a device or a symbolic link (to /dev/zero) is ignored, with one warning."""
    from sweeptrainer.errors import DamagedRunError
    from sweeptrainer.io.untrusted import read_stop

    try:
        text = read_stop(stop_file)
    except DamagedRunError as err:  # not a regular file, or unreadable: not a stop (warned once)
        if stop_file not in _ODD_STOPS:
            _ODD_STOPS.add(stop_file)
            log.warning(f"warning: {err}; ignored (not a stop of the sweep)")
        return None
    if text is None:  # not there (yet): looked for again at the next check
        return None
    name = text if text in {s.name for s in SWEEP_STOPS} else "SIGTERM"
    return int(signal.Signals[name])
