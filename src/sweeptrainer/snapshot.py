"""The run snapshot: what a run folder needs to be explained months later.

``<run_dir>/snapshot/`` is written when a run starts: the config sources it was composed
from, the command and its overrides, package versions, the git state of the working
folder, the installed packages and the hardware. What every run of one command shares
(git state, package list, versions) is collected once, by the command's
:class:`Provenance`; the machine's hardware once per process (it cannot change while the
process lives). Per run only files are copied and written, so a snapshot costs a few
milliseconds.

A run that starts again (resumed, retried) keeps its first snapshot and adds a note,
``snapshot/resumes/<n>/``, with its own ``command.yaml`` and every other file whose
content differs from the first snapshot's (a new commit, another machine, upgraded
packages). Its config is the same by construction: the config hash is checked.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig

from sweeptrainer.config.compose import ConfigSources, copy_config_tree
from sweeptrainer.config.schema import GROUPS
from sweeptrainer.io.atomic import atomic_write
from sweeptrainer.version import __version__

SNAPSHOT = "snapshot"
COMMAND = "command.yaml"  # written last: a snapshot without it is incomplete
RESUMES = "resumes"
VERSIONED = ("torch", "hydra-core", "omegaconf", "numpy", "pandas")
MAX_UNTRACKED = 100
GIT_TIMEOUT_S = 10.0


def snapshot_dir(run_dir: str | Path) -> Path:
    """``<run_dir>/snapshot``."""
    return Path(run_dir) / SNAPSHOT


# ----------------------------------------------------------------- what is collected


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):  # no git, or it hangs
        return None


def git_state(folder: Path) -> dict[str, Any] | None:
    """Commit, dirty flag, diff and untracked files of the repository holding ``folder``.

    None when git is missing or ``folder`` is not in a repository. ``dirty`` means tracked
    files differ from the commit (``git diff HEAD``, which ``diff`` holds); untracked files
    are listed apart, since results and data folders are often untracked.
    """
    top = _git(folder, "rev-parse", "--show-toplevel")
    if top is None or top.returncode != 0:
        return None
    root = top.stdout.strip()
    head = _git(folder, "rev-parse", "HEAD")
    commit = head.stdout.strip() if head is not None and head.returncode == 0 else None
    diff_args = ("diff", "HEAD") if commit else ("diff", "--cached")
    diff = _git(folder, *diff_args, "--no-color", "--no-ext-diff")
    patch = diff.stdout if diff is not None and diff.returncode == 0 else ""
    branch = _git(folder, "rev-parse", "--abbrev-ref", "HEAD")
    others = _git(folder, "ls-files", "--others", "--exclude-standard", "--directory")
    untracked = others.stdout.splitlines() if others is not None and others.returncode == 0 else []
    return {
        "root": root,
        "commit": commit,
        "branch": branch.stdout.strip() if branch is not None and branch.returncode == 0 else None,
        "dirty": bool(patch),
        "untracked": untracked[:MAX_UNTRACKED],
        "untracked_count": len(untracked),
        "diff": patch,
    }


@functools.lru_cache(maxsize=1)
def installed_packages() -> tuple[str, ...]:
    """``name==version`` of every installed distribution, sorted: ``pip freeze`` without
    the subprocess (editable installs show their version, not their source). Read once per
    process (about 0.2 s): a notebook that installs a package meanwhile records it from its
    next kernel on."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name, version = _name_and_version(dist)
        if name:
            found.setdefault(name.lower().replace("_", "-"), f"{name}=={version}")
    return tuple(sorted(found.values(), key=str.lower))


def _name_and_version(dist: importlib.metadata.Distribution) -> tuple[str | None, str | None]:
    """A distribution's Name and Version from the head of its metadata file: what
    ``dist.metadata`` gives after parsing the whole file as e-mail (0.13 s for 130
    packages, against 0.01 s for the head)."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    name = version = None
    for line in text.splitlines():
        if not line:  # the headers end at the first blank line
            break
        if name is None and line.startswith("Name:"):
            name = line[len("Name:") :].strip()
        elif version is None and line.startswith("Version:"):
            version = line[len("Version:") :].strip()
    return name, version


def versions() -> dict[str, Any]:
    """sweeptrainer, Python, the main libraries and the platform."""
    out: dict[str, Any] = {
        "sweeptrainer": __version__,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }
    for name in VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    out["platform"] = platform.platform()
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


@functools.lru_cache(maxsize=1)
def hardware() -> dict[str, Any]:
    """This machine: host, CPU, cores, memory, GPUs with torch's CUDA/cuDNN versions.

    Cached per process: a launcher's workers on other machines each describe their own.
    """
    import torch

    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpus.append({"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1)})
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    available = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "host": socket.gethostname(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": len(available) if available is not None else os.cpu_count(),
        "memory_gib": _memory_gib(),
        "gpus": gpus,
        "torch": str(torch.__version__),
        "cuda": str(torch.version.cuda) if torch.version.cuda else None,
        "cudnn": cudnn,
    }


# ----------------------------------------------------------------- the command's record


@dataclass
class Provenance:
    """What every run of one command shares, collected once and written into each run.

    ``command``: the command as typed (``trainer -m seed=1,2``), or the Python API call.
    ``sources``: where the config was composed from (the frozen copy during a command).
    Picklable, so launcher workers get the collected values along with the task; call
    :meth:`prepare` before launching so they need not collect them again.
    """

    command: str
    cwd: Path = field(default_factory=Path.cwd)
    sources: ConfigSources | None = None
    argv: list[str] = field(default_factory=lambda: list(sys.argv))
    # a token per training command, written into its runs' status.yaml: the tally tells the
    # runs this command trained from those another command of the sweep (another node) did
    token: str | None = None

    @cached_property
    def git(self) -> dict[str, Any] | None:
        """The repository of the working folder, else of the user's config folder."""
        folders = [self.cwd]
        sources = self.sources
        config_dir = (sources.live_dir or sources.user_dir) if sources is not None else None
        if config_dir:
            folders.append(config_dir)
        for folder in folders:
            state = git_state(Path(folder))
            if state is not None:
                return state
        return None

    @cached_property
    def requirements(self) -> str:
        return "".join(f"{line}\n" for line in installed_packages())

    @cached_property
    def versions(self) -> dict[str, Any]:
        return versions()

    def prepare(self) -> Provenance:
        """Collect everything now (before a launcher sends this object to its workers)."""
        _ = self.git, self.requirements, self.versions
        return self

    # -- one run --------------------------------------------------------------------
    def write(
        self,
        run_dir: str | Path,
        cfg: DictConfig,
        overrides: Sequence[str],
        action: str = "new",
        sweep_dir: Path | None = None,
        choices: Mapping[str, Any] | None = None,
    ) -> Path:
        """Write the snapshot of a run starting now; return the folder written.

        ``action``: what the run does (``new``, ``resume (interrupted)``, ...). A run that
        already has a complete snapshot gets a note in ``snapshot/resumes/<n>/`` instead.
        """
        folder = snapshot_dir(run_dir)
        files = self._files(cfg, overrides, action, sweep_dir, choices)
        if (folder / COMMAND).is_file():
            return self._write_resume(folder, files)
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete one, from a killed start
        self._copy_sources(folder, cfg, choices)
        command = files.pop(COMMAND)
        for name, text in files.items():
            _write(folder / name, text)
        _write(folder / COMMAND, command)
        return folder

    def _write_resume(self, folder: Path, files: dict[str, str]) -> Path:
        number = 1
        while (folder / RESUMES / str(number) / COMMAND).is_file():
            number += 1
        note = folder / RESUMES / str(number)
        shutil.rmtree(note, ignore_errors=True)  # an incomplete one, from a killed start
        command = files.pop(COMMAND)
        for name, text in files.items():
            first = folder / name
            if not first.is_file() or first.read_text(encoding="utf-8") != text:
                _write(note / name, text)
        _write(note / COMMAND, command)
        return note

    def _files(
        self,
        cfg: DictConfig,
        overrides: Sequence[str],
        action: str,
        sweep_dir: Path | None,
        choices: Mapping[str, Any] | None,
    ) -> dict[str, str]:
        sources = self.sources
        live = (sources.live_dir or sources.user_dir) if sources is not None else None
        frozen = sources.kept_copy if sources is not None else None
        config_name = sources.config_name if sources is not None else "config"
        alone = ["trainer"]
        if live is not None and Path(live) != (self.cwd / "conf").resolve():
            alone += ["--config-dir", str(live)]
        if config_name != "config":
            alone += ["--config-name", config_name]
        alone += list(overrides)
        started = time.strftime("%Y-%m-%dT%H:%M:%S")
        command = {
            "command": self.command,
            "run_alone": shlex.join(alone),
            "cwd": str(self.cwd),
            "overrides": list(overrides),
            "action": action,
            "started": started,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "sweep_dir": str(sweep_dir) if sweep_dir is not None else None,
            "config_dir": str(live) if live is not None else None,
            "frozen_config_dir": str(frozen) if frozen is not None else None,
            "config_name": config_name,
            "choices": _grouped(_used_options(cfg, choices)),
            "argv": list(self.argv),
        }
        text = (
            f"# {action}, started {started} on {command['host']} (pid {os.getpid()})\n"
            f"cd {shlex.quote(str(self.cwd))}\n{command['command']}\n"
            f"# this run alone:\n{command['run_alone']}\n"
        )
        files = {
            "command.txt": text,
            "versions.yaml": _yaml(self.versions),
            "hardware.yaml": _yaml(hardware()),
            "requirements.txt": self.requirements,
        }
        if self.git is not None:
            files["git.yaml"] = _yaml({k: v for k, v in self.git.items() if k != "diff"})
            if self.git["diff"]:
                files["git.diff"] = self.git["diff"]
        files[COMMAND] = _yaml(command)
        return files

    def _copy_sources(
        self, folder: Path, cfg: DictConfig, choices: Mapping[str, Any] | None
    ) -> None:
        """``conf/``: the user's config folder as composed; ``packaged/``: the files of the
        packaged library the run used (its main config when the user has none, and the
        chosen group options the user's folder does not shadow)."""
        sources = self.sources or ConfigSources()
        user, packaged = sources.user_dir, sources.packaged
        if user is not None and user.is_dir():
            copy_config_tree(user, folder / "conf")
        wanted = [] if sources.user_has_main else [f"{sources.config_name}.yaml"]
        for group, name in _used_options(cfg, choices):
            relative = f"{group}/{name}.yaml"
            if user is None or not (user / relative).is_file():
                wanted.append(relative)
        for relative in wanted:
            source = packaged / relative
            if source.is_file():
                (folder / "packaged" / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, folder / "packaged" / relative)
        from sweeptrainer.fingerprint import user_modules

        for path in user_modules(cfg, self.cwd).values():  # ``code/``: the user's own modules
            inside = path.resolve().relative_to(self.cwd.resolve())
            (folder / "code" / inside).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, folder / "code" / inside)


def _used_options(cfg: DictConfig, choices: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(group, option) pairs the run was composed from: Hydra's choices when known (the
    CLI), else each main group's ``id`` (a config given to the Python API)."""
    pairs: list[tuple[str, str]] = []
    if choices is None:
        for group in GROUPS:
            option = cfg.get(group)
            if isinstance(option, DictConfig) and option.get("id") is not None:
                pairs.append((group, str(option.id)))
        return pairs
    for group, chosen in choices.items():
        if str(group).startswith("hydra/") or chosen is None:
            continue
        for name in [chosen] if isinstance(chosen, str) else list(chosen):  # str or a list
            pairs.append((str(group), str(name)))
    return pairs


def _grouped(pairs: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    """group -> option, or -> [options] for a group chosen several times (``+loggers=[a,b]``)."""
    out: dict[str, list[str]] = {}
    for group, name in pairs:
        out.setdefault(group, []).append(name)
    return {group: names[0] if len(names) == 1 else names for group, names in out.items()}


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _write(path: Path, text: str) -> None:
    # atomic (a reader never sees half a file) but not fsynced: status.yaml, written
    # durably right after, is what a crash must not lose
    atomic_write(path, lambda f: f.write(text.encode("utf-8")), durable=False)
