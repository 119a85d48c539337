"""The preprocessing cache: what a dataset's ``preprocess`` steps make of its files,
computed once and reused by every run of a sweep and every later command.

Caches are nested ``<cache_dir>/<config>/<version>/``: ``config`` is a hash of the step
config (with the loader's), ``version`` a hash of the file list (each file's name and
stamp: its size and modification time). A version holds the values of all its files back
to back in ``values.bin`` (read through a memory map, so DataLoader workers share the
pages), ``index.json`` (per file: name, stamp, offset, shape and CRC-32 of its bytes) and
``info.yaml`` (what it was built from, for people).

A new version is built per file: an entry of a sibling version (same config) whose stamp
for that name matches is copied byte for byte (its checksum checked on the way), and only
the other files are computed, so one changed file recomputes one file. A version is built
under its config's file lock into a temporary folder and renamed into place, so parallel
jobs of a sweep build it once, and a killed build leaves nothing that looks complete.

A cache proves itself before use: ``values.bin``'s size is checked against the index when
it is opened, the index must list exactly the requested files with their stamps, and every
entry's checksum is checked then too (over ``VERIFY_AT_OPEN``: at each entry's first read
in a process). Any damage is a
``ConfigError`` that says to delete the cache or run ``trainer preprocess --rebuild``.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import json
import logging
import math
import os
import random
import re
import shutil
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import yaml

from sweeptrainer.data.loaders import Header
from sweeptrainer.data.workers import ignore_stop_signals
from sweeptrainer.errors import ConfigError
from sweeptrainer.io.atomic import atomic_write_text

log = logging.getLogger("sweeptrainer")

CACHE_DIR = ".sweeptrainer-cache"
INDEX = "index.json"
VALUES = "values.bin"
INFO = "info.yaml"
LOCK = ".lock"  # in a config folder, while a version of it is built or removed
# a cache up to this size is checked whole when opened (damage found before training);
# a larger one entry by entry, at each entry's first read in a process
VERIFY_AT_OPEN = 1 << 30
FORMAT = 2  # 2: per-file versions, checksums over name and values
_HASH = re.compile(r"[0-9a-f]{16}")  # the name of a config or version folder

Stamp = tuple[int, int]  # a file's (size, modification time in ns)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cycle collector off while per-file lists are made (100,000 files: a few
    hundred thousand objects, none in a cycle). Each collection it would run walks every
    object torch's import made, which doubles the time of reading an index; it is put
    back as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CacheKey:
    """What a cache depends on: the steps' config, and each file's name and stamp."""

    config: str
    stamps: Mapping[str, Stamp]

    @property
    def config_hash(self) -> str:
        return _digest(f"format {FORMAT}\n{self.config}\n")

    @property
    def version_hash(self) -> str:
        return _digest("".join(f"{n}\t{s}\t{m}\n" for n, (s, m) in sorted(self.stamps.items())))

    def folder(self, cache_root: Path) -> Path:
        """The version folder of this key under ``cache_root``."""
        return cache_root / self.config_hash / self.version_hash


def cache_key(config: str, root: Path, names: Sequence[str]) -> CacheKey:
    """The key of the files ``names`` under ``root``: their sizes and mtimes, now."""
    stamps: dict[str, Stamp] = {}
    for name in names:
        try:
            stat = (root / name).stat()
        except OSError as err:
            raise ConfigError(f"dataset: cannot read {name!r}: {err.strerror or err}") from None
        stamps[name] = (stat.st_size, stat.st_mtime_ns)
    return CacheKey(config, stamps)


def checksum(name: str, data: bytes | memoryview) -> int:
    """CRC-32 of a file's name and its values: an index whose entries trade names (two
    files' rows swapped) fails it as surely as changed values do."""
    return zlib.crc32(data, zlib.crc32(name.encode("utf-8", "surrogateescape")))


def damaged(folder: Path, what: str) -> ConfigError:
    """The error for a cache that does not prove itself."""
    return ConfigError(
        f"the preprocessing cache {folder} is damaged ({what}); delete it or run "
        "trainer preprocess --rebuild"
    )


class Entry(NamedTuple):
    """One file's values in ``values.bin``: ``offset`` and size count values, not bytes (a
    named tuple: a 100,000-file index makes 100,000 of them at every open)."""

    name: str
    stamp: Stamp
    offset: int
    shape: tuple[int, ...]
    crc32: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def _naturals(column: Any, width: int | None = None) -> np.ndarray:
    """A JSON column of integers >= 0 (or of rows of ``width`` of them) as float64, exact
    for any count a cache can hold; a ``ValueError`` for anything else (text, fractions,
    booleans, ragged rows). Checked in numpy: a 100,000-file index is read at every open."""
    if not isinstance(column, list):
        raise ValueError("expected a list")
    if width is not None:
        if set(map(type, column)) - {list} or set(map(len, column)) - {width}:
            raise ValueError(f"expected rows of {width} integers")
        column = [n for row in column for n in row]
    if set(map(type, column)) - {int}:
        raise ValueError("a number that is not an integer")
    numbers = np.array(column, dtype=np.float64)
    if len(numbers) and numbers.min() < 0:
        raise ValueError("a number that is not an integer >= 0")
    return numbers if width is None else numbers.reshape(-1, width)


def _sizes(shapes: Any) -> np.ndarray:
    """How many values each shape holds (float64: a bound check, not arithmetic)."""
    if not isinstance(shapes, list) or set(map(type, shapes)) - {list}:
        raise ValueError("expected shapes as lists of integers")
    if not shapes:
        return np.zeros(0)
    ndims = set(map(len, shapes))
    if len(ndims) == 1:  # one rank for every file: one matrix
        return _naturals(shapes, ndims.pop()).prod(axis=1)
    return np.array([_naturals(shape).prod() for shape in shapes], dtype=np.float64)


@dataclass
class Index:
    """A version's ``index.json``, column by column (a 100,000-file index is read at every
    open: lists, not an object per file)."""

    dtype: np.dtype
    values: int  # how many values values.bin holds
    names: list[str]
    stamps: list[Stamp]
    offsets: list[int]
    shapes: list[tuple[int, ...]]
    crcs: list[int]

    @classmethod
    def of(cls, dtype: np.dtype, values: int, entries: Sequence[Entry]) -> Index:
        columns = [list(column) for column in zip(*entries, strict=True)] or [[]] * 5
        return cls(dtype, values, *columns)

    @property
    def entries(self) -> list[Entry]:
        columns = (self.names, self.stamps, self.offsets, self.shapes, self.crcs)
        return [Entry(*row) for row in zip(*columns, strict=True)]

    @classmethod
    @gc_paused()
    def read(cls, folder: Path) -> Index:
        """The index of ``folder``; a ``ConfigError`` (damaged) if it cannot be read."""
        try:
            meta = json.loads((folder / INDEX).read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise damaged(folder, f"{INDEX} is missing") from None
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise damaged(folder, f"{INDEX} cannot be read: {err}") from None
        try:
            if meta["format"] != FORMAT:
                raise damaged(folder, f"format {meta['format']!r}, not {FORMAT}")
            columns = [meta[k] for k in ("names", "stamps", "offsets", "shapes", "crc32")]
            if len({len(c) for c in columns}) != 1:
                raise ValueError("its columns differ in length")
            names, stamps, offsets, shapes, crcs = columns
            if not all(type(n) is str for n in names):
                raise ValueError("a name that is not text")
            values = meta["values"]
            # the numbers checked column by column in numpy (a 100,000-file index is read
            # at every open), each column an integer matrix or vector of its own
            sizes = _sizes(shapes)
            ends = _naturals(offsets) + sizes
            _naturals(stamps, 2)
            _naturals(crcs)
            if type(values) is not int or values < 0:
                raise ValueError(f"values: {values!r}")
            index = cls(np.dtype(meta["dtype"]), values, names, [(a, b) for a, b in stamps],
                        offsets, [tuple(shape) for shape in shapes], crcs)  # fmt: skip
        except ConfigError:
            raise
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise damaged(folder, f"{INDEX} is not an index: {type(err).__name__}: {err}") from None
        past = np.flatnonzero(ends > index.values)
        if len(past):
            raise damaged(folder, f"{INDEX}: {names[int(past[0])]!r} ends past the last value")
        return index

    def write(self, folder: Path) -> None:
        meta = {
            "format": FORMAT,
            "dtype": str(self.dtype),
            "values": self.values,
            "names": self.names,
            "stamps": [list(stamp) for stamp in self.stamps],
            "offsets": self.offsets,
            "shapes": [list(shape) for shape in self.shapes],
            "crc32": self.crcs,
        }
        (folder / INDEX).write_text(json.dumps(meta), encoding="utf-8")


class FeatureStore:
    """The read side of a built cache: ``store[name]`` is that file's preprocessed tensor.

    Opening checks ``values.bin``'s size against the index, (given ``stamps``) that the
    index lists exactly those files with those stamps, and, up to ``VERIFY_AT_OPEN``, every
    entry's checksum; a larger cache's entry is checked the first time this process reads
    it.
    """

    @gc_paused()
    def __init__(self, folder: Path, stamps: Mapping[str, Stamp] | None = None) -> None:
        self.folder = folder
        index = Index.read(folder)
        self.dtype = index.dtype
        self.names, self.offsets, self.shapes = index.names, index.offsets, index.shapes
        self.crcs = index.crcs
        self.rows = {name: i for i, name in enumerate(index.names)}
        if len(self.rows) != len(index.names):
            raise damaged(folder, f"{INDEX} lists a file twice")
        if stamps is not None:
            _check_names(folder, index, self.rows, stamps)
        try:
            size = (folder / VALUES).stat().st_size
        except OSError as err:
            raise damaged(folder, f"{VALUES}: {err.strerror or err}") from None
        expected = index.values * self.dtype.itemsize
        if size != expected:
            raise damaged(folder, f"{VALUES} holds {size} bytes, the index says {expected}")
        self._length = index.values
        self._values: np.ndarray | None = None
        self._checked: set[int] = set()
        if size <= VERIFY_AT_OPEN:
            self.verify()

    def _entry(self, i: int) -> tuple[np.ndarray, tuple[int, ...]]:
        """Entry ``i``'s values (a view of the memory map), checked at its first read."""
        offset, shape = self.offsets[i], self.shapes[i]
        values = self._map()[offset : offset + math.prod(shape)]
        if i not in self._checked:
            if checksum(self.names[i], values.data) != self.crcs[i]:
                raise damaged(
                    self.folder, f"the values of {self.names[i]!r} do not match their checksum"
                )
            self._checked.add(i)
        return values, shape

    def verify(self) -> None:
        """Check every entry's checksum now (not at its first read), so damage is found
        before training starts: about 0.4 s per GB of values held in the page cache, and
        0.1 s per 100,000 entries (one pass over the bytes, no array per entry)."""
        data = memoryview(self._map().data).cast("B")
        itemsize = self.dtype.itemsize
        columns = (self.names, self.offsets, self.shapes, self.crcs)
        for name, offset, shape, crc in zip(*columns, strict=True):
            start = offset * itemsize
            if checksum(name, data[start : start + math.prod(shape) * itemsize]) != crc:
                raise damaged(self.folder, f"the values of {name!r} do not match their checksum")
        self._checked.update(range(len(self.names)))

    def _map(self) -> np.ndarray:
        if self._values is None:
            if self._length == 0:
                self._values = np.empty(0, self.dtype)
            else:
                self._values = np.memmap(self.folder / VALUES, dtype=self.dtype, mode="r")
        return self._values

    def __contains__(self, name: str) -> bool:
        return name in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, name: str) -> torch.Tensor:
        values, shape = self._entry(self.rows[name])
        return torch.from_numpy(np.array(values).reshape(shape))

    def __getstate__(self) -> dict[str, Any]:  # workers started by spawn map it themselves
        return {**self.__dict__, "_values": None}


def _check_names(
    folder: Path, index: Index, rows: Mapping[str, int], stamps: Mapping[str, Stamp]
) -> None:
    """The index lists exactly the requested files (``rows``: its names' positions), each
    with its requested stamp."""
    for name, stamp in stamps.items():
        row = rows.get(name)
        if row is None:
            raise damaged(folder, f"{INDEX} does not list {name!r}")
        if index.stamps[row] != tuple(stamp):
            raise damaged(folder, f"{INDEX} holds another version of {name!r}")
    if len(rows) != len(stamps):
        extra = next(name for name in rows if name not in stamps)
        raise damaged(folder, f"{INDEX} lists {extra!r}, which was not asked for")


@dataclass
class CacheInfo:
    """Where a dataset's cache is, whether this process built it, and how: ``computed``
    files were preprocessed, ``reused`` copied from an earlier version of the cache."""

    folder: Path
    files: int
    built: bool
    seconds: float
    computed: int = 0
    reused: int = 0


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
    if workers == 0 or not names:
        return (dataset[i] for i in range(len(dataset)))
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        num_workers=min(workers, len(names)),
        collate_fn=_keep,
        generator=torch.Generator(),  # its base seed is not drawn from training's generator
        worker_init_fn=ignore_stop_signals,  # the main process stops them
    )
    return iter(loader)


@contextlib.contextmanager
def _rng_untouched() -> Iterator[None]:
    """Whatever the steps draw, the random states training uses are as they were."""
    states = torch.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])


def _reusable(
    siblings: Iterable[Path], stamps: Mapping[str, Stamp]
) -> tuple[np.dtype | None, dict[Path, list[Entry]]]:
    """The entries of sibling versions that hold a requested file at its requested stamp:
    (their dtype, {version: entries}), newest version first, one entry per name."""
    dtype: np.dtype | None = None
    taken: set[str] = set()
    found: dict[Path, list[Entry]] = {}
    for folder in siblings:
        try:
            index = Index.read(folder)
        except ConfigError:
            continue  # a damaged version is no source
        if dtype is not None and index.dtype != dtype:
            continue  # one dtype per version
        matched = [
            entry
            for entry in index.entries
            if entry.name not in taken and tuple(stamps.get(entry.name, ())) == entry.stamp
        ]
        if matched:
            dtype = index.dtype
            taken.update(entry.name for entry in matched)
            found[folder] = matched
    return dtype, found


def _siblings(version: Path) -> list[Path]:
    """The other complete versions of the same config, newest first."""
    found = []
    for folder in version.parent.iterdir():
        if folder != version and _HASH.fullmatch(folder.name) and (folder / INDEX).is_file():
            found.append(((folder / INDEX).stat().st_mtime_ns, folder.name, folder))
    return [folder for *_, folder in sorted(found, reverse=True)]


@dataclass
class _Writer:
    """``values.bin`` and the entries of a version being built."""

    out: Any
    dtype: np.dtype | None = None
    values: int = 0
    entries: list[Entry] = field(default_factory=list)

    def add(self, name: str, stamp: Stamp, data: bytes, shape: Sequence[int], crc: int) -> None:
        assert self.dtype is not None
        self.out.write(data)
        self.entries.append(Entry(name, stamp, self.values, tuple(shape), crc))
        self.values += len(data) // self.dtype.itemsize


def _copy_reused(writer: _Writer, found: dict[Path, list[Entry]]) -> set[str]:
    """Copy the reusable entries whose bytes match their checksum; return their names."""
    copied: set[str] = set()
    assert writer.dtype is not None
    itemsize = writer.dtype.itemsize
    for folder, entries in found.items():
        bad = 0
        try:
            with open(folder / VALUES, "rb") as source:
                for entry in sorted(entries, key=lambda e: e.offset):
                    source.seek(entry.offset * itemsize)
                    data = source.read(entry.size * itemsize)
                    size = entry.size * itemsize
                    if len(data) != size or checksum(entry.name, data) != entry.crc32:
                        bad += 1
                        continue
                    writer.add(entry.name, entry.stamp, data, entry.shape, entry.crc32)
                    copied.add(entry.name)
        except OSError as err:
            log.warning(f"preprocessing cache: cannot read {folder / VALUES} ({err}): recomputed")
            continue
        if bad:
            log.warning(f"preprocessing cache: {bad} damaged entries in {folder}: recomputed")
    return copied


def _build(
    folder: Path,
    key: CacheKey,
    compute: Callable[[str], Any],
    workers: int,
    progress: bool,
    describe: Callable[[str], str],
    siblings: Sequence[Path],
) -> tuple[int, int]:
    """Build version ``key`` into ``folder`` (a new temporary folder): copy what
    ``siblings`` hold of its files, compute the rest. Return (computed, reused)."""
    folder.mkdir(parents=True)
    names = list(key.stamps)
    dtype, found = _reusable(siblings, key.stamps)
    bar = None
    with open(folder / VALUES, "wb") as out:
        writer = _Writer(out, dtype)
        copied = _copy_reused(writer, found) if found else set()
        todo = [name for name in names if name not in copied]
        if todo:
            log.info(
                f"preprocessing {len(todo)} file{'s' if len(todo) != 1 else ''} once "
                "(dataset.preprocess) ..."
            )
        if todo and progress and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=len(todo), unit="file", desc="preprocessing", leave=False)
        try:
            with _rng_untouched():
                for i, array, error in _results(todo, compute, workers):
                    if error is not None:
                        raise ConfigError(f"dataset.preprocess: {describe(todo[i])}: {error}")
                    assert array is not None
                    if writer.dtype is None:
                        writer.dtype = array.dtype
                    array = np.ascontiguousarray(array, dtype=writer.dtype)
                    data = array.tobytes()
                    crc = checksum(todo[i], data)
                    writer.add(todo[i], key.stamps[todo[i]], data, array.shape, crc)
                    if bar is not None:
                        bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        out.flush()
        os.fsync(out.fileno())
    Index.of(writer.dtype or np.dtype("float32"), writer.values, writer.entries).write(folder)
    return len(todo), len(copied)


def open_cache(
    cache_root: Path,
    key: CacheKey,
    compute: Callable[[str], Any],
    *,
    workers: int = 0,
    progress: bool = False,
    describe: Callable[[str], str] = repr,
    rebuilt: set[Path] | None = None,
) -> tuple[FeatureStore, CacheInfo]:
    """The cache of ``key`` under ``cache_root``, built first if missing.

    ``compute(name)`` gives one file's array; ``workers`` processes compute in parallel.
    ``describe(name)`` says where a failing file is listed (for the error message).
    ``rebuilt`` (``trainer preprocess --rebuild``): the caches this command rebuilt so far;
    a cache not in it is built anew, computing every file, and added to it.
    """
    folder = key.folder(cache_root)
    files = len(key.stamps)
    rebuild = rebuilt is not None and folder not in rebuilt
    if not rebuild and (folder / INDEX).is_file():
        return FeatureStore(folder, key.stamps), CacheInfo(folder, files, False, 0.0)
    created_root = not cache_root.exists()
    try:
        with _locked(folder.parent):
            if not rebuild and (folder / INDEX).is_file():  # another job built it meanwhile
                return FeatureStore(folder, key.stamps), CacheInfo(folder, files, False, 0.0)
            info = _build_locked(folder, key, compute, workers, progress, describe, rebuild)
    except OSError as err:
        raise ConfigError(
            f"dataset.cache_dir: cannot write the preprocessing cache in {str(cache_root)!r} "
            f"({err.strerror or err}); set dataset.cache_dir to a folder you can write"
        ) from None
    finally:  # nothing built (a rejected file): no folder holding nothing
        _remove_if_empty(folder.parent)
        if created_root or cache_root.name == CACHE_DIR:  # not a folder the user made
            _remove_if_empty(cache_root)
    if rebuilt is not None:
        rebuilt.add(folder)
    log.info(
        f"preprocessing cache: computed {info.computed} of {files} files ({info.reused} "
        f"reused) in {info.seconds:.1f} s -> {folder}"
    )
    return FeatureStore(folder, key.stamps), info


def _build_locked(
    folder: Path,
    key: CacheKey,
    compute: Callable[[str], Any],
    workers: int,
    progress: bool,
    describe: Callable[[str], str],
    rebuild: bool,
) -> CacheInfo:
    """Build version ``folder`` while holding its config's lock."""
    start = time.perf_counter()
    parent = folder.parent
    for stale in parent.glob(".*.tmp"):  # from a killed build: we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    if folder.exists():  # rebuilt, or incomplete (someone removed its index)
        _remove_aside(folder)
    tmp = parent / f".{folder.name}.{os.getpid()}.tmp"
    try:
        siblings = [] if rebuild else _siblings(folder)
        computed, reused = _build(tmp, key, compute, workers, progress, describe, siblings)
        seconds = time.perf_counter() - start
        info = {
            "files": len(key.stamps),
            "computed": computed,
            "reused": reused,
            "built": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "seconds": round(seconds, 3),
            "config": key.config,
        }
        (tmp / INFO).write_text(yaml.safe_dump(info, sort_keys=False))
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return CacheInfo(folder, len(key.stamps), True, seconds, computed, reused)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold the exclusive lock ``folder/.lock`` (waiting for it); the lock file is removed
    when released. A process that waited on a lock file removed meanwhile takes the new one
    (it checks that the file it locked is still the one at that path)."""
    path = folder / LOCK
    while True:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        except FileNotFoundError:  # the folder was removed meanwhile (an empty one)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def _remove_aside(folder: Path) -> None:
    """Remove a folder, renamed first so that it never looks complete while half removed."""
    aside = folder.parent / f".{folder.name}.{os.getpid()}.old.tmp"
    os.replace(folder, aside)
    shutil.rmtree(aside)


# ----------------------------------------------------------------- checked headers

HEADERS = ".headers"  # <cache_root>/.headers/<loader hash>.json (not a cache)


def _headers_file(cache_root: Path, loader: str) -> Path:
    return cache_root / HEADERS / f"{_digest(loader)}.json"


# a record's columns, a row per file; ``kinds`` rows index its list of distinct headers
COLUMNS = ("names", "sizes", "mtimes", "kinds")


def _header_rows(path: Path) -> tuple[dict[str, list[Any]], list[Header]]:
    """A record's columns and its distinct headers: nothing when it is missing, damaged or
    of another layout (its files' headers are then read again)."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
        columns = {key: data[key] for key in COLUMNS}
        kinds = [
            Header(
                None if shape is None else tuple(int(n) for n in shape),
                None if mode is None else str(mode),
                bool(transparent),
                None if rate is None else int(rate),
            )
            for shape, mode, transparent, rate in data["headers"]
        ]
    except (OSError, ValueError, TypeError, KeyError):
        return {}, []
    if any(not isinstance(c, list) for c in columns.values()):
        return {}, []
    if len({len(c) for c in columns.values()}) != 1:
        return {}, []
    if set(map(type, columns["names"])) - {str} or set(map(type, columns["kinds"])) - {int}:
        return {}, []
    return columns, kinds


@gc_paused()
def read_headers(cache_root: Path, stamps: Mapping[str, Stamp], loader: str) -> dict[str, Header]:
    """The headers checked before with this loader for the files of ``stamps`` that have not
    changed since (same size and mtime); a damaged record counts as none (they are read
    again)."""
    found: dict[str, Header] = {}
    columns, kinds = _header_rows(_headers_file(cache_root, loader))
    if not columns:
        return found
    get = stamps.get
    for name, size, mtime, kind in zip(*(columns[key] for key in COLUMNS), strict=True):
        if get(name) == (size, mtime) and 0 <= kind < len(kinds):
            found[name] = kinds[kind]
    return found


def write_headers(
    cache_root: Path, stamps: Mapping[str, Stamp], loader: str, headers: Mapping[str, Header]
) -> None:
    """Record the checked ``headers`` with their files' stamps, beside what the record held
    of other files (best effort: a folder that cannot be written means the next command
    reads them again)."""
    path = _headers_file(cache_root, loader)
    old, old_kinds = _header_rows(path)
    rows: dict[str, tuple[int, int, Header]] = {}
    for name, size, mtime, kind in zip(*(old.get(key, ()) for key in COLUMNS), strict=True):
        if 0 <= kind < len(old_kinds):
            rows[str(name)] = (size, mtime, old_kinds[kind])
    for name, header in headers.items():
        rows[name] = (*stamps[name], header)
    kinds: dict[Header, int] = {}
    for _, _, header in rows.values():
        kinds.setdefault(header, len(kinds))
    table = {
        "names": list(rows),
        "sizes": [row[0] for row in rows.values()],
        "mtimes": [row[1] for row in rows.values()],
        "kinds": [kinds[row[2]] for row in rows.values()],
        "headers": [[h.shape, h.mode, h.transparent, h.rate] for h in kinds],
    }
    with contextlib.suppress(OSError):  # StorageError too: it is an OSError
        atomic_write_text(path, json.dumps(table))


# ----------------------------------------------------------------- pruning


@dataclass
class StoredCache:
    """A cache found on disk: a version of a config, or a cache of the earlier format
    (one folder per key, right under the cache folder)."""

    folder: Path
    grouped: bool  # a version under its config's folder (this format)
    files: int | None
    size: int
    built: str | None

    def describe(self) -> str:
        files = "?" if self.files is None else self.files
        built = f", built {self.built}" if self.built else ""
        old = ", an earlier format" if not self.grouped else ""
        return f"{self.folder} ({files} files, {_size(self.size)}{built}{old})"


def _size(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    value = size / 1000
    for unit in ("KB", "MB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def _stored(folder: Path, grouped: bool) -> StoredCache:
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    files = built = None
    with contextlib.suppress(OSError, yaml.YAMLError, AttributeError, TypeError, ValueError):
        info = yaml.safe_load((folder / INFO).read_text(encoding="utf-8"))
        files, built = int(info["files"]), str(info.get("built") or "") or None
    return StoredCache(folder, grouped, files, size, built)


def unused_caches(roots: Iterable[Path], used: Iterable[Path]) -> list[StoredCache]:
    """The caches under the cache folders ``roots`` that are not in ``used`` (version
    folders). Only folders named as this module names them are looked at."""
    keep = {Path(p) for p in used}
    found = []
    for root in sorted({Path(r) for r in roots}):
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir()):
            if not _HASH.fullmatch(child.name) or not child.is_dir():
                continue
            if (child / INDEX).is_file():  # the earlier format: <root>/<key>/index.json
                if child not in keep:
                    found.append(_stored(child, grouped=False))
                continue
            for version in sorted(child.iterdir()):
                if _HASH.fullmatch(version.name) and version.is_dir() and version not in keep:
                    found.append(_stored(version, grouped=True))
    return found


def remove_cache(cache: StoredCache) -> None:
    """Remove a cache found by :func:`unused_caches` (a version under its config's lock,
    so no build copies from it meanwhile), and its config folder when nothing is left."""
    if not cache.grouped:
        _remove_aside(cache.folder)
        with contextlib.suppress(OSError):
            (cache.folder.parent / f".{cache.folder.name}.lock").unlink()
        return
    parent = cache.folder.parent
    with _locked(parent):
        if cache.folder.exists():
            _remove_aside(cache.folder)
        if not any(not p.name.startswith(".") for p in parent.iterdir()):
            for stale in parent.glob(".*.tmp"):  # from killed builds: we hold the lock
                shutil.rmtree(stale, ignore_errors=True)
    _remove_if_empty(parent)
