"""Experiment tracking: TensorBoard scalars and hparams, MLflow runs nested per sweep,
resumed runs continuing their MLflow run, and start-up errors of the MLflow logger."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from sweeptrainer.io.run_dir import RunDir
from tests.conftest import SUBPROCESS_TIMEOUT, TINY, run_dirs
from tests.helpers import die_after_saving

WINE = ("dataset=Wine", "batch_size=50", "progress_bar=false")
PARENT = "mlflow.parentRunId"


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    """One SQLite tracking store for the module: creating its tables takes seconds."""
    pytest.importorskip("mlflow")
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


def _client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def _steps(client, run_id, key):
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def _board(root, experiment, run):
    """The TensorBoard folder of ``run`` (its ``.run`` file names the run folder)."""
    boards = root / "results" / experiment / "tensorboard"
    (folder,) = [f for f in boards.iterdir() if (f / ".run").read_text() == run.name]
    return folder


def test_tensorboard_runs_are_named_by_the_swept_values(trainer, tmp_path):
    """Run names carry the swept values, hparams hold the swept keys and the component ids,
    train/loss has a point every log_every_n_steps optimizer steps; the final metrics are
    the test/* and best/* scalars (no hparam/* copies)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    result = trainer("-m", "model.dropout=0.1,0.2", *TINY,
                     "loggers.tensorboard.log_every_n_steps=7", "gradient_clip_norm=5")  # fmt: skip
    assert result.code == 0, result.err
    boards = tmp_path / "results/default/tensorboard"
    assert sorted(p.name for p in boards.iterdir()) == ["model.dropout=0.1", "model.dropout=0.2"]
    run = next(r for r in run_dirs(tmp_path) if _board(tmp_path, "default", r).name.endswith("0.1"))
    acc = EventAccumulator(str(boards / "model.dropout=0.1"))
    acc.Reload()
    steps = 2 * 40  # Digits: 1,257 training samples, batches of 32, 2 epochs
    assert [e.step for e in acc.Scalars("dev/accuracy")] == [40, 80]
    assert [e.step for e in acc.Scalars("epoch")] == [40, 80]
    assert [e.step for e in acc.Scalars("train/loss")] == sorted({*range(7, steps + 1, 7), 40, 80})
    assert len(acc.Scalars("train/grad_norm")) == len(acc.Scalars("train/loss"))
    assert acc.Scalars("train/learning_rate")[0].value == pytest.approx(0.001)
    tags = set(acc.Tags()["scalars"])
    assert {"test/accuracy", "best/dev_accuracy", "best/iteration"} <= tags
    assert not any(t.startswith("hparam/") for t in tags)

    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content[metadata.SESSION_START_INFO_TAG]
    ).session_start_info
    hparams = dict(start.hparams)
    assert hparams["model.dropout"].number_value == pytest.approx(0.1)
    assert hparams["model.id"].string_value == "FFNN" and "dataset.id" in hparams
    assert "learning_rate" not in hparams and "seed" not in hparams  # not swept
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content[metadata.EXPERIMENT_TAG]
    ).experiment
    metrics = {m.name.tag for m in experiment.metric_infos}
    assert {"test/accuracy", "best/dev_accuracy", "best/iteration"} <= metrics
    (test_accuracy,) = acc.Scalars("test/accuracy")
    assert test_accuracy.step == steps
    assert test_accuracy.value == pytest.approx(RunDir(run).read_results()["test"]["accuracy"])


def test_a_single_run_is_named_by_its_overrides_and_log_every_is_checked(trainer, tmp_path):
    assert trainer(*TINY, "learning_rate=0.01", "experiment_id=one").code == 0
    (board,) = (tmp_path / "results/one/tensorboard").iterdir()
    assert board.name == "iterations=2,learning_rate=0.01"
    bad = trainer(*TINY, "loggers.tensorboard.log_every_n_steps=-1")
    assert bad.code == 2 and "loggers.tensorboard.log_every_n_steps" in bad.err


@pytest.mark.slow  # two MLflow sweeps (about 7 s)
@pytest.mark.parametrize("store", ["sqlite", "file"])
def test_mlflow_sweep_nests_its_runs_under_one_parent(
    trainer, tmp_path, monkeypatch, mlflow_uri, store
):
    if store == "file":  # MLflow 3 keeps its plain-folder store behind a switch
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        mlflow_uri = f"file://{tmp_path}/mlruns"
    result = trainer(
        "-m", "seed=1,2", *WINE, "iterations=2", "experiment_id=swept",
        "+loggers=mlflow", f"loggers.mlflow.tracking_uri={mlflow_uri}",
    )  # fmt: skip
    assert result.code == 0, result.err
    client = _client(mlflow_uri)
    experiment = client.get_experiment_by_name("swept")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "sweeptrainer.sweep" in r.data.tags]
    sweeps = tmp_path / "results" / "swept" / "sweeps"
    (sweep,) = sweeps.iterdir()
    assert parent.data.tags["sweeptrainer.sweep"] == str(sweep.resolve())
    assert parent.info.run_name == sweep.name and parent.info.status == "FINISHED"
    children = sorted((r for r in runs if r is not parent), key=lambda r: r.data.params["seed"])
    assert [r.data.tags[PARENT] for r in children] == [parent.info.run_id] * 2
    assert [r.info.run_name for r in children] == [p.name for p in run_dirs(tmp_path, "swept")]
    for seed, child in enumerate(children, 1):
        params, metrics = child.data.params, child.data.metrics
        assert params["seed"] == str(seed) and params["learning_rate"] == "0.001"
        assert params["dataset.id"] == "Wine" and params["model.hidden_sizes"] == "256,128"
        assert not any(k.endswith("_target_") for k in params)
        assert _steps(client, child.info.run_id, "dev_accuracy") == [1, 2]
        assert _steps(client, child.info.run_id, "learning_rate") == [1, 2]
        assert {"test_accuracy", "test_loss", "best_dev_accuracy", "best_iteration"} <= set(metrics)
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"config.yaml", "metrics.csv", "results.yaml", "states"} <= artifacts
        states = [a.path for a in client.list_artifacts(child.info.run_id, "states")]
        assert states == ["states/best.pt"]
        assert child.info.status == "FINISHED"


@pytest.mark.slow
def test_parallel_jobs_share_one_parent_and_a_fresh_store(tmp_path):
    """joblib processes connect to a new SQLite store and look for the parent at the same
    time: the lock in the sweep folder leaves one store, one parent, every child under it."""
    pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = ("-m", "seed=1,2,3", *WINE, "iterations=2", "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=3", "+loggers=mlflow",
            f"loggers.mlflow.tracking_uri={uri}")  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "sweeptrainer", *args], cwd=tmp_path,
                            capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    client = _client(uri)
    runs = client.search_runs([client.get_experiment_by_name("default").experiment_id])
    (parent,) = [r for r in runs if "sweeptrainer.sweep" in r.data.tags]
    children = [r for r in runs if r is not parent]
    assert len(children) == 3
    assert {r.data.tags[PARENT] for r in children} == {parent.info.run_id}
    assert {r.info.status for r in runs} == {"FINISHED"}


def test_a_resumed_run_continues_its_mlflow_run(trainer, tmp_path, monkeypatch, mlflow_uri):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = (*WINE, "iterations=4", "experiment_id=resumed", "+loggers=mlflow",
            f"loggers.mlflow.tracking_uri={mlflow_uri}")  # fmt: skip
    with monkeypatch.context() as patch:
        die_after_saving(patch, 2)
        assert trainer(*args).code == 130
    client = _client(mlflow_uri)
    experiment = client.get_experiment_by_name("resumed").experiment_id
    (cut,) = client.search_runs([experiment])
    assert cut.info.status == "RUNNING"  # nothing told MLflow the process died
    assert _steps(client, cut.info.run_id, "dev_accuracy") == [1, 2]

    result = trainer(*args)
    assert result.code == 0 and "resume (killed)" in result.out, result.err
    (run,) = client.search_runs([experiment])
    assert run.info.run_id == cut.info.run_id and run.info.status == "FINISHED"
    assert PARENT not in run.data.tags  # a single `trainer` run has no parent
    assert _steps(client, run.info.run_id, "dev_accuracy") == [1, 2, 3, 4]
    assert "test_accuracy" in run.data.metrics
    (folder,) = run_dirs(tmp_path, "resumed")
    acc = EventAccumulator(str(_board(tmp_path, "resumed", folder)))  # the same TensorBoard run
    acc.Reload()
    # Wine: 3 batches an epoch; the points the killed process wrote after its state are hidden
    assert [e.step for e in acc.Scalars("dev/accuracy")] == [3, 6, 9, 12]


def test_a_continued_run_is_a_new_mlflow_run_with_the_carried_history(
    trainer, tmp_path, mlflow_uri
):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = (*WINE, "experiment_id=continued", "+loggers=mlflow",
            f"loggers.mlflow.tracking_uri={mlflow_uri}")  # fmt: skip
    assert trainer(*args, "iterations=2").code == 0
    result = trainer(*args, "iterations=3")
    assert result.code == 0 and "continue from" in result.out, result.err
    client = _client(mlflow_uri)
    experiment = client.get_experiment_by_name("continued").experiment_id
    short, long = sorted(client.search_runs([experiment]), key=lambda r: r.info.start_time)
    assert long.data.tags["sweeptrainer.continued_from"] == short.info.run_id
    assert _steps(client, short.info.run_id, "dev_accuracy") == [1, 2]
    assert _steps(client, long.info.run_id, "dev_accuracy") == [1, 2, 3]
    longer = run_dirs(tmp_path, "continued")[1]
    acc = EventAccumulator(str(_board(tmp_path, "continued", longer)))
    acc.Reload()
    assert [e.step for e in acc.Scalars("dev/accuracy")] == [3, 6, 9]  # the history carried


def test_mlflow_logger_state_keeps_the_run_id_of_its_own_folder_only(tmp_path):
    from sweeptrainer.components.loggers import MLflowLogger

    pytest.importorskip("mlflow")
    first = MLflowLogger(tmp_path / "run_a")
    first.run_id = "abc"
    again, other = MLflowLogger(tmp_path / "run_a"), MLflowLogger(tmp_path / "run_b")
    again.load_state_dict(first.state_dict())
    other.load_state_dict(first.state_dict())  # `continue` from run_a: a new MLflow run
    assert again.run_id == "abc" and other.run_id is None


def test_bad_mlflow_kwarg_fails_at_start(trainer, tmp_path):
    result = trainer(*TINY, "+loggers=mlflow", "+loggers.mlflow.tracking_url=x")
    assert result.code == 2
    assert "loggers.mlflow" in result.err and "tracking_url" in result.err
    assert not (tmp_path / "results").exists()


def test_mlflow_not_installed_fails_at_start_with_the_install_line(trainer, tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec

    def without_mlflow(name, *args):
        return None if name == "mlflow" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_mlflow)
    result = trainer(*TINY, "+loggers=mlflow")
    assert result.code == 2
    assert "pip install 'sweeptrainer[mlflow]'" in result.err
    assert not (tmp_path / "results").exists()


def test_failed_and_interrupted_runs_end_their_mlflow_runs(trainer, tmp_path, mlflow_uri):
    """cb_on_run_end: a failure ends the MLflow run FAILED, a stop signal KILLED, and the
    resumed run continues the same MLflow run to FINISHED."""
    args = (*WINE, "iterations=3", "+loggers=mlflow", f"loggers.mlflow.tracking_uri={mlflow_uri}")
    failing = "+callbacks.fail._target_=tests.helpers.FailingCallback"
    assert trainer(*args, "experiment_id=fails", failing).code == 1
    stops = ("experiment_id=stops", "+callbacks.stop._target_=tests.helpers.SignalSelf",
             "+callbacks.stop.iteration=2")  # Ctrl-C at the first batch of epoch 2  # fmt: skip
    assert trainer(*args, *stops).code == 130
    client = _client(mlflow_uri)

    def only(name):
        (run,) = client.search_runs([client.get_experiment_by_name(name).experiment_id])
        return run

    assert only("fails").info.status == "FAILED"
    killed = only("stops")
    assert killed.info.status == "KILLED"
    assert trainer(*args, *stops).code == 0  # resumes after that batch: no second signal
    resumed = only("stops")
    assert resumed.info.run_id == killed.info.run_id and resumed.info.status == "FINISHED"


def test_the_default_store_is_beside_the_results(trainer, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert trainer(*WINE, "iterations=1", "+loggers=mlflow").code == 0
    store = tmp_path / "results" / "mlflow.db"
    client = _client(f"sqlite:///{store}")
    (run,) = client.search_runs([client.get_experiment_by_name("default").experiment_id])
    assert run.info.status == "FINISHED" and "test_accuracy" in run.data.metrics


def test_a_bad_tracking_uri_is_refused_before_the_run_starts(trainer, tmp_path):
    pytest.importorskip("mlflow")
    result = trainer(*WINE, "+loggers=mlflow", "loggers.mlflow.tracking_uri=bogus://nowhere")
    assert result.code == 2
    assert "loggers.mlflow.tracking_uri: MLflow cannot use 'bogus://nowhere'" in result.err
    assert not (tmp_path / "results").exists()


def test_tensorboard_train_loss_at_evaluations_is_the_metrics_rows(trainer, tmp_path, monkeypatch):
    """With points at evaluations only, train/loss is each row's train_loss, also when the
    batch losses kept for a point are folded into their sum on the way (here every 2)."""
    import pandas as pd
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from sweeptrainer.components import loggers

    monkeypatch.setattr(loggers, "FOLD_LOSSES", 2)
    args = (
        *WINE,
        "iterations=3",
        "experiment_id=folded",
        "loggers.tensorboard.log_every_n_steps=0",
    )
    assert trainer(*args).code == 0
    (run,) = run_dirs(tmp_path, "folded")
    acc = EventAccumulator(str(_board(tmp_path, "folded", run)))
    acc.Reload()
    logged = [e.value for e in acc.Scalars("train/loss")]
    rows = pd.read_csv(run / "metrics.csv")["train_loss"].tolist()
    assert logged == pytest.approx(rows, rel=1e-5)  # Wine: 3 batches an epoch, folded


def test_tensorboard_leaves_the_recorded_learning_rate_alone(trainer, tmp_path):
    """The logger reads the rate without taking it from the metrics row: with a per-batch
    scheduler and a point at each epoch's last step, metrics.csv is as without TensorBoard."""
    import pandas as pd

    args = (*TINY, "scheduler=OneCycleLR")
    assert trainer(*args, "loggers.tensorboard.log_every_n_steps=40", "experiment_id=a").code == 0
    assert trainer(*args, "~loggers.tensorboard", "experiment_id=b").code == 0
    (a,), (b,) = run_dirs(tmp_path, "a"), run_dirs(tmp_path, "b")
    rates = [pd.read_csv(r / "metrics.csv")["learning_rate"].tolist() for r in (a, b)]
    assert rates[0] == rates[1]


def test_a_run_trained_again_after_its_folder_was_removed_shows_no_old_curve(trainer, tmp_path):
    import shutil

    assert trainer(*TINY, "experiment_id=again").code == 0
    (run,) = run_dirs(tmp_path, "again")
    shutil.rmtree(run)  # the user removes the run folder to train it anew
    assert trainer(*TINY, "experiment_id=again").code == 0
    (board,) = (tmp_path / "results/again/tensorboard").iterdir()
    (events,) = board.glob("events.out.tfevents.*")  # the old attempt's file is gone
    assert events.samefile(run / "tensorboard" / events.name)
