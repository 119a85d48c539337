"""Reading the files of a results folder: a run folder's status.yaml, config.yaml,
results.yaml, metrics.csv and outputs, a sweep folder's runs.yaml and stop file.

A results folder is untrusted input: copied, shared, damaged. Every verb reads its files
here, and only so:

- a regular file only: a symbolic link is never followed, and a folder, a FIFO or a device
  is not read (opening one never waits: ``O_NONBLOCK``);
- no bigger than its kind's bound (:data:`LIMITS`), checked before a byte is read;
- YAML with libyaml's safe loader, its nesting at most :data:`DEPTH` levels and its aliases
  adding at most :data:`ALIAS_NODES` nodes to what is written (a "billion laughs" file is
  refused before anything walks it), and no alias that contains itself;
- then the shape the readers rely on: the keys they use, of the types they expect.

Whatever does not fit is a :class:`~sweeptrainer.errors.DamagedRunError` ``<file>: <what>``,
which the verbs report as ``damaged`` while they go on with the other runs. (A search's
journal is Optuna's.)
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import reprlib
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from sweeptrainer.errors import DamagedRunError

KiB, MiB = 1 << 10, 1 << 20
# The most bytes read from each kind of file. The YAML files sweeptrainer writes hold a few
# KB; libyaml's safe loader builds Python objects at 1-6 s a MiB here (6 s: a flow list of
# small numbers, the slowest shape), so 1 MiB stays within a few seconds whatever is in it.
# results.yaml grows with `stratify` (metrics per group: a few hundred bytes a group).
YAML_BYTES = 1 * MiB
LIMITS: dict[str, int] = {
    "status.yaml": YAML_BYTES,
    "config.yaml": YAML_BYTES,
    "results.yaml": 4 * MiB,
    # runs.yaml is written as JSON (a YAML subset), one run a line (about 100 bytes): 8 MiB
    # is about 80,000 runs, read in a tenth of a second; Python's objects for the worst 8 MiB
    # (a list of empty mappings) take about 200 MB. A runs.yaml in block YAML (written before)
    # is read with the YAML bound.
    "runs.yaml": 8 * MiB,
    "metrics.csv": 256 * MiB,  # one row an evaluation (~150 bytes): over a million
    "outputs": 256 * MiB,  # outputs/<split>.csv: one row a sample
    "stop": 64,  # the name of a signal
    "lease.yaml": 64 * KiB,  # a few lines; anything bigger is not a lease
}
NOT_OURS = "; it is damaged or was not written by sweeptrainer"  # after what is wrong
ALIAS_NODES = 100_000  # nodes that aliases may add to a YAML file's own
DEPTH = 100  # levels of nesting (a config nests a handful)

# libyaml's loader when PyYAML was built with it: ~10x faster on many small files
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_shown = reprlib.Repr()
_shown.maxstring, _shown.maxother, _shown.maxlevel = 60, 60, 2


def shown(value: object) -> str:
    """A value as a message shows it: short, whatever its size."""
    return _shown.repr(value)


def damaged(path: Path, what: str) -> DamagedRunError:
    return DamagedRunError(f"{path}: {what}")


def _size(n: int) -> str:
    return f"{n / MiB:.1f} MB" if n >= MiB else f"{n / KiB:.0f} KB" if n >= KiB else f"{n} bytes"


def _kind(mode: int) -> str:
    for check, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                        (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                        (stat.S_ISBLK, "a device")):  # fmt: skip
        if check(mode):
            return name
    return "something else"


def read_bytes(path: Path, limit: int, follow: bool = False, cut: bool = False) -> bytes | None:
    """The bytes of a regular file, None when it is not there; a DamagedRunError when it is a
    symbolic link (unless ``follow``), a folder, a FIFO, a device, unreadable, or bigger than
    ``limit`` bytes (``cut``: its first ``limit`` bytes then)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: a FIFO opens at once, without a writer
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise damaged(path, "a symbolic link, which sweeptrainer never writes there: "
                                "not followed") from None  # fmt: skip
        raise damaged(path, f"not readable ({err.strerror or type(err).__name__})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise damaged(path, f"{_kind(info.st_mode)}, not a file: not read")
        if info.st_size > limit and not cut:
            raise damaged(path, f"{_size(info.st_size)}, more than the {_size(limit)} "
                                "sweeptrainer reads from such a file: not read")  # fmt: skip
        chunks, left = [], limit + (0 if cut else 1)
        while left > 0 and (chunk := os.read(fd, min(left, 4 * MiB))):
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as err:
        raise damaged(path, f"not readable ({err.strerror or type(err).__name__})") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:  # grew while read
        raise damaged(path, f"more than the {_size(limit)} sweeptrainer reads from such a file")
    return data


def limit_of(path: Path) -> int:
    """The bound of a file of a results folder, by its name."""
    if path.parent.name == "outputs":
        return LIMITS["outputs"]
    return LIMITS.get(path.name, YAML_BYTES)


# -- YAML ---------------------------------------------------------------------------------
def parse_yaml(data: bytes, path: Path) -> object:
    """YAML text, with the safe loader (no ``!!python/...`` objects are ever built), its
    nesting and its aliases' expansion bounded; a DamagedRunError naming the file when it is
    not plain YAML or goes beyond a bound."""
    try:
        value = yaml.load(data.decode("utf-8"), Loader=_LOADER)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as err:
        # ValueError: not UTF-8, a date out of range, an integer of 5,000 digits
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise damaged(path, f"not a readable YAML file ({first}); it is damaged or was not "
                            "written by sweeptrainer: remove it (or its run folder) and "
                            "run again") from None  # fmt: skip
    problem = graph_problem(value)
    if problem:
        raise damaged(path, f"{problem}{NOT_OURS}")
    return value


_CONTAINERS = (dict, list, tuple, set, frozenset)


def _children(node: Any) -> list[Any] | Any:
    return list(node.values()) if isinstance(node, dict) else node


def graph_problem(root: object) -> str:
    """What makes parsed YAML unsafe to walk ("" when nothing): nesting deeper than
    :data:`DEPTH`, an alias inside what it refers to (a loop), or aliases that expand it by
    more than :data:`ALIAS_NODES` nodes. An alias is one shared object, so the walk visits
    each object once (linear in what the file holds) and adds up, for each, the nodes it
    stands for where it is used."""
    if not isinstance(root, _CONTAINERS):
        return ""  # an empty file (None) or one scalar: nothing to walk
    expanded: dict[int, int] = {}  # id -> the nodes a container stands for, aliases expanded
    written = 1  # the nodes as written: the root, and each entry of each container once
    open_: set[int] = set()  # the containers being walked: the path from the root
    stack: list[tuple[Any, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            expanded[key] = 1 + sum(expanded.get(id(c), 1) for c in _children(node))
            continue
        if key in expanded:
            continue  # another use of an alias: walked already
        if key in open_:
            return "an alias refers to a node that holds it (a loop)"
        if depth >= DEPTH:
            return f"nested more than {DEPTH} levels deep"
        children = _children(node)
        written += len(children)
        open_.add(key)
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in children if isinstance(c, _CONTAINERS))
    extra = expanded.get(id(root), 1) - written
    if extra > ALIAS_NODES:
        return (f"its aliases expand it by {extra:,} nodes (more than {ALIAS_NODES:,}): "
                "not read")  # fmt: skip
    return ""


def read_yaml(path: Path, limit: int | None = None, follow: bool = False) -> object | None:
    """A YAML file of a results folder (None when it is not there): a regular file, at most
    ``limit`` bytes (by default its kind's bound), parsed with :func:`parse_yaml`."""
    data = read_bytes(path, limit_of(path) if limit is None else limit, follow)
    return None if data is None else parse_yaml(data, path)


# -- shapes -------------------------------------------------------------------------------
def _whole(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: object) -> bool:
    return isinstance(value, str)


def _scores(value: object) -> bool:
    """metric name -> number (or null)."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and (v is None or _number(v)) for k, v in value.items()
    )


def _optional(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda v: v is None or check(v)


def _problem(data: dict[str, Any], checks: tuple[tuple[str, Callable[[object], bool], str], ...],
             prefix: str = "") -> str:  # fmt: skip
    """The first key present with a value its check refuses ("" when none)."""
    for key, check, expected in checks:
        if key in data and not check(data[key]):
            return f"{prefix}{key}: expected {expected}, got {shown(data[key])}"
    return ""


STATES = ("running", "interrupted", "finished", "failed", "pruned")
_STATUS_KEYS: tuple[tuple[str, Callable[[object], bool], str], ...] = (
    ("attempt", _optional(lambda v: _whole(v, 1)), "a whole number of at least 1"),
    ("iterations", _optional(lambda v: _whole(v, 1)), "a whole number of at least 1"),
    ("pid", _optional(lambda v: _whole(v, 2)), "a whole number of at least 2"),
    ("pruned_at", _optional(lambda v: _whole(v, 1)), "a whole number of at least 1"),
    ("world", _optional(lambda v: _whole(v, 1)), "a whole number of at least 1"),
    ("base_hash", _optional(_text), "a text"),
    ("host", _optional(_text), "a text"),
    ("error", _optional(_text), "a text"),
    ("reason", _optional(_text), "a text"),
    ("fingerprint", _optional(lambda v: isinstance(v, dict) and all(
        isinstance(x, dict | str | type(None)) for x in v.values())),
     "a mapping of files to their hashes"),
)  # fmt: skip


def status_problem(data: object) -> str:
    """What makes a status unusable ("" when nothing): the fields plans rely on, typed."""
    if not isinstance(data, dict):
        return f"expected a mapping of status fields, got {type(data).__name__}"
    if data.get("state") not in STATES:
        return f"state: expected one of {', '.join(STATES)}, got {shown(data.get('state'))}"
    if not isinstance(data.get("config_hash"), str):
        return f"config_hash: expected a text, got {shown(data.get('config_hash'))}"
    return _problem(data, _STATUS_KEYS)


def _stratified(value: object) -> bool:
    """split -> column -> group -> metric -> number."""
    return isinstance(value, dict) and all(
        isinstance(split, str) and isinstance(columns, dict) and all(
            isinstance(column, str) and isinstance(groups, dict)
            and all(not isinstance(group, _CONTAINERS) and _scores(scores)
                    for group, scores in groups.items())
            for column, groups in columns.items())
        for split, columns in value.items()
    )  # fmt: skip


_RESULTS_KEYS: tuple[tuple[str, Callable[[object], bool], str], ...] = (
    ("dev", _optional(_scores), "a mapping of metric names to numbers"),
    ("test", _optional(_scores), "a mapping of metric names to numbers"),
    ("best_iteration", _optional(lambda v: _whole(v, 0)), "a whole number"),
    ("tracking_metric", _optional(_text), "a metric name"),
    ("tracking_direction", lambda v: v in (None, "max", "min"), "max or min"),
    ("train_time_s", _optional(_number), "a number of seconds"),
    ("iterations_done", _optional(lambda v: _whole(v, 0)), "a whole number"),
    ("stopped_early", _optional(lambda v: isinstance(v, bool)), "true or false"),
    ("stopped_at", _optional(lambda v: _whole(v, 0)), "a whole number"),
    ("stratified", _optional(_stratified),
     "a mapping of splits to columns to groups to metrics"),
)  # fmt: skip


def results_problem(data: object) -> str:
    if not isinstance(data, dict):
        return f"expected a mapping of results, got {type(data).__name__}"
    return _problem(data, _RESULTS_KEYS)


_GROUP_KEYS: tuple[tuple[str, Callable[[object], bool], str], ...] = (
    ("id", _text, "a name"),
    ("_target_", _optional(_text), "a dotted import path"),
)
_DATASET_KEYS: tuple[tuple[str, Callable[[object], bool], str], ...] = (
    ("tracking_metric", _optional(_text), "a metric name"),
    ("metrics", _optional(lambda v: isinstance(v, list)), "a list of metrics"),
    ("stratify", _optional(lambda v: isinstance(v, list)), "a list of columns"),
    ("batch", _optional(lambda v: isinstance(v, dict)), "a mapping"),
)
_CONFIG_KEYS: tuple[tuple[str, Callable[[object], bool], str], ...] = (
    ("training_type", lambda v: v in ("epoch", "step"), "'epoch' or 'step'"),
    *((key, lambda v: _whole(v, 1), "a positive integer") for key in (
        "iterations", "eval_frequency", "save_frequency", "batch_size", "inference_batch_size")),
    ("seed", lambda v: _whole(v, 0), "a non-negative integer"),
    ("learning_rate", _number, "a number"),
)  # fmt: skip


def config_problem(data: object) -> str:
    """What makes a run's config.yaml unusable ("" when nothing): its dataset and model
    (mappings), the keys the readers use, typed."""
    if not isinstance(data, dict):
        return f"expected a mapping of config keys, got {type(data).__name__}"
    for group in ("dataset", "model"):
        node = data.get(group)
        if not isinstance(node, dict):
            return f"{group}: expected a mapping of the {group}'s keys, got {shown(node)}"
        problem = _problem(node, _GROUP_KEYS, f"{group}.")
        if group == "dataset":
            problem = problem or _problem(node, _DATASET_KEYS, "dataset.")
        if problem:
            return problem
    return _problem(data, _CONFIG_KEYS)


def require(data: dict[str, Any], path: Path, keys: tuple[str, ...]) -> None:
    """A DamagedRunError when a config lacks one of ``keys`` (dotted: ``dataset.id``)."""
    for key in keys:
        node: Any = data
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            raise damaged(path, f"{key}: missing{NOT_OURS}")


def _checked(path: Path, data: object, problem: str, hint: str = "") -> Any:
    if problem:
        raise damaged(path, f"{problem}{NOT_OURS}{hint}")
    return data


def read_status(path: Path) -> dict[str, Any] | None:
    """``status.yaml``, None when there is none (yet)."""
    data = read_yaml(path)
    if data is None:
        return None
    hint = ": remove the run folder (or restore the file) to train it again"
    return _checked(path, data, status_problem(data), hint)


def read_results(path: Path) -> dict[str, Any] | None:
    """``results.yaml``, None when there is none."""
    data = read_yaml(path)
    return None if data is None else _checked(path, data, results_problem(data))


def read_config(path: Path) -> dict[str, Any] | None:
    """A run's ``config.yaml``, None when there is none."""
    data = read_yaml(path)
    return None if data is None else _checked(path, data, config_problem(data))


# -- tables -------------------------------------------------------------------------------
def read_table(path: Path, **options: Any) -> Any:
    """A CSV file of a run folder as a DataFrame, None when it is not there."""
    import pandas as pd

    data = read_bytes(path, limit_of(path))
    if data is None:
        return None
    try:
        return pd.read_csv(io.BytesIO(data), **options)
    except (ValueError, TypeError, OverflowError) as err:  # parser errors, no columns, not UTF-8
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise damaged(path, f"not a readable table ({first})") from None


def read_metrics(path: Path) -> Any:
    """``metrics.csv`` (None when there is none yet): numbers in ``iteration`` (a whole
    number in every row) and ``elapsed_s`` (finite where there: a row cut off has none)."""
    import numpy as np
    import pandas as pd

    frame = read_table(path)
    if frame is None:
        return None
    numbers = ["iteration"] + [c for c in ("elapsed_s",) if c in frame.columns]
    if not all(c in frame.columns and pd.api.types.is_numeric_dtype(frame[c]) for c in numbers):
        raise damaged(path, f"expected numbers in {', '.join(numbers)}")
    iteration = frame["iteration"].to_numpy(dtype=float)
    bad = ~(np.isfinite(iteration) & (iteration >= 0) & (iteration == np.round(iteration)))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise damaged(path, f"row {row + 1}: iteration: expected a whole number, got "
                            f"{shown(frame['iteration'].iloc[row])}")  # fmt: skip
    if "elapsed_s" in frame.columns and np.isinf(frame["elapsed_s"].to_numpy(dtype=float)).any():
        raise damaged(path, "elapsed_s: expected a finite number of seconds")
    return frame


# -- a sweep folder -----------------------------------------------------------------------
_UNREAD = object()


def read_record(path: Path) -> tuple[list[str], list[str], list[list[str]]] | None:
    """A sweep's ``runs.yaml``: (swept keys, run names, each run's overrides); None when
    there is none. Written as JSON (read with json, fast); one in block YAML (written
    before) is read as YAML, within the YAML bound."""
    data = read_bytes(path, LIMITS["runs.yaml"])
    if data is None:
        return None
    value: object = _UNREAD
    if data.lstrip()[:1] == b"{":
        with contextlib.suppress(ValueError, RecursionError):  # not JSON: flow YAML, maybe
            value = json.loads(data)
    if value is _UNREAD:
        if len(data) > YAML_BYTES:
            raise damaged(path, f"{_size(len(data))} of YAML, more than the "
                                f"{_size(YAML_BYTES)} sweeptrainer reads from a YAML file: "
                                "not read")  # fmt: skip
        value = parse_yaml(data, path)
    if not isinstance(value, dict):
        raise damaged(path, f"expected a mapping with swept and runs, got {type(value).__name__}")
    swept, runs = value.get("swept"), value.get("runs") or []
    scalar = (str, int, float)
    if not (isinstance(swept, list) and all(isinstance(k, scalar) for k in swept)):
        raise damaged(path, f"swept: expected a list of keys, got {shown(swept)}")
    if not isinstance(runs, list):
        raise damaged(path, f"runs: expected a list of runs, got {shown(runs)}")
    names: list[str] = []
    overrides: list[list[str]] = []
    for i, run in enumerate(runs):
        own = run.get("overrides") if isinstance(run, dict) else None
        if not (
            isinstance(run, dict)
            and isinstance(run.get("name"), str)
            and isinstance(own or [], list)
            and all(isinstance(o, scalar) for o in own or [])
        ):
            raise damaged(path, f"runs[{i}]: expected a name and a list of overrides, got "
                                f"{shown(run)}")  # fmt: skip
        names.append(run["name"])
        overrides.append([str(o) for o in own or []])
    return [str(k) for k in swept], names, overrides


def read_stop(path: Path) -> str | None:
    """The text of a sweep's stop file (a signal's name; its first bytes), None when there is
    none; a DamagedRunError when it is anything but a regular file."""
    data = read_bytes(path, LIMITS["stop"], cut=True)
    return None if data is None else data.decode("utf-8", "replace").strip()


def finite(value: object) -> float | None:
    """A number of a table or journal as a float, None when it is none (NaN, infinite, too
    big for a float, text)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None
