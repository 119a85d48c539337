"""Logging: one console handler per process, one ``train.log`` handler per run."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("sweeptrainer")


class _ConsoleHandler(logging.StreamHandler):
    """Writes through tqdm when it is loaded, so lines do not break a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout  # follow redirections (pytest's capture, notebooks)
        tqdm = sys.modules.get("tqdm")
        if tqdm is None:
            super().emit(record)
            return
        try:
            tqdm.tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


def configure_console() -> None:
    """Print the package's INFO messages to stdout (once per process).

    Under torchrun only rank 0 prints progress; the other ranks print warnings only.
    """
    log.setLevel(logging.DEBUG)
    if not any(isinstance(h, _ConsoleHandler) for h in log.handlers):
        handler = _ConsoleHandler(sys.stdout)
        handler.setLevel(logging.INFO if os.environ.get("RANK", "0") == "0" else logging.WARNING)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)


class _QuietFileHandler(logging.FileHandler):
    """A log file that goes quiet when the disk refuses a line (full, read-only): the
    terminal still shows everything, and no logging traceback buries the real message."""

    def handleError(self, record: logging.LogRecord) -> None:
        return  # the line is dropped from train.log only; the terminal has it


def attach_file(path: Path) -> logging.Handler:
    """Send everything (DEBUG and up, tracebacks included) to ``path`` until detached."""
    log.setLevel(logging.DEBUG)
    handler = _QuietFileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    return handler


def detach(handler: logging.Handler) -> None:
    log.removeHandler(handler)
    handler.close()
