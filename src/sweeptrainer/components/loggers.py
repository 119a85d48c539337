"""Loggers: components with ``cb_on_*`` hooks, like any callback.

They copy what a run produces (the config, the metrics rows, the test results) into a
tracking tool. The run folder stays the record: a logger never decides what is trained, it
is left out of the config hash, and its state (an MLflow run id) rides in the state files.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from omegaconf import DictConfig, OmegaConf

from sweeptrainer.config.naming import GROUP_KEYS, OPERATIONAL_KEYS
from sweeptrainer.errors import ConfigError
from sweeptrainer.io.atomic import atomic_write_text
from sweeptrainer.io.lock import exclusive
from sweeptrainer.io.run_dir import RunDir

if TYPE_CHECKING:  # the trainer imports the components' layer, not the other way round
    import torch

    from sweeptrainer.io.tfevents import EventFile
    from sweeptrainer.training.trainer import ModularTaskTrainer

log = logging.getLogger("sweeptrainer")

Scalar = str | int | float | bool | None
NOT_LOGGED = ("iteration", "elapsed_s")  # metrics.csv columns that are not metrics
FOLD_LOSSES = 1000  # batch losses kept before they are added up (one tensor each)


def _tag(name: str) -> str:
    """``dev_accuracy`` -> ``dev/accuracy`` so TensorBoard groups the splits."""
    split, _, rest = name.partition("_")
    return f"{split}/{rest}" if split in ("train", "dev", "test") and rest else name


def flat_config(cfg: DictConfig | dict[str, Any]) -> dict[str, Scalar]:
    """The run's configuration as dotted keys (``model.dropout``: 0.2): what was trained.

    The keys that do not change what is trained (``results_dir``, ``device``, ``loggers``...:
    those the config hash ignores) and the ``_target_`` paths are left out, so a hyper-parameter
    table shows option ids, learning rate, batch size, model arguments and the like. Lists of
    scalars become ``"256,128"``; other lists are left out; ``None`` stays ``None``.
    """
    from sweeptrainer.config.flat import leaves

    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    assert isinstance(data, dict)
    trained = {k: v for k, v in data.items() if k not in OPERATIONAL_KEYS}
    out: dict[str, Scalar] = {}
    for name, value in leaves(trained).items():
        if name.rpartition(".")[2] == "_target_":
            continue
        if isinstance(value, list | tuple):
            if all(isinstance(v, str | int | float | bool) for v in value):
                out[name] = ",".join(str(v) for v in value)
        elif value is None or isinstance(value, str | int | float | bool):
            out[name] = value
    return out


def final_metrics(trainer: ModularTaskTrainer, test_metrics: dict[str, float]) -> dict[str, float]:
    """What a run ends with: ``test_*``, the dev metrics of the best iteration (``best_dev_*``,
    as ``dev:`` in results.yaml) and ``best_iteration``."""
    out = dict(test_metrics)
    state = trainer.state
    best = next((r for r in state.rows if r["iteration"] == state.best_iteration), None)
    if best is not None:
        out |= {f"best_{k}": float(v) for k, v in best.items() if k.startswith("dev_")}
        out["best_iteration"] = float(state.best_iteration)
    return out


class TensorBoardLogger:
    """TensorBoard runs named after what varies.

    The events are written into the run folder's ``tensorboard/`` (the run's record) and
    hard-linked into ``<experiment>/tensorboard/<label>/``, where the label is the run's swept
    values (``learning_rate=0.01,seed=2``, from the sweep's ``runs.yaml``), or for a single
    run its command-line overrides, else its run name; a label another run holds gets
    ``_2`` (each folder's ``.run`` file names its run folder). ``tensorboard --logdir
    results/<experiment>/tensorboard`` then tells the runs apart at a glance. Every point's
    step is the optimizer step, in epoch and step training alike.

    Logged: ``train/loss`` (the mean batch loss since the last point) every
    ``log_every_n_steps`` optimizer steps and at each evaluation, with ``train/learning_rate``
    and ``train/grad_norm`` (when clipping by norm computes it); each evaluation's dev loss
    and metrics (``dev/*``) and ``epoch``; the test metrics (``test/*``) and the best dev
    scores (``best/*``) at the end; and the hyper-parameters (HPARAMS tab): the keys that vary
    (swept or overridden) and the component ids, scored by the ``test/*`` and ``best/*``
    scalars. A resumed run keeps its TensorBoard run (the label rides in the state files)
    and hides the points after its saved step, which the killed process may have written.
    """

    def __init__(
        self, run_dir: Path, sweep_dir: Path | None = None, log_every_n_steps: int = 50
    ) -> None:
        """``log_every_n_steps``: 0 logs the training loss at evaluations only."""
        if (
            isinstance(log_every_n_steps, bool)
            or not isinstance(log_every_n_steps, int)
            or (log_every_n_steps < 0)
        ):
            raise ConfigError(
                "loggers.tensorboard.log_every_n_steps: expected a non-negative integer "
                f"(0: at evaluations only), got {log_every_n_steps!r}"
            )
        self.run_dir = RunDir(run_dir)
        self.sweep_dir = Path(sweep_dir) if sweep_dir is not None else None
        self.every = log_every_n_steps
        self.log_dir = Path(run_dir) / "tensorboard"  # the run folder's record
        self.root = Path(run_dir).parent.parent / "tensorboard"  # <experiment>/tensorboard
        self.label: str | None = None  # the TensorBoard run: a folder name under root
        self._writer: EventFile | None = None
        # the batch losses since the last point (on the device), kept rather than added up
        # step by step (no device operation per step); a long list is folded into its sum
        self._losses: list[Any] = []
        self._loss_n = 0
        self._last_step = -1

    # -- the TensorBoard run ----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"label": self.label, "run": self.run_dir.name}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """A state of this run folder keeps its TensorBoard run; a label that is not one plain
        folder name (a damaged or hostile state) is ignored."""
        label = state.get("label")
        if state.get("run") == self.run_dir.name and isinstance(label, str) and _plain(label):
            self.label = label

    def _claim(self, trainer: ModularTaskTrainer) -> Path:
        """The run's folder under ``root``: its own from a resumed state or an earlier attempt
        (its ``.run`` file names the run folder), else a new one."""
        if self.root.is_symlink():  # never follow a link out of the experiment
            raise ConfigError(f"{self.root}: a symbolic link; TensorBoard writes only inside")
        if self.label is not None and not (self.root / self.label).is_symlink():
            return self.root / self.label
        label = _label(trainer.cfg, self.run_dir.name, self.sweep_dir)
        for number in range(1, 1000):
            name = label if number == 1 else f"{label}_{number}"
            folder = self.root / name
            if folder.is_symlink():
                continue
            try:
                folder.mkdir(parents=True)
                atomic_write_text(folder / ".run", self.run_dir.name)
            except FileExistsError:  # parallel jobs claim folders with mkdir
                if _owner(folder) != self.run_dir.name:
                    continue  # another run's
            self.label = name
            return folder
        raise FileExistsError(f"{self.root}: no free TensorBoard folder for {label}")

    def _open(self, trainer: ModularTaskTrainer, purge_step: int | None = None) -> None:
        from sweeptrainer.io.tfevents import EventFile

        self._writer = EventFile(self.log_dir, purge_step=purge_step)
        self._link(self._claim(trainer))

    def _events(self) -> EventFile:
        """The open event file (opened by cb_on_train_begin, or cb_on_test_end without it)."""
        assert self._writer is not None, "TensorBoardLogger: no event file open"
        return self._writer

    def _link(self, board: Path) -> None:
        """Hard-link the run's event files into its labelled folder: the same file under two
        names (what is appended shows in both), no copy, no symbolic link to follow. Event
        files there that are not the run folder's own (left by an earlier training of the
        same run whose folder was removed or cleared) are removed, so no old curve mixes in."""
        own = {e.name for e in self.log_dir.glob("events.out.tfevents.*")}
        for stale in board.glob("events.out.tfevents.*"):
            if stale.name not in own and (stale.is_file() or stale.is_symlink()):
                stale.unlink()
        for events in self.log_dir.glob("events.out.tfevents.*"):
            target = board / events.name
            if target.exists() or events.is_symlink():
                continue
            try:
                os.link(events, target)
            except OSError as err:  # another file system, or one without hard links
                log.warning(
                    f"warning: TensorBoard: cannot link {events} into {board} ({err.strerror}); "
                    f"the run's events are in {self.log_dir}"
                )
                return

    def _write(self, values: dict[str, float], step: int) -> None:
        """The scalars of one moment as one event (an evaluation logs seven or more: an
        event each cost as many framings and writes, ``benches/notes.md``)."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        if values:
            points = [Summary.Value(tag=tag, simple_value=v) for tag, v in values.items()]
            self._events().add_summary(Summary(value=points), step)

    @staticmethod
    def _scalars(metrics: dict[str, float]) -> dict[str, float]:
        return {
            _tag(name): float(value)
            for name, value in metrics.items()
            if name not in NOT_LOGGED and name != "train_loss"
        }

    # -- hooks ------------------------------------------------------------------------------
    def cb_on_train_begin(self, trainer: ModularTaskTrainer) -> None:
        steps = trainer.optimizer_steps
        fresh = not any(self.log_dir.glob("events.out.tfevents.*"))
        self._open(trainer, purge_step=None if fresh else steps + 1)
        self._last_step = steps
        if fresh:  # a run continued from a shorter one starts with that one's history
            for row in trainer.state.rows:
                self._write(*self._row(trainer, row))

    def cb_on_step_end(self, trainer: ModularTaskTrainer, loss: torch.Tensor) -> None:
        self._losses.append(loss)
        self._loss_n += 1
        if len(self._losses) == FOLD_LOSSES:  # a long window (log_every_n_steps: 0)
            self._losses = [_sum(self._losses)]
        step = trainer.optimizer_steps
        if self.every and step != self._last_step and step % self.every == 0:
            self._write(self._train_point(trainer, step), step)

    def _train_point(
        self, trainer: ModularTaskTrainer, step: int, rate: float | None = None
    ) -> dict[str, float]:
        """``train/loss`` since the last point, the learning rate and gradient norm now
        (``rate``: at an evaluation, the one its metrics row records)."""
        values = {}
        if self._loss_n:
            values["train/loss"] = float(_sum(self._losses)) / self._loss_n
        values["train/learning_rate"] = float(trainer.schedule.current() if rate is None else rate)
        norm = trainer.stepper.last_grad_norm
        if norm is not None:
            values["train/grad_norm"] = float(norm)
        self._losses, self._loss_n, self._last_step = [], 0, step
        return values

    def _row(
        self, trainer: ModularTaskTrainer, row: dict[str, float]
    ) -> tuple[dict[str, float], int]:
        step = trainer.steps_at(int(row["iteration"]))
        values = self._scalars({k: v for k, v in row.items() if k.startswith("dev_")})
        if trainer.budget.unit == "epoch":
            values["epoch"] = float(row["iteration"])
        return values, step

    def cb_on_iteration_end(self, trainer: ModularTaskTrainer, metrics: dict[str, float]) -> None:
        values, step = self._row(trainer, metrics)
        if self._loss_n or step != self._last_step:
            values |= self._train_point(trainer, step, metrics.get("learning_rate"))
        self._write(values, step)
        self._events().flush()  # TensorBoard shows each evaluation as it happens

    def cb_on_train_end(self) -> None:
        self._events().flush()

    def cb_on_run_end(self) -> None:
        """Also after a stop signal or a failure: what was logged reaches the file, and the
        file is closed (a sweep runs many runs in one process)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def cb_on_test_end(self, trainer: ModularTaskTrainer, metrics: dict[str, float]) -> None:
        if self._writer is None:  # test without training (e.g. a finished run re-tested)
            self._open(trainer)
        step = trainer.optimizer_steps
        final = final_metrics(trainer, {})
        best = {f"best/{k.removeprefix('best_')}": float(v) for k, v in final.items()}
        self._write(self._scalars(metrics) | best, step)
        self._write_hparams(trainer, [_tag(k) for k in metrics] + list(best))
        self._events().close()

    def _write_hparams(self, trainer: ModularTaskTrainer, metric_tags: list[str]) -> None:
        from sweeptrainer.io.tfevents import hparams_summaries

        flat = flat_config(trainer.cfg)
        keys = [f"{group}.id" for group in sorted(GROUP_KEYS)]
        keys += [_flat_key(k, flat) for k in _varying_keys(self.sweep_dir)]
        values: dict[str, str | int | float | bool] = {}
        for key in dict.fromkeys(keys):
            value = flat.get(key)
            if value is not None:
                values[key] = value
        # the metrics are the test/* and best/* scalars above: no hparam/* copies of them
        for summary in hparams_summaries(values, metric_tags):
            self._events().add_summary(summary)


def _sum(losses: list[Any]) -> Any:
    """The sum of loss tensors in one operation, of their shape (0.0 for none)."""
    import torch

    return torch.stack(losses).sum(0) if losses else 0.0


def _plain(name: str) -> bool:
    """One folder name, nothing that climbs or hides (state files are untrusted input)."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name


def _owner(folder: Path) -> str | None:
    """The run folder name in a TensorBoard folder's ``.run`` file (None: unreadable)."""
    marker = folder / ".run"
    if marker.is_symlink() or not marker.is_file():  # a pipe would block the read
        return None
    try:
        return marker.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _flat_key(key: str, flat: dict[str, Scalar]) -> str:
    """``model`` (a group choice) -> ``model.id``; ``+model.width`` -> ``model.width``."""
    key = key.lstrip("+~")
    return f"{key}.id" if f"{key}.id" in flat and key not in flat else key


def _varying_keys(sweep_dir: Path | None) -> list[str]:
    """The swept keys of the run's sweep, else the keys overridden on the command line."""
    from sweeptrainer.io import sweep_record

    record = sweep_record.read(sweep_dir)
    if record is not None:
        return record.swept
    overrides = _own_overrides()
    keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides if "=" in o]
    return [k for k in keys if k.split(".")[0] not in OPERATIONAL_KEYS and k != "hydra"]


def _own_overrides() -> list[str]:
    """The job's command-line overrides (Hydra's record of them), or [] outside a job."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def _label(cfg: DictConfig, run_name: str, sweep_dir: Path | None) -> str:
    """``learning_rate=0.01,seed=2``: the varying keys with this run's values; the run name
    when nothing varies."""
    flat = flat_config(cfg)
    parts = []
    for key in _varying_keys(sweep_dir):
        name = _flat_key(key, flat)
        if name in flat:
            parts.append(f"{key.lstrip('+~')}={flat[name]}")
    label = ",".join(parts) or run_name
    label = "".join(c if c.isprintable() and c not in '/\\:*?"<>|' else "_" for c in label)
    label = label.encode("utf-8")[:150].decode("utf-8", errors="ignore")  # bytes: NAME_MAX 255
    return label if _plain(label) else run_name


MLFLOW_INSTALL = "pip install 'sweeptrainer[mlflow]'"
SWEEP_TAG = "sweeptrainer.sweep"  # on a sweep's parent run: the sweep folder
RUN_DIR_TAG = "sweeptrainer.run_dir"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: nests a run under another in the UI
PARAMS_BATCH = 100  # MLflow takes at most 100 params and 1000 metrics per log_batch call
METRICS_BATCH = 1000
RUN_STATUS = {"finished": "FINISHED", "interrupted": "KILLED", "failed": "FAILED",
              "pruned": "KILLED"}  # pruned: stopped by a search, for good  # fmt: skip


class MLflowLogger:
    """One MLflow run per training run: the flattened config as params, the metrics row of
    every evaluation (``step`` = iteration), the final metrics and the run's files.

    It talks to MLflow through ``MlflowClient`` with explicit run ids, never through mlflow's
    active-run stack: the runs of a sweep share one process, and nothing may leak from one to
    the next. In a ``trainer -m`` sweep (``sweep_dir`` given) every run is a child of one
    parent run named after the sweep folder; parallel jobs find it by its tag and create it
    under a lock in the sweep folder, so there is exactly one. A resumed run continues its
    MLflow run (the id is saved in the state files).

    At the end (``cb_on_run_end``) the MLflow run is FINISHED, KILLED (stop signal) or
    FAILED; only a process killed outright (SIGKILL, power loss) leaves it RUNNING until the
    run is resumed.
    """

    required_packages: ClassVar[dict[str, str]] = {"mlflow": MLFLOW_INSTALL}

    def __init__(
        self,
        run_dir: Path,
        sweep_dir: Path | None = None,
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
    ) -> None:
        """``tracking_uri``: None = ``MLFLOW_TRACKING_URI`` when set, else a SQLite store
        beside the results (``<results_dir>/mlflow.db``); ``experiment_name``: None = the
        config's ``experiment_id``."""
        if importlib.util.find_spec("mlflow") is None:  # before any run folder is written
            raise ConfigError(
                f"loggers: MLflowLogger needs MLflow, not installed: {MLFLOW_INSTALL}"
            )
        self.run_dir = RunDir(run_dir)
        self.sweep_dir = Path(sweep_dir) if sweep_dir is not None else None
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.run_id: str | None = None
        self._continued_from: str | None = None
        self._client: Any = None
        if tracking_uri is not None:  # a bad URI is bad input: refuse it before the run starts
            try:
                self._connect()
            except Exception as err:
                reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
                raise ConfigError(
                    f"loggers.mlflow.tracking_uri: MLflow cannot use {tracking_uri!r}: {reason}"
                ) from None

    # -- state: the MLflow run of this run folder -----------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "run": self.run_dir.name}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """A state of this run folder resumes its MLflow run; one of another folder (the
        finished run a ``continue`` starts from) only links the new MLflow run to that one."""
        if state.get("run") == self.run_dir.name:
            self.run_id = state.get("run_id")
        else:
            self._continued_from = state.get("run_id")

    # -- hooks ------------------------------------------------------------------------------
    def cb_on_train_begin(self, trainer: ModularTaskTrainer) -> None:
        if self.tracking_uri is None and not os.environ.get("MLFLOW_TRACKING_URI"):
            # a local store beside the results (MLflow 3 keeps plain-folder stores off)
            results = Path(str(trainer.cfg.results_dir)).resolve()
            self.tracking_uri = f"sqlite:///{results / 'mlflow.db'}"
        client = self._connect()
        if self.run_id is not None and self._resumable(client, self.run_id):
            client.update_run(self.run_id, status="RUNNING")
            return
        self._start(client, trainer)

    def cb_on_iteration_end(self, iteration: int, metrics: dict[str, float]) -> None:
        self._log_rows([(metrics, iteration)])

    def cb_on_test_end(self, trainer: ModularTaskTrainer, metrics: dict[str, float]) -> None:
        """The final metrics: test scores, the dev scores of the best iteration."""
        if self.run_id is None:  # test without training
            self.cb_on_train_begin(trainer)
        self._log_rows([(final_metrics(trainer, metrics), trainer.state.iteration)])

    def cb_on_run_end(self, status: str) -> None:
        """The run's files (config.yaml, metrics.csv, results.yaml, states/best.pt) as
        artifacts, then the MLflow status: FINISHED, KILLED (a stop signal: resuming the
        run continues this MLflow run) or FAILED. The parent of a sweep is FINISHED when
        none of its children is RUNNING any more."""
        if self.run_id is None:  # it never started (e.g. failed before training)
            return
        client = self._connect()
        for path in (self.run_dir.config, self.run_dir.metrics, self.run_dir.results):
            if path.is_file():
                client.log_artifact(self.run_id, str(path))
        if status == "finished" and self.run_dir.state("best").is_file():
            client.log_artifact(self.run_id, str(self.run_dir.state("best")), "states")
        client.set_terminated(self.run_id, RUN_STATUS.get(status, "FAILED"))
        parent = client.get_run(self.run_id).data.tags.get(PARENT_TAG)
        if parent is None or status == "interrupted":  # a stopped sweep is not finished
            return
        with self._sweep_lock():  # the last child to end marks the parent FINISHED
            running = client.search_runs(
                [client.get_run(self.run_id).info.experiment_id],
                f"tags.`{PARENT_TAG}` = '{parent}' and attributes.status = 'RUNNING'",
                max_results=1,
            )
            if not running:
                client.set_terminated(parent, "FINISHED")

    # -- MLflow ---------------------------------------------------------------------------
    def _connect(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            # connecting may create a SQLite store's tables: one job of a sweep at a time
            with self._sweep_lock():
                self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _resumable(self, client: Any, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            run = client.get_run(run_id)
        except MlflowException:
            where = self.tracking_uri or "MLflow's default tracking URI"
            log.warning(f"MLflow run {run_id} not found at {where}; starting a new one")
            return False
        return bool(run.info.lifecycle_stage == "active")

    def _start(self, client: Any, trainer: ModularTaskTrainer) -> None:
        from mlflow.entities import Param

        name = self.experiment_name or str(trainer.cfg.experiment_id)
        tags = {RUN_DIR_TAG: str(self.run_dir.path.resolve())}
        if self._continued_from is not None:
            tags["sweeptrainer.continued_from"] = self._continued_from
        with self._sweep_lock():
            experiment = self._experiment(client, name)
            parent = self._parent(client, experiment) if self.sweep_dir is not None else None
            if parent is not None:
                tags[PARENT_TAG] = parent
            run = client.create_run(experiment, run_name=self.run_dir.name, tags=tags)
            if parent is not None:
                client.update_run(parent, status="RUNNING")
        self.run_id = run.info.run_id
        limit = _param_limit()
        params = [Param(k, _text(v, limit)) for k, v in flat_config(trainer.cfg).items()]
        for start in range(0, len(params), PARAMS_BATCH):
            client.log_batch(self.run_id, params=params[start : start + PARAMS_BATCH])
        # a continued run starts with the history it carries
        self._log_rows([(row, int(row["iteration"])) for row in trainer.state.rows])

    def _experiment(self, client: Any, name: str) -> str:
        """The id of the experiment ``name``, created when missing (by whoever is first)."""
        from mlflow.exceptions import MlflowException

        found = client.get_experiment_by_name(name)
        if found is None:
            try:
                return str(client.create_experiment(name))
            except MlflowException:  # another process created it meanwhile
                found = client.get_experiment_by_name(name)
                if found is None:
                    raise
        if found.lifecycle_stage != "active":
            raise ConfigError(
                f"loggers.mlflow: the MLflow experiment {name!r} is deleted; restore it "
                "(mlflow experiments restore) or set loggers.mlflow.experiment_name"
            )
        return str(found.experiment_id)

    def _parent(self, client: Any, experiment: str) -> str:
        """The sweep's parent run: found by its tag, else created (the caller holds the lock)."""
        assert self.sweep_dir is not None
        sweep = str(self.sweep_dir.resolve())
        quote = '"' if "'" in sweep else "'"
        found = client.search_runs(
            [experiment], f"tags.`{SWEEP_TAG}` = {quote}{sweep}{quote}", max_results=1
        )
        if found:
            return str(found[0].info.run_id)
        run = client.create_run(experiment, run_name=self.sweep_dir.name, tags={SWEEP_TAG: sweep})
        return str(run.info.run_id)

    @contextlib.contextmanager
    def _sweep_lock(self) -> Iterator[None]:
        """Serialises the jobs of one sweep around the parent run; no-op outside a sweep."""
        if self.sweep_dir is None:
            yield
            return
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        with exclusive(self.sweep_dir / ".mlflow.lock"):
            yield

    def _log_rows(self, rows: list[tuple[dict[str, float], int]]) -> None:
        """Log (metrics, step) pairs; ``iteration`` and ``elapsed_s`` are not metrics."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(k, float(v), now, step)
            for values, step in rows
            for k, v in values.items()
            if k not in NOT_LOGGED
        ]
        for start in range(0, len(metrics), METRICS_BATCH):
            self._connect().log_batch(self.run_id, metrics=metrics[start : start + METRICS_BATCH])


def _param_limit() -> int:
    """The longest param value MLflow takes (6000 characters in recent versions, 500 before)."""
    try:
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
    except ImportError:
        return 500
    return int(MAX_PARAM_VAL_LENGTH)


def _text(value: Scalar, limit: int) -> str:
    """A param value as MLflow stores it: text, cut to ``limit`` characters."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
