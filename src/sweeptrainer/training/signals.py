"""Stop signals: SIGINT, SIGTERM, and SIGUSR1/SIGUSR2, which clusters send before a time
limit (SLURM's ``--signal``; submitit asks for SIGUSR2).

The first signal only sets ``received``; the trainer checks it after each optimizer
step, saves ``states/last.pt`` and stops. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger("sweeptrainer")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


class StopSignals:
    """Context manager that turns stop signals into a flag, for as long as it is entered."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop at once
        if self.received is None:
            name = signal.Signals(signum).name
            log.warning(
                f"{name} received: saving state after the current step (Ctrl-C again to stop now)"
            )
        self.received = self.received or signum
