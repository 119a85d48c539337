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
from typing import Any, ClassVar

from omegaconf import DictConfig, OmegaConf

from sweeptrainer.config.naming import OPERATIONAL_KEYS
from sweeptrainer.errors import ConfigError
from sweeptrainer.io.lock import exclusive
from sweeptrainer.io.run_dir import RunDir

log = logging.getLogger("sweeptrainer")

Scalar = str | int | float | bool | None
NOT_LOGGED = ("iteration", "elapsed_s")  # metrics.csv columns that are not metrics


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


def final_metrics(trainer: Any, test_metrics: dict[str, float]) -> dict[str, float]:
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
    """Scalars per evaluation (losses, dev metrics, learning rate), the test metrics, and at
    the end the hyper-parameters with the final metrics (TensorBoard's HPARAMS tab).

    Everything goes into the run's ``tensorboard/`` folder, one TensorBoard run per run folder
    (``SummaryWriter.add_hparams`` would put the hparams into a timestamped sub-folder, a run
    of its own). A resumed run writes a new event file into the same folder and purges the
    points after its saved iteration, which the killed process may have written already.
    """

    def __init__(self, run_dir: Path) -> None:
        self.log_dir = RunDir(run_dir).tensorboard
        self._writer: Any = None

    def _open(self, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)

    def _scalars(self, metrics: dict[str, float], step: int) -> None:
        for name, value in metrics.items():
            if name not in NOT_LOGGED:
                self._writer.add_scalar(_tag(name), value, step)

    def cb_on_train_begin(self, trainer: Any) -> None:
        done = trainer.state.iteration
        fresh = not any(self.log_dir.glob("events.out.tfevents.*"))
        self._open(purge_step=done + 1 if done and not fresh else None)
        if fresh:  # a run continued from a shorter one starts with that one's history
            for row in trainer.state.rows:
                self._scalars(row, int(row["iteration"]))

    def cb_on_iteration_end(self, iteration: int, metrics: dict[str, float]) -> None:
        self._scalars(metrics, iteration)

    def cb_on_train_end(self) -> None:
        self._writer.flush()

    def cb_on_test_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        if self._writer is None:  # test without training (e.g. a finished run re-tested)
            self._open()
        self._scalars(metrics, 0)
        self._write_hparams(trainer, metrics)
        self._writer.close()

    def _write_hparams(self, trainer: Any, metrics: dict[str, float]) -> None:
        from torch.utils.tensorboard.summary import hparams

        values = {k: v for k, v in flat_config(trainer.cfg).items() if v is not None}
        results = {f"hparam/{k}": v for k, v in final_metrics(trainer, metrics).items()}
        for summary in hparams(values, results):  # experiment, session start, session end
            self._writer.file_writer.add_summary(summary)
        for name, value in results.items():  # the plugin reads each metric from its scalar
            self._writer.add_scalar(name, value, trainer.state.iteration)


MLFLOW_INSTALL = "pip install 'sweeptrainer[mlflow]'"
SWEEP_TAG = "sweeptrainer.sweep"  # on a sweep's parent run: the sweep folder
RUN_DIR_TAG = "sweeptrainer.run_dir"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: nests a run under another in the UI
PARAMS_BATCH = 100  # MLflow takes at most 100 params and 1000 metrics per log_batch call
METRICS_BATCH = 1000
RUN_STATUS = {"finished": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}


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
    def cb_on_train_begin(self, trainer: Any) -> None:
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

    def cb_on_test_end(self, trainer: Any, metrics: dict[str, float]) -> None:
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

    def _start(self, client: Any, trainer: Any) -> None:
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
