"""The run folder: the one place that knows every file name a run writes.

Resume, sweeps, postprocessing and monitoring all read runs through this class,
so the layout in PRODUCT.md lives here and nowhere else.
"""

from __future__ import annotations

import csv
import io
import os
import socket
import time
from pathlib import Path
from typing import Any

from sweeptrainer.errors import DamagedRunError
from sweeptrainer.io import untrusted
from sweeptrainer.io.atomic import (
    atomic_write,
    atomic_write_text,
    atomic_write_yaml,
    storage_fault,
)
from sweeptrainer.io.untrusted import STATES

TRAINING_DIR = "training"


def training_dir(results_dir: str | Path, experiment_id: str) -> Path:
    """``<results_dir>/<experiment_id>/training``: the parent of every run folder."""
    return Path(results_dir) / experiment_id / TRAINING_DIR


def check_results_dir(results_dir: str | Path, experiment_id: str) -> None:
    """Raise ConfigError when the experiment's folder could not be created or written:
    ``results_dir`` (or a folder above it) is a file, is read-only, or cannot hold new
    folders (``/proc``). Checked before anything trains; writes nothing that stays (a
    temporary folder in the deepest folder that exists, removed at once)."""
    import tempfile

    from sweeptrainer.errors import ConfigError

    wanted = Path(results_dir) / experiment_id / TRAINING_DIR
    existing = wanted
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"results_dir: {str(existing)!r} is a file; expected a folder to put {str(wanted)!r} in"
        )
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".sweeptrainer-probe-", dir=existing))
    except OSError as err:
        raise ConfigError(
            f"results_dir: cannot create folders in {str(existing)!r} "
            f"({err.strerror or type(err).__name__}); expected a writable folder for "
            f"{str(wanted)!r}"
        ) from None


class RunDir:
    """Paths and atomic readers/writers for one run folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # metrics.csv as this object last wrote it (columns, rows): the next row is appended
        self._metrics_written: tuple[list[str], int, int] | None = None  # and its size

    @property
    def name(self) -> str:
        return self.path.name

    # -- file names ---------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def results(self) -> Path:
        return self.path / "results.yaml"

    @property
    def status_file(self) -> Path:
        return self.path / "status.yaml"

    @property
    def log(self) -> Path:
        return self.path / "train.log"

    @property
    def states(self) -> Path:
        return self.path / "states"

    def state(self, name: str) -> Path:
        """``states/<name>.pt``; ``best`` and ``last`` are the two the trainer keeps."""
        return self.states / f"{name}.pt"

    def output(self, split: str) -> Path:
        """``outputs/<split>.csv``: one row per sample of that split."""
        return self.path / "outputs" / f"{split}.csv"

    # -- status ---------------------------------------------------------------------
    def read_status(self) -> dict[str, Any] | None:
        """The status dict, or None when the run folder has no status yet; a
        DamagedRunError naming the file and what is wrong when it cannot be trusted (every
        file of a run folder is read through :mod:`sweeptrainer.io.untrusted`)."""
        return untrusted.read_status(self.status_file)

    def finished_problem(self) -> str:
        """Why a run marked finished cannot be trusted as finished ("" when it can): its
        results.yaml is missing or damaged."""
        try:
            if self.read_results() is None:
                return self.no_results()
        except DamagedRunError as err:
            return str(err)
        return ""

    def no_results(self) -> str:
        return f"{self.results}: missing, though status.yaml says finished"

    def first_link(self) -> Path | None:
        """The first symbolic link inside the run folder (walked without following links)."""
        for root, dirs, files in os.walk(self.path):
            for name in (*dirs, *files):
                if Path(root, name).is_symlink():
                    return Path(root, name)
        return None

    def link_problem(self) -> str:
        """A symbolic link in the run folder, or the folder being one ("" when none).
        sweeptrainer never makes one there, and resuming through it (appending to train.log,
        writing states/, reading last.pt) would reach outside the experiment."""
        if self.path.is_symlink():
            where = str(self.path)
        elif (link := self.first_link()) is not None:
            where = f"{link} (to {os.readlink(link)})"
        else:
            return ""
        return (
            f"{where} is a symbolic link, which sweeptrainer never makes in a run folder: "
            "not written or read through; remove the link (or the run folder) to train it again"
        )

    def write_status(self, state: str, config_hash: str, **fields: Any) -> None:
        """Write ``status.yaml`` atomically; host and PID are recorded while running."""
        if state not in STATES:
            raise ValueError(f"unknown run state {state!r}")
        data: dict[str, Any] = {"state": state, "config_hash": config_hash}
        if state == "running":
            data |= {"host": socket.gethostname(), "pid": os.getpid()}
        data |= {k: v for k, v in fields.items() if v is not None}
        data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        atomic_write_yaml(self.status_file, data)

    def clear(self) -> None:
        """Remove everything a run wrote (for a run trained anew), but its lock file and its
        lease (``lease.yaml``: other nodes read the run as trained by this process)."""
        import shutil

        for entry in self.path.iterdir():
            if entry.name in (".lock", "lease.yaml"):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def remove_temp_files(self) -> None:
        """Delete temp files left by a process killed mid-write (only the complete files count)."""
        for tmp in self.path.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    # -- content ----------------------------------------------------------------------
    def write_config(self, resolved_yaml: str) -> None:
        atomic_write_text(self.config, resolved_yaml)

    def write_results(self, results: dict[str, Any]) -> None:
        atomic_write_yaml(self.results, results)

    def read_results(self) -> dict[str, Any] | None:
        return untrusted.read_results(self.results)

    def read_config(self) -> dict[str, Any] | None:
        """The run's config.yaml (None when there is none): its dataset and model, and the
        keys readers use, typed."""
        return untrusted.read_config(self.config)

    def read_metrics(self) -> Any:
        """``metrics.csv`` as a DataFrame, or None when there is none (yet)."""
        return untrusted.read_metrics(self.metrics)

    def missing_rows(
        self, metrics: Any, status: dict[str, Any], config: dict[str, Any], results: dict[str, Any]
    ) -> str:
        """Why a finished run's ``metrics.csv`` is short of its evaluations ("" when it is
        not): cut off, or rows removed. Runs stopped early by a callback are not checked.
        The run's other files as the caller read them (each read once)."""
        total, every = status.get("iterations"), config.get("eval_frequency")
        if not (isinstance(total, int) and isinstance(every, int) and every > 0):
            return ""
        if results.get("stopped_early"):
            return ""
        expected = -(-total // every)
        complete = metrics.dropna(subset=[c for c in ("iteration", "elapsed_s") if c in metrics])
        if len(complete) < expected or complete["iteration"].max() != total:
            return (
                f"{self.metrics}: {len(complete)} complete rows, expected {expected} (one per "
                f"evaluation up to iteration {total}); it is cut off or damaged"
            )
        return ""

    def read_output(self, split: str, **options: Any) -> Any:
        """``outputs/<split>.csv`` as a DataFrame (``options``: pandas.read_csv's), None
        when there is none."""
        return untrusted.read_table(self.output(split), **options)

    def write_metrics(self, rows: list[dict[str, float]], durable: bool = True) -> None:
        """All rows so far. A row that follows the ones this object wrote, with the same
        columns, is appended (one write: a kill leaves the file as it was or with the
        row); anything else, and the final (``durable``) version, rewrites the file
        atomically, so a finished or resumed run's file is whole whatever happened before."""
        written = self._metrics_written
        text = io.StringIO()
        if (
            not durable
            and written is not None
            and written[1:] == (len(rows) - 1, self._size())
            and all(key in written[0] for key in rows[-1])
        ):
            columns, size = written[0], written[2]
            csv.DictWriter(text, columns, restval="", lineterminator="\n").writerow(rows[-1])
            data = text.getvalue().encode()
            try:
                with open(self.metrics, "ab") as f:
                    f.write(data)
            except OSError as err:
                raise (storage_fault(err, self.metrics) or err) from err
        else:
            columns, size = list(dict.fromkeys(key for row in rows for key in row)), 0
            writer = csv.DictWriter(text, columns, restval="", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            data = text.getvalue().encode()
            atomic_write(self.metrics, lambda f: f.write(data), durable)
        self._metrics_written = (columns, len(rows), size + len(data))

    def _size(self) -> int:
        try:
            return os.stat(self.metrics).st_size
        except OSError:
            return -1

    def write_output(self, split: str, frame: Any) -> None:
        atomic_write(self.output(split), lambda f: frame.to_csv(f, index=False))

    def save_state(self, name: str, state: dict[str, Any], durable: bool = True) -> None:
        import torch

        atomic_write(self.state(name), lambda f: torch.save(state, f), durable)

    def write_state(self, name: str, data: bytes | memoryview, durable: bool = True) -> None:
        """``states/<name>.pt`` from a state already serialized (``state_saver.serialize``)."""
        atomic_write(self.state(name), lambda f: f.write(data), durable)

    def sync_states(self) -> None:
        """fsync the state files (written without it during training) once at the end."""
        for name in ("best", "last"):
            if self.state(name).is_file():
                fd = os.open(self.state(name), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    def copy_state_from(self, other: RunDir, name: str) -> None:
        """Copy another run's ``states/<name>.pt`` into this run (atomically)."""
        data = other.state(name).read_bytes()
        atomic_write(self.state(name), lambda f: f.write(data))

    def load_state(self, name: str, map_location: str = "cpu") -> dict[str, Any]:
        """Load a state with ``weights_only=True``: tensors and plain containers only."""
        import torch

        return torch.load(self.state(name), map_location=map_location, weights_only=True)
