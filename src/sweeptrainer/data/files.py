"""``Files``: a dataset over files on disk (audio, images, arrays), listed in index tables.

A sample is made in this order::

    load (by extension, or your loader)  ->  preprocess (cached)  ->  augmentation (train
    only, the augmentation/ group)  ->  transform (every split)

``preprocess`` is for deterministic, expensive steps (resampling, log-mel spectrograms,
resizing): they run once per file and step config, into a cache beside the data
(:mod:`sweeptrainer.data.cache`). Everything a user can get wrong in the index tables or
the files is found here, before anything trains, and named: the table, the row, the file.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from omegaconf import OmegaConf
from torch.utils.data import Dataset

from sweeptrainer.config.instantiate import builds, instantiate
from sweeptrainer.data import index as tables
from sweeptrainer.data.cache import (
    CACHE_DIR,
    CacheInfo,
    CacheKey,
    Stamp,
    gc_paused,
    open_cache,
    read_headers,
    write_headers,
)
from sweeptrainer.data.loaders import Auto, Header, Image, channels, covering_mode, known
from sweeptrainer.data.pipeline import Pipeline, fingerprint
from sweeptrainer.errors import ConfigError

if TYPE_CHECKING:  # pandas is imported when a table is read (0.7 s)
    import pandas as pd

log = logging.getLogger("sweeptrainer")


# how many files are done in this thread first, timed, to choose how the rest are done
PROBE_FILES = 1000
# The first files must have waited this long in all before a pool is worth it: a busy
# machine can stall this thread for milliseconds, and a stall is not a slow file system.
MIN_WAIT_S = 0.05

R = TypeVar("R")


def _over_files(
    work: Callable[[list[str]], list[R]], names: list[str]
) -> Iterator[tuple[list[str], list[R]]]:
    """``work`` over ``names`` in chunks, each chunk with its results, in order.

    Stat calls and header reads on a local disk are CPU work, and threads only take turns
    at the interpreter (100,000 stats: 0.3 s in this thread, 1 s in eight); on a network
    file system or a cold disk each call waits, and threads overlap the waits. The first
    ``PROBE_FILES`` tell which: when they waited twice the CPU time they used, and at least
    ``MIN_WAIT_S``, the rest go to a pool of 8 threads."""
    first = names[:PROBE_FILES]
    wall, cpu = time.perf_counter(), time.thread_time()
    done = work(first)
    used = time.thread_time() - cpu
    wait = time.perf_counter() - wall - used
    waited = wait > max(2 * used, MIN_WAIT_S)
    yield first, done
    rest = names[PROBE_FILES:]
    if not rest:
        return
    if not waited:
        yield rest, work(rest)
        return
    with ThreadPoolExecutor(max_workers=8) as pool:
        yield from zip(_chunks(rest), pool.map(work, _chunks(rest)), strict=True)


def _chunks(names: list[str], size: int = 512) -> Iterator[list[str]]:
    """``names`` in runs of ``size``: one thread-pool task each, not one per file."""
    for start in range(0, len(names), size):
        yield names[start : start + size]


class SampleError(RuntimeError):
    """A file could not be made into a sample; the message names the file."""


class FilePipeline:
    """load -> preprocess -> transform for one file, built from a dataset's config alone
    (``trainer inference`` uses it on new files, without the index tables)."""

    def __init__(
        self,
        loader: str | dict[str, Any] = "auto",
        sample_rate: int | None = None,
        mono: bool = False,
        image_mode: str | None = None,
        preprocess: Sequence[Any] | None = None,
        transform: Sequence[Any] | None = None,
    ) -> None:
        self.image_mode: str | None = None  # null: auto, resolved by the dataset
        if loader == "auto":
            self.loader: Callable[[Any], Any] = Auto(sample_rate, mono, image_mode)
            self.image_mode = self.loader.loaders["image"].mode
        elif isinstance(loader, dict) and "_target_" in loader:
            self.loader = instantiate(OmegaConf.create(loader), "dataset.loader")
            if not callable(self.loader):
                raise ConfigError("dataset.loader: expected a callable loader(path) -> tensor")
        else:
            raise ConfigError(f"dataset.loader: expected auto or {{_target_: ...}}, got {loader!r}")
        self.preprocess = Pipeline.build(preprocess, "dataset.preprocess")
        self.transform = Pipeline.build(transform, "dataset.transform")
        self._given = {"loader": loader, "sample_rate": sample_rate, "mono": mono}
        self._preprocess_specs = preprocess or []

    def set_image_mode(self, mode: str) -> None:
        """Convert every image to ``mode`` (a dataset resolves ``image_mode: auto`` once)."""
        if isinstance(self.loader, Auto):
            self.loader.loaders["image"] = Image(mode)
            self.image_mode = mode

    @property
    def cache_config(self) -> str:
        """What the preprocessing cache depends on, besides the files."""
        mode = getattr(self, "image_mode", None)
        return fingerprint(
            {**self._given, "image_mode": mode, "preprocess": self._preprocess_specs}
        )

    def load(self, path: Path) -> torch.Tensor:
        """The file's preprocessed tensor (before augmentation and transform)."""
        return torch.as_tensor(self.preprocess(torch.as_tensor(self.loader(path))))

    def __call__(self, path: Path) -> torch.Tensor:
        return self.transform(self.load(path))

    @classmethod
    def from_config(cls, node: Any, image_mode: str | None = None) -> FilePipeline:
        """The pipeline of a ``Files`` dataset config (a run's ``config.yaml`` node);
        ``image_mode``: the mode its training resolved ``image_mode: auto`` to (recorded in
        the run's states), which an explicit mode of the config overrides."""
        data = OmegaConf.to_container(node, resolve=True) if not isinstance(node, dict) else node
        assert isinstance(data, dict)  # a DictConfig's
        keys = ("loader", "sample_rate", "mono", "image_mode", "preprocess", "transform")
        kwargs: dict[str, Any] = {k: data[k] for k in keys if k in data}
        if kwargs.get("image_mode") in (None, "auto") and image_mode is not None:
            kwargs["image_mode"] = image_mode
        return cls(**kwargs)


class FilesSplit(Dataset):
    """One split: sample ``i`` is the file of row ``i`` and its target.

    ``augmentation`` (train only, set by the trainer) runs between preprocess and
    transform.
    """

    def __init__(self, source: Files, split: str, part: tables.Part, targets: np.ndarray):
        self.source, self.split = source, split
        self.names: list[str] = part.frame[source.file_column].astype(str).tolist()
        self.rows = part.rows()
        self.where = part.where
        self.frame = part.frame.reset_index(drop=True)
        dtype = torch.int64 if targets.dtype == np.int64 else torch.float32
        self.targets = torch.tensor(targets, dtype=dtype)  # a copy: pandas' arrays are read-only
        self.augmentation: Callable[[Any], Any] | None = None
        self.witnesses = source.witnesses(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def describe(self, i: int) -> str:
        """Sample ``i``'s file and where it is listed, for messages."""
        return f"{self.names[i]!r} ({self.where} row {self.rows[i]})"

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        name = self.names[i]
        try:
            x = self.source.load(name)
            if self.augmentation is not None:
                x = self.augmentation(x)
            x = self.source.pipeline.transform(x)
        except Exception as err:
            raise SampleError(f"{name!r} ({self.where} row {self.rows[i]}): {err}") from err
        return x, self.targets[i]


@builds(object)  # a component a run folder's config may name
class Files:
    """Files on disk listed in index tables, with their targets.

    The tables (CSV or Parquet, paths relative to ``path``) are either one per split
    (``train``, ``dev``, ``test``) or one table (``index``) split by its ``split_column``
    or, without one, by ``split_seed`` and the fractions (stratified by class for
    classification). ``file_column`` holds each file's path relative to ``path``;
    ``target`` one column, or a list (0/1 columns for ``multilabel``, several values for
    multi-target ``regression``). Labels are encoded from the training split.
    """

    # the splits, set by name in __init__
    train: FilesSplit
    dev: FilesSplit
    test: FilesSplit

    def __init__(
        self,
        path: str = ".",
        train: str | None = None,
        dev: str | None = None,
        test: str | None = None,
        index: str | None = None,
        split_column: str | None = None,
        split_seed: int = 0,
        dev_fraction: float = 0.15,
        test_fraction: float = 0.15,
        file_column: str = "file",
        target: str | Sequence[str] = "label",
        task: str = "classification",
        loader: str | dict[str, Any] = "auto",
        sample_rate: int | None = None,
        mono: bool = False,
        image_mode: str | None = None,
        transform: Sequence[Any] | None = None,
        preprocess: Sequence[Any] | None = None,
        scale_target: bool = False,
        cache_dir: str | None = None,
        check_files: bool = True,
        num_workers: int = 0,
        progress_bar: bool = False,
        rebuilt_caches: set[Path] | None = None,
    ) -> None:
        """``num_workers``, ``progress_bar`` and ``rebuilt_caches`` are runtime values the
        command gives (the last from ``trainer preprocess --rebuild``: the caches it has
        rebuilt so far; any other is built anew)."""
        self.root = Path(path).resolve()
        if not self.root.is_dir():
            raise ConfigError(f"dataset.path: folder {path!r} does not exist (cwd: {Path.cwd()})")
        self.task, self.file_column = task, file_column
        parts = self._parts(
            train, dev, test, index, split_column, split_seed, dev_fraction, test_fraction, target
        )
        tables.check_columns(parts, [file_column], "dataset.file_column")
        encoded = tables.encode_targets(parts, target, task)
        self.class_names, self.target_names = encoded.class_names, encoded.names
        self.pipeline = FilePipeline(loader, sample_rate, mono, image_mode, preprocess, transform)
        self.headers: dict[str, Header] = {}
        self.cache_root = Path(cache_dir).resolve() if cache_dir else self.root / CACHE_DIR
        self._check_files(parts, check_files)
        self.image_mode = self._resolve_image_mode(parts["train"])
        if sample_rate is None:
            self._check_rates()
        self.cache: Any = None
        self.cache_info: CacheInfo | None = None
        if len(self.pipeline.preprocess):
            self._open_cache(num_workers, progress_bar, rebuilt_caches)
        values = self._scaled(encoded.values, scale_target)
        for split, part in parts.items():
            setattr(self, split, FilesSplit(self, split, part, values[split]))
        names = self.class_names if task == "classification" else self.target_names
        assert names is not None  # a classification's classes: encode_targets names them
        self.output_dim = len(names)
        self.input_shape = self._probe()

    # -- index tables -------------------------------------------------------------------
    def _parts(
        self, train, dev, test, index, split_column, split_seed, dev_fraction, test_fraction, target
    ) -> dict[str, tables.Part]:
        given = {s: v for s, v in {"train": train, "dev": dev, "test": test}.items() if v}
        if index is not None:
            if given:
                raise ConfigError(
                    f"dataset.index: give either one index table or train/dev/test tables, "
                    f"not both (got index and {', '.join(given)}; set those to null)"
                )
            frame = tables.read_table(self.root / index, "dataset.index")
            if split_column is not None:
                return tables.split_by_column(frame, split_column, index, "dataset")
            strata = None
            if self.task == "classification" and isinstance(target, str):
                tables.check_columns(
                    {"all": tables.Part(frame, repr(index))}, [target], "dataset.target"
                )
                strata = frame[target]
            return tables.split_by_fractions(
                frame, index, split_seed, dev_fraction, test_fraction, strata, "dataset"
            )
        missing = [s for s in tables.SPLITS if s not in given]
        if missing:
            raise ConfigError(
                f"dataset.{missing[0]}: no index table; set train, dev and test (tables "
                f"relative to dataset.path), or one table as dataset.index"
            )
        return {
            split: tables.Part(
                tables.read_table(self.root / name, f"dataset.{split}"),
                f"the {split} file {name!r}",
            )
            for split, name in given.items()
        }

    # -- files --------------------------------------------------------------------------
    def _check_files(self, parts: dict[str, tables.Part], check_headers: bool) -> None:
        """Every listed file exists (and, with ``check_files``, its header reads)."""
        with gc_paused():
            self._listed = self._list(parts)
            self.stamps = self._stat(self._listed)
        check = getattr(self.pipeline.loader, "check", None)
        if check_headers and check is not None:
            self._check_headers(check)

    def _list(self, parts: dict[str, tables.Part]) -> dict[str, tuple[str, int]]:
        """Each listed file -> (table, row) of its first mention."""
        listed: dict[str, tuple[str, int]] = {}
        for part in parts.values():
            column = part.frame[self.file_column]
            if column.isna().any():
                position = int(np.flatnonzero(column.isna().to_numpy())[0])
                raise ConfigError(
                    f"dataset.file_column: {part.where} row {part.row(position)} "
                    f"has no file in column {self.file_column!r}"
                )
            for name, row in zip(column.astype(str).tolist(), part.rows(), strict=True):
                listed.setdefault(name, (part.where, row))
        return listed

    def _check_headers(self, check: Callable[[Path], Header | None]) -> None:
        """Every file's header reads (``check_files``); what it says is kept in ``headers``."""
        listed = self._listed
        # the headers checked for these very files (names, sizes, mtimes) and loader, when a
        # preprocessing cache folder keeps them: a check proportionate to what changed
        record = self._header_record()
        known = read_headers(*record) if record else {}
        todo = [name for name in listed if name not in known]

        def problems(names: list[str]) -> list[Header | str | None]:
            out: list[Header | str | None] = []
            for name in names:
                try:
                    out.append(check(self.root / name))
                except Exception as err:
                    out.append(f"{type(err).__name__}: {err}")
            return out

        for names, results in _over_files(problems, todo):
            for name, result in zip(names, results, strict=True):
                if isinstance(result, str):
                    raise ConfigError(f"dataset: cannot read {self.describe(name)}: {result}")
                if isinstance(result, Header):
                    known[name] = result
        self.headers = {name: known[name] for name in listed if name in known}
        if record and todo:
            write_headers(*record, self.headers)

    def _stat(self, listed: dict[str, tuple[str, int]]) -> dict[str, Stamp]:
        """Every listed file's (size, mtime): the cache's key; a missing one is named."""
        found: dict[str, Stamp] = {}
        missing: list[str] = []
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:

            def stamps(chunk: list[str]) -> list[Stamp | None]:
                out: list[Stamp | None] = []
                for name in chunk:
                    try:
                        stat = os.stat(name, dir_fd=fd)  # relative to the root (or absolute)
                    except (OSError, ValueError):  # ValueError: a NUL in the name
                        out.append(None)
                        continue
                    out.append((stat.st_size, stat.st_mtime_ns) if S_ISREG(stat.st_mode) else None)
                return out

            for chunk, results in _over_files(stamps, list(listed)):
                for name, stamp in zip(chunk, results, strict=True):
                    if stamp is None:
                        missing.append(name)
                    else:
                        found[name] = stamp
        finally:
            os.close(fd)
        if missing:
            where, row = listed[missing[0]]
            raise ConfigError(
                f"dataset: {len(missing)} listed file(s) do not exist under {str(self.root)!r}, "
                f"first {missing[0]!r} ({where} row {row})"
            )
        return found

    def _header_record(self) -> tuple[Path, Mapping[str, Stamp], str] | None:
        """Where the checked headers of these files are kept: beside the preprocessing
        cache (a dataset with preprocess steps keeps one anyway), for the packaged loader
        (whose settings its repr says), or nowhere."""
        if not len(self.pipeline.preprocess) or not isinstance(self.pipeline.loader, Auto):
            return None
        return self.cache_root, self.stamps, repr(self.pipeline.loader)

    def _resolve_image_mode(self, train: tables.Part) -> str | None:
        """``image_mode: auto``: the mode that covers the training split's images (palette
        images count as their colours), logged once; the explicit mode otherwise."""
        loader = self.pipeline.loader
        if not isinstance(loader, Auto) or self.pipeline.image_mode is not None:
            return self.pipeline.image_mode
        names = train.frame[self.file_column].astype(str).tolist()
        if len(self.headers) == len(self._listed):  # every file's header is known: an
            # image's is the one with a mode (auto's image loader is the one that sets it)
            headers = [h for h in map(self.headers.__getitem__, names) if h.mode is not None]
        else:
            kinds = known()
            images = [n for n in names if kinds.get(os.path.splitext(n)[1].lower()) == "image"]
            check = loader.loaders["image"].check
            try:
                headers = [self.headers.get(n) or check(self.root / n) for n in images]
            except Exception as err:
                raise ConfigError(f"dataset: cannot read an image's header: {err}") from None
        if not headers:
            return None
        held = sorted({h.mode or "?" for h in headers})
        mode = covering_mode((h.mode or "RGB", h.transparent) for h in headers)
        self.pipeline.set_image_mode(mode)
        log.info(
            f"images: every image is converted to {mode} (the training images are "
            f"{', '.join(held)}; set dataset.image_mode to choose)"
        )
        return mode

    def _check_rates(self) -> None:
        """Audio of several sample rates without ``sample_rate`` would be read as one rate
        by every step after loading: an input error naming two files."""
        rates: dict[int, str] = {}
        for name, header in self.headers.items():
            if header.rate is not None:
                rates.setdefault(header.rate, name)
        if len(rates) > 1:
            (r1, a), (r2, b) = list(rates.items())[:2]
            raise ConfigError(
                f"dataset.sample_rate: the audio files have {len(rates)} sample rates "
                f"({self.describe(a)}: {r1} Hz, {self.describe(b)}: {r2} Hz); set "
                f"dataset.sample_rate (e.g. {max(rates)}) to resample every file to one rate"
            )

    def witnesses(self, names: Sequence[str], most: int = 4) -> list[int]:
        """Positions of up to ``most`` files of ``names`` whose headers promise different
        shapes (the first of each): the first-batch check makes these samples, so files
        that cannot share a batch are found before training, not mid-epoch."""
        headers = list(map(self.headers.get, names))
        # each distinct header at its first position (files mostly share a header object)
        distinct = dict(zip(reversed(headers), range(len(headers) - 1, -1, -1), strict=True))
        first: dict[tuple[int, ...], int] = {}
        for header, i in sorted(distinct.items(), key=lambda item: item[1]):
            if header is None or header.shape is None:
                continue
            shape = header.shape
            if header.mode is not None and self.image_mode is not None:
                shape = (channels(self.image_mode), *shape[1:])  # after the conversion
            first.setdefault(shape, i)
            if len(first) == most:
                break
        return list(first.values()) if len(first) > 1 else []

    def describe(self, name: str) -> str:
        """A file and where it is listed, for messages: ``'a.wav' ('train.csv' row 3)``."""
        where, row = self._listed.get(name, ("?", 0))
        return f"{name!r} ({where} row {row})"

    def _open_cache(self, workers: int, progress: bool, rebuilt: set[Path] | None) -> None:
        key = CacheKey(self.pipeline.cache_config, self.stamps)
        self.cache, self.cache_info = open_cache(
            self.cache_root,
            key,
            lambda name: self.pipeline.load(self.root / name),
            workers=workers,
            progress=progress,
            describe=self.describe,
            rebuilt=rebuilt,
        )

    def load(self, name: str) -> torch.Tensor:
        """A file's preprocessed tensor: from the cache when there is one."""
        if self.cache is not None:
            return self.cache[name]
        return self.pipeline.load(self.root / name)

    # -- targets and shapes -------------------------------------------------------------
    def _scaled(self, values: dict[str, np.ndarray], scale: bool) -> dict[str, np.ndarray]:
        """Regression targets standardised on the training split (``scale_target``)."""
        self.target_mean: list[float] | None = None
        self.target_std: list[float] | None = None
        if self.task != "regression" or not scale:
            return values
        mean, std = values["train"].mean(axis=0), values["train"].std(axis=0)
        std[std == 0] = 1.0
        self.target_mean, self.target_std = mean.tolist(), std.tolist()
        return {split: ((v - mean) / std).astype(np.float32) for split, v in values.items()}

    def _probe(self) -> tuple[int, ...]:
        """The input shape: the first training sample's, after every step."""
        try:
            x, _ = self.train[0]
        except SampleError as err:
            raise ConfigError(f"dataset: the first training sample cannot be made: {err}") from None
        if not isinstance(x, torch.Tensor):
            raise ConfigError(
                f"dataset: the first training sample's input is a {type(x).__name__}; the last "
                "step of the pipeline must give a tensor"
            )
        return tuple(x.shape)

    def class_counts(self) -> list[int]:
        """Training samples per class (for balanced class weights)."""
        targets = self.train.targets
        return torch.bincount(targets, minlength=self.output_dim).tolist()

    def sample_info(self, split: str) -> pd.DataFrame:
        """Per-sample columns of a split's index table (the file and every column that is
        not a target): written into outputs/<split>.csv, used by ``stratify``."""
        frame: pd.DataFrame = getattr(self, split).frame
        keep = [c for c in frame.columns if c not in self.target_names]
        return frame[keep]
