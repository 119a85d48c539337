"""Atomic file writes: a reader (or a crash) never sees a half-written file."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import yaml


def atomic_write(path: Path, write: Callable[[BinaryIO], object], durable: bool = True) -> None:
    """Write through ``write(file)`` into a temp file beside ``path``, fsync, then rename.

    The rename is atomic on POSIX file systems, so ``path`` holds either the old or
    the new content, never a mix, even if the process is killed mid-write.
    ``durable=False`` skips the fsync (about 4 ms a file): still atomic for a killed
    process, but a power cut may lose the latest version. Files rewritten at every
    evaluation use it; their final version is written durably.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # the temp file's name is predictable: a link planted there (a run folder is
        # untrusted) is removed, never written through
        tmp.unlink(missing_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with open(os.open(tmp, flags, 0o666), "wb") as f:
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        fault = storage_fault(err, path) if isinstance(err, Exception) else None
        tmp.unlink(missing_ok=True)
        if fault is not None:
            raise fault from err
        raise


STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on the device of {folder}",
    errno.EDQUOT: "the disk quota is used up for {folder}",
    errno.EROFS: "{folder} is on a read-only file system",
    errno.EACCES: "no permission to write in {folder}",
    errno.EPERM: "no permission to write in {folder}",
}


def storage_fault(err: Exception, path: Path) -> Exception | None:
    """A StorageError saying what the machine refused, or None when ``err`` is something
    else. torch.save on a full disk raises a RuntimeError ("unexpected pos") without an
    errno, so a failed write is also called a full disk when the device has under 1 MiB
    left at that moment (measured before the partial temp file is removed)."""
    from sweeptrainer.errors import StorageError

    if isinstance(err, StorageError):
        return None  # already said
    folder = Path(path).parent
    code = getattr(err, "errno", None)
    if code not in STORAGE_ERRNOS:
        try:
            stat = os.statvfs(folder)
        except OSError:
            return None
        if stat.f_bavail * stat.f_frsize >= 1 << 20:
            return None
        code = errno.ENOSPC
    message = STORAGE_ERRNOS[code].format(folder=folder) + f" (writing {Path(path).name})"
    return StorageError(code, message)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


class _PlainDumper(yaml.SafeDumper):
    """safe_dump's dumper, without anchors and aliases: an object used twice is written
    twice, so readers may refuse aliases beyond a bound (a "billion laughs" file)."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def atomic_write_yaml(path: Path, data: object) -> None:
    text = yaml.dump(data, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True)
    atomic_write_text(path, text)


def read_yaml(path: Path) -> object:
    """A YAML file with the safe loader (no ``!!python/...`` objects are ever built), as a
    results folder's files are read (:mod:`sweeptrainer.io.untrusted`: a regular file of
    at most 1 MiB, links followed; its nesting and aliases bounded); a ConfigError naming
    the file when it is missing, damaged or not plain YAML."""
    from sweeptrainer.errors import ConfigError, DamagedRunError
    from sweeptrainer.io.untrusted import YAML_BYTES
    from sweeptrainer.io.untrusted import read_yaml as read

    try:
        data = read(Path(path), YAML_BYTES, follow=True)
    except DamagedRunError as err:
        raise ConfigError(str(err)) from None
    if data is None:
        raise ConfigError(f"{path}: not there")
    return data
