"""Logging: one console handler per process, one ``train.log`` handler per run."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import sys
from io import TextIOWrapper
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
    """A run's ``train.log``, appended to: a file of its own (see :func:`open_own`), and
    quiet when the disk refuses a line (full, read-only): the terminal still shows
    everything, and no logging traceback buries the real message."""

    def __init__(self, path: Path) -> None:
        self.notes: list[str] = []  # what was found at ``path`` and not written into
        super().__init__(path, mode="a", encoding="utf-8")

    def _open(self) -> TextIOWrapper:
        fd, note = open_own(Path(self.baseFilename))
        if note:
            self.notes.append(note)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)

    def handleError(self, record: logging.LogRecord) -> None:
        return  # the line is dropped from train.log only; the terminal has it


_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def open_own(path: Path) -> tuple[int, str]:
    """A descriptor appending to ``path``, a regular file with no other name, and what was
    done to make it one ("" when nothing). Appending never goes through a symbolic link nor
    into a file with other names (a hard link ``ln``, ``cp -l`` or a backup tool made: the
    lines would show in a file elsewhere, and a planted link would have them written
    there): such a ``train.log`` is replaced by a file of its own (a hard-linked one by a
    copy, so the run keeps its earlier lines), the other name left as it was. A pipe is
    never opened for writing without a reader, nor waited on."""
    note = ""
    for _ in range(3):
        try:
            fd = os.open(path, _APPEND, 0o666)
        except OSError as err:  # a symbolic link (ELOOP), a pipe nobody reads (ENXIO)
            if err.errno not in (errno.ELOOP, errno.ENXIO):
                raise
            kind = "a symbolic link" if path.is_symlink() else "not a regular file"
            note = f"{path} is {kind}: not written through; a new {path.name} was started"
            _replace(path, copy=False)
            continue
        found = os.fstat(fd)
        if stat.S_ISREG(found.st_mode) and found.st_nlink == 1:
            os.set_blocking(fd, True)
            return fd, note
        os.close(fd)
        if stat.S_ISREG(found.st_mode):
            note = (
                f"{path} has {found.st_nlink} names (a hard link): not appended to; its lines "
                "were copied into a file of the run's own, the other names keep the old file"
            )
        else:
            note = f"{path} is not a regular file: not written into; a new {path.name} was started"
        _replace(path, copy=stat.S_ISREG(found.st_mode))
    raise OSError(errno.EEXIST, f"{path}: replaced, and still not a file of its own", str(path))


def _replace(path: Path, copy: bool) -> None:
    """Put a new file at ``path``: a copy of the regular file there (``copy``), else empty;
    the old one (a link, another name of a file, a pipe) is only unnamed here, never written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # a link there is removed, not followed
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        with open(fd, "wb") as out:
            if copy:
                source = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
                with open(source, "rb") as old:
                    if stat.S_ISREG(os.fstat(source).st_mode):
                        shutil.copyfileobj(old, out, 1 << 20)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def attach_file(path: Path) -> logging.Handler:
    """Send everything (DEBUG and up, tracebacks included) to ``path`` until detached; a
    ``path`` that is no file of its own (a link) is replaced first, with a warning."""
    log.setLevel(logging.DEBUG)
    handler = _QuietFileHandler(path)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    for note in handler.notes:
        log.warning(f"warning: {note}")
    return handler


def detach(handler: logging.Handler) -> None:
    log.removeHandler(handler)
    handler.close()
