"""The user's own code: the folder their modules are imported from."""

from __future__ import annotations

import inspect
import os
import sys
import sysconfig
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any


def import_from_cwd() -> None:
    """Like ``python -m``: modules in the current folder (a user's model, dataset,
    callbacks) are importable by every verb and API call that builds or checks components."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def _installed() -> set[Path]:
    """The folders of installed packages and of Python's own library."""
    return {Path(p).resolve() for p in {sysconfig.get_path("purelib"),
            sysconfig.get_path("platlib"), sysconfig.get_path("stdlib")} if p}  # fmt: skip


def user_frame(tb: TracebackType | None) -> str | None:
    """``file:line`` of the last frame of a traceback in the user's own code: not in
    sweeptrainer, not in an installed package or Python's library. Where an error in a
    user's model or dataset constructor really is."""
    ours = Path(__file__).resolve().parent
    installed = _installed()
    found = None
    for frame in traceback.extract_tb(tb):
        path = Path(frame.filename).resolve()
        if frame.filename.startswith("<") or path.is_relative_to(ours):
            continue
        if any(path.is_relative_to(folder) for folder in installed):
            continue
        found = f"{_shown(path)}:{frame.lineno}"
    return found


def defined_in_project(obj: Any, outside: Sequence[Path] = ()) -> bool:
    """Whether ``obj`` (a class or function) is the user's own code: defined in a file that,
    with every link resolved, lies under the current folder (the project), so a module
    reached through a link inside the project counts and one whose link leads out of it does
    not; never an installed package (a virtual environment inside the project), nor a file
    in a folder of ``outside`` (the results folder of a run folder being read)."""
    try:
        source = Path(os.path.abspath(inspect.getfile(obj)))
    except (TypeError, OSError):  # built in, or made at run time
        return False
    real, project = source.resolve(), Path.cwd().resolve()
    if not real.is_relative_to(project):
        return False
    if {"site-packages", "dist-packages"} & set(real.relative_to(project).parts):
        return False
    if any(real.is_relative_to(folder) for folder in _installed()):
        return False
    return not any(within(source, folder) for folder in outside)


def within(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies in ``folder``, either as written (made absolute) or with the
    links of both resolved."""
    path, folder = Path(os.path.abspath(path)), Path(os.path.abspath(folder))
    return path.is_relative_to(folder) or path.resolve().is_relative_to(folder.resolve())


def import_sources(dotted: str) -> list[Path]:
    """The files and folders that importing the modules of ``dotted`` (``a.b.C``) would
    read, found as the import system finds them but without importing anything (importing
    runs a module's code): a module already imported gives its own file. Beyond the last
    module (a class, a function) the rest of the name is not looked up."""
    parts, found = dotted.split("."), []
    search: list[str] | None = None  # a top-level name: sys.path, through sys.meta_path
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        module = sys.modules.get(name)
        if module is not None:
            origin = getattr(module, "__file__", None)
            locations = list(getattr(module, "__path__", None) or [])
        else:
            spec = _find_spec(name, search)
            if spec is None:  # no such module: an attribute of the last one (or nothing)
                break
            origin = spec.origin if spec.has_location else None
            locations = list(spec.submodule_search_locations or [])
        found += [Path(p) for p in (origin, *locations) if p]
        if not locations:  # a module, not a package: what follows are its attributes
            break
        search = list(dict.fromkeys(locations))
    return found


def _find_spec(name: str, search: list[str] | None) -> Any:
    """The spec ``import`` would find for ``name``: a top-level name through the finders of
    ``sys.meta_path``; a submodule in its package's folders, a module or package of the first
    folder that has one, else every folder's namespace portion. Finding runs no code."""
    from importlib import machinery

    if search is None:
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            try:
                spec = find(name, None) if find is not None else None
            except Exception:  # a finder that cannot answer for this name
                continue
            if spec is not None:
                return spec
        return None
    details = [(machinery.ExtensionFileLoader, machinery.EXTENSION_SUFFIXES),
               (machinery.SourceFileLoader, machinery.SOURCE_SUFFIXES),
               (machinery.SourcelessFileLoader, machinery.BYTECODE_SUFFIXES)]  # fmt: skip
    portions: list[str] = []
    for folder in search:
        spec = machinery.FileFinder(folder, *details).find_spec(name)
        if spec is not None and spec.loader is not None:
            return spec
        if spec is not None:
            portions += list(spec.submodule_search_locations or [])
    if not portions:
        return None
    namespace = machinery.ModuleSpec(name, None, is_package=True)
    namespace.submodule_search_locations = portions
    return namespace


def _shown(path: Path) -> str:
    """A path relative to the current folder when it is under it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# torch's companion libraries: each release is built for one torch release
COMPANIONS = {"torchvision": lambda minor, patch: f"0.{minor + 15}.{patch}",
              "torchaudio": lambda minor, patch: f"2.{minor}.{patch}"}  # fmt: skip


def companion_mismatch(err: BaseException) -> str | None:
    """What to say when ``err`` came from importing torchvision or torchaudio built for
    another torch (``operator torchvision::nms does not exist``, an undefined symbol): the
    two versions and the release that matches this torch. None for any other error."""
    import importlib.metadata
    import re

    frames = traceback.extract_tb(err.__traceback__)
    for name, matching in COMPANIONS.items():
        inside = any(f"{name}/" in f.filename.replace("\\", "/") for f in frames)
        if not (inside or f"{name}::" in str(err)) or isinstance(err, ModuleNotFoundError):
            continue
        try:
            installed = importlib.metadata.version(name)
            torch_version = importlib.metadata.version("torch")
        except importlib.metadata.PackageNotFoundError:
            return None
        release = re.match(r"2\.(\d+)\.(\d+)", torch_version)
        wanted = matching(int(release[1]), int(release[2])) if release else None
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        fix = f"; pip install '{name}=={wanted}'" if wanted else ""
        if name == "torchaudio" and wanted:  # its releases stopped at some torch releases
            fix += " if that release exists (the packaged audio transforms need no torchaudio)"
        return (
            f"{name} failed to import ({type(err).__name__}: {first}): torch {torch_version} "
            f"and {name} {installed} do not match{fix} (from the same index as torch: "
            "docs/data.md)"
        )
    return None
