"""What a run was made from beyond its config: the user's code and the data files it names.

The config hash says whether a run folder holds *this* config; it cannot see an edit to
``my_model.py`` or to ``data/train.csv``. A run records a fingerprint of both in its
``status.yaml`` (and ``snapshot/``): the user's own modules that the config's ``_target_``s
come from (files under the working folder, not installed packages) and the files the
dataset config names. When the run is planned again, a fingerprint that differs is said
(``rerun_on_change: warn``), trains the run anew (``rerun``), or is not looked at
(``ignore``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

HASH_LIMIT = 16 * 2**20  # larger files are told apart by size and modification time
POLICIES = ("warn", "rerun", "ignore")


@functools.lru_cache(maxsize=1024)
def _content_print(path: str, size: int, mtime_ns: int) -> str:
    if size > HASH_LIMIT:
        return f"size {size}, mtime {mtime_ns}"
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            digest.update(chunk)
    return f"sha256 {digest.hexdigest()[:16]}"


def file_print(path: Path) -> str:
    """A file's content hash (its size and mtime when it is big), hashed once per process."""
    stat = path.stat()
    return _content_print(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _strings(node: Any, key: str | None = None) -> Iterator[tuple[str | None, str]]:
    """(key, value) of every string value in a nested container."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v, key)
    elif isinstance(node, str):
        yield key, node


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def user_modules(cfg: DictConfig, cwd: Path) -> dict[str, Path]:
    """The user's own modules a ``_target_`` comes from: name -> file under ``cwd``."""
    container = OmegaConf.to_container(cfg, resolve=True)
    found: dict[str, Path] = {}
    for key, value in _strings(container):
        if key != "_target_" or "." not in value:
            continue
        parts = value.split(".")
        for end in range(len(parts) - 1, 0, -1):
            name = ".".join(parts[:end])
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                continue
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                origin = Path(spec.origin)
                if _inside(origin, cwd) and "site-packages" not in origin.parts:
                    found[name] = origin
                break
    return found


def data_files(cfg: DictConfig, cwd: Path) -> list[Path]:
    """The files the dataset config names (tables, index files): relative to the working
    folder, or to the dataset's ``path``."""
    dataset = OmegaConf.to_container(cfg.dataset, resolve=True) if "dataset" in cfg else {}
    roots = [cwd]
    root = dataset.get("path") if isinstance(dataset, dict) else None
    if isinstance(root, str) and (cwd / root).is_dir():
        roots.append(cwd / root)
    files = []
    for key, value in _strings(dataset):
        if key in ("_target_", "id") or not value or len(value) > 4096:
            continue
        for folder in roots:
            candidate = folder / value
            if candidate.is_file():
                files.append(candidate)
                break
    return sorted(set(files))


def _relative(path: Path, cwd: Path) -> str:
    return str(path.resolve().relative_to(cwd.resolve())) if _inside(path, cwd) else str(path)


def fingerprint(cfg: DictConfig, cwd: Path | None = None) -> dict[str, dict[str, str]]:
    """``{"code": {file: print}, "data": {file: print}}`` for the run of ``cfg``."""
    cwd = cwd or Path.cwd()
    code = {_relative(p, cwd): file_print(p) for p in user_modules(cfg, cwd).values()}
    data = {_relative(p, cwd): file_print(p) for p in data_files(cfg, cwd)}
    return {"code": dict(sorted(code.items())), "data": data}


def changes(recorded: Any, current: dict[str, dict[str, str]]) -> list[str]:
    """The files whose print differs from the recorded one (added and removed included)."""
    if not isinstance(recorded, dict):
        return []  # a run from before fingerprints: nothing to compare
    changed = []
    for kind in ("code", "data"):
        before, now = recorded.get(kind) or {}, current.get(kind) or {}
        changed += [
            name for name in sorted(set(before) | set(now)) if before.get(name) != now.get(name)
        ]
    return changed
