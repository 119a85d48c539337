"""DataLoader worker processes: the main process alone answers stop signals.

A Ctrl-C at a terminal reaches every process of the foreground group, DataLoader workers
included, and a forked worker inherits the main process's handlers: each worker would say
"SIGINT received" again, and a second Ctrl-C would raise inside a worker (a traceback on
the terminal) while the main process is saving its state. A cluster cancelling a job
sends SIGTERM to every process of it: a worker that died of it would end the run mid-step
(PyTorch raises in the main process when a worker dies) instead of letting it stop at the
next step. So workers ignore the stop signals: the main process ends them when it stops
(:meth:`sweeptrainer.training.batch_source.BatchSource.batches` lets go of its iterator,
whose finaliser tells the workers), and PyTorch ends a worker whose main process died.
"""

from __future__ import annotations

import signal

# the signals sweeptrainer.training.signals turns into a stop (it takes them from here)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


def ignore_stop_signals(worker_id: int = 0) -> None:
    """A DataLoader's ``worker_init_fn``: this worker leaves stopping to the main process."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
