"""The preprocessing cache: what a dataset's ``preprocess`` steps make of its files,
computed once and reused by every run of a sweep and every later command.

A cache is a folder ``<cache_dir>/<key>/``. The key is a hash of the step config (with
the loader's) and of the file list (each file's name, size and modification time), so
editing a step, adding, removing or changing a file gives a new key, and a new cache is
built. It holds the values of all files back to back in ``values.bin`` (read through a
memory map, so DataLoader workers share the pages), ``index.json`` (file -> offset and
shape) and ``info.yaml`` (what it was built from, for people). It is built under a file
lock into a temporary folder and renamed into place, so parallel jobs of a sweep build
it once, and a killed build leaves nothing that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from sweeptrainer.errors import ConfigError
from sweeptrainer.io.lock import exclusive

log = logging.getLogger("sweeptrainer")

CACHE_DIR = ".sweeptrainer-cache"
INDEX = "index.json"
FORMAT = 1


def cache_key(config: str, root: Path, names: Sequence[str]) -> str:
    """A hash of the steps' config and of every file's name, size and mtime."""
    digest = hashlib.sha256(f"format {FORMAT}\n{config}\n".encode())
    for name in sorted(names):
        stat = (root / name).stat()
        digest.update(f"{name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


class FeatureStore:
    """The read side of a built cache: ``store[name]`` is that file's preprocessed tensor."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        meta = json.loads((folder / INDEX).read_text(encoding="utf-8"))
        self.dtype = np.dtype(meta["dtype"])
        self.rows = {name: i for i, name in enumerate(meta["files"])}
        self.offsets: list[int] = meta["offsets"]
        self.shapes: list[list[int]] = meta["shapes"]
        self._values: np.ndarray | None = None

    def _map(self) -> np.ndarray:
        if self._values is None:
            if self.offsets[-1] == 0:
                self._values = np.empty(0, self.dtype)
            else:
                path = self.folder / "values.bin"
                self._values = np.memmap(path, dtype=self.dtype, mode="r")
        return self._values

    def __contains__(self, name: str) -> bool:
        return name in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, name: str) -> torch.Tensor:
        i = self.rows[name]
        values = self._map()[self.offsets[i] : self.offsets[i + 1]]
        return torch.from_numpy(np.array(values).reshape(self.shapes[i]))

    def __getstate__(self) -> dict[str, Any]:  # workers started by spawn map it themselves
        return {**self.__dict__, "_values": None}


@dataclass
class CacheInfo:
    """Where a dataset's cache is and whether this process built it."""

    folder: Path
    files: int
    built: bool
    seconds: float


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


class _Compute(torch.utils.data.Dataset):
    """One file -> (position, array or None, error message or None): no exception crosses a
    DataLoader worker, so the message that reaches the user is ours, not a traceback dump."""

    def __init__(self, names: Sequence[str], compute: Callable[[str], Any]) -> None:
        self.names, self.compute = list(names), compute

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, str | None]:
        try:
            return i, _as_array(self.compute(self.names[i])), None
        except Exception as err:
            return i, None, f"{type(err).__name__}: {err}"


def _keep(item: Any) -> Any:
    return item


def _results(names: Sequence[str], compute: Callable[[str], Any], workers: int):
    dataset = _Compute(names, compute)
    if workers == 0:
        return (dataset[i] for i in range(len(dataset)))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, num_workers=workers, collate_fn=_keep
    )
    return iter(loader)


def _build(
    folder: Path,
    names: Sequence[str],
    compute: Callable[[str], Any],
    workers: int,
    progress: bool,
    describe: Callable[[str], str],
) -> None:
    """Compute every file into ``folder`` (a new temporary folder)."""
    folder.mkdir(parents=True)
    offsets, shapes, dtype = [0], [], None
    bar = None
    if progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(names), unit="file", desc="preprocessing", leave=False)
    try:
        with open(folder / "values.bin", "wb") as out:
            for i, array, error in _results(names, compute, workers):
                if error is not None:
                    raise ConfigError(f"dataset.preprocess: {describe(names[i])}: {error}")
                assert array is not None
                if dtype is None:
                    dtype = array.dtype
                array = np.ascontiguousarray(array, dtype=dtype)
                out.write(array.tobytes())
                offsets.append(offsets[-1] + array.size)
                shapes.append(list(array.shape))
                if bar is not None:
                    bar.update(1)
            out.flush()
            os.fsync(out.fileno())
    finally:
        if bar is not None:
            bar.close()
    meta = {
        "format": FORMAT,
        "dtype": str(dtype or np.dtype("float32")),
        "files": list(names),
        "offsets": offsets,
        "shapes": shapes,
    }
    (folder / INDEX).write_text(json.dumps(meta), encoding="utf-8")


def open_cache(
    cache_root: Path,
    key: str,
    names: Sequence[str],
    compute: Callable[[str], Any],
    *,
    config: str = "",
    workers: int = 0,
    progress: bool = False,
    describe: Callable[[str], str] = repr,
) -> tuple[FeatureStore, CacheInfo]:
    """The cache ``key`` under ``cache_root``, built first if missing.

    ``compute(name)`` gives one file's array; ``workers`` processes compute in parallel.
    ``describe(name)`` says where a failing file is listed (for the error message).
    """
    folder = cache_root / key
    if (folder / INDEX).is_file():
        return FeatureStore(folder), CacheInfo(folder, len(names), False, 0.0)
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        with exclusive(cache_root / f".{key}.lock"):
            if (folder / INDEX).is_file():  # another job of the sweep built it meanwhile
                return FeatureStore(folder), CacheInfo(folder, len(names), False, 0.0)
            seconds = _build_locked(
                cache_root, key, names, compute, config, workers, progress, describe
            )
    except OSError as err:
        raise ConfigError(
            f"dataset.cache_dir: cannot write the preprocessing cache in {str(cache_root)!r} "
            f"({err.strerror or err}); set dataset.cache_dir to a folder you can write"
        ) from None
    log.info(f"preprocessing cache built: {len(names)} files in {seconds:.1f} s -> {folder}")
    return FeatureStore(folder), CacheInfo(folder, len(names), True, seconds)


def _build_locked(
    cache_root: Path,
    key: str,
    names: Sequence[str],
    compute: Callable[[str], Any],
    config: str,
    workers: int,
    progress: bool,
    describe: Callable[[str], str],
) -> float:
    """Build cache ``key`` while holding its lock; return the seconds it took."""
    start = time.perf_counter()
    for stale in cache_root.glob(f".{key}.*.tmp"):  # from a killed build: we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    log.info(f"preprocessing {len(names)} files once (dataset.preprocess) ...")
    tmp = cache_root / f".{key}.{os.getpid()}.tmp"
    try:
        _build(tmp, names, compute, workers, progress, describe)
        seconds = time.perf_counter() - start
        info = {
            "files": len(names),
            "built": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "seconds": round(seconds, 3),
            "config": config,
        }
        (tmp / "info.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
        os.replace(tmp, cache_root / key)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return seconds
