"""DataLoader worker processes: the main process alone answers stop signals.

A Ctrl-C at a terminal reaches every process of the foreground group, DataLoader workers
included, and a forked worker inherits the main process's handlers: each worker would say
"SIGINT received" again, and a second Ctrl-C would raise inside a worker (a traceback on
the terminal) while the main process is saving its state. The main process stops the
workers itself when it stops, and a worker whose main process died exits on its own
(PyTorch watches the parent), so workers ignore the stop signals.
"""

from __future__ import annotations

import signal

# the signals sweeptrainer.training.signals turns into a stop (it takes them from here)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


def ignore_stop_signals(worker_id: int = 0) -> None:
    """A DataLoader's ``worker_init_fn``: this worker ignores the stop signals."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
