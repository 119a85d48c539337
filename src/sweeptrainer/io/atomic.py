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
        with open(tmp, "wb") as f:
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


def atomic_write_yaml(path: Path, data: object) -> None:
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


# libyaml's loader when PyYAML was built with it: ~10x faster on many small files
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> object:
    """A YAML file with the safe loader (no ``!!python/...`` objects are ever built); a
    ConfigError naming the file when it is damaged or not plain YAML."""
    from sweeptrainer.errors import ConfigError

    try:
        with open(path, encoding="utf-8") as f:
            return yaml.load(f, Loader=_LOADER)
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as err:  # OSError: no permission
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(
            f"{path}: not a readable YAML file ({first}); it is damaged or was not written "
            "by sweeptrainer: remove it (or its run folder) and run again"
        ) from None
