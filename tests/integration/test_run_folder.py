"""A single run leaves every file PRODUCT.md lists, with the right content."""

import pandas as pd
import torch
import yaml

from tests.conftest import TINY, run_dirs


def test_run_folder_contents(trainer, tmp_path):
    result = trainer(*TINY)
    assert result.code == 0, result.err
    (run,) = run_dirs(tmp_path)
    assert run.name == "Digits_FFNN_Adam_0.001_32_epoch_2_None_1"
    assert f"run folder: results/default/training/{run.name}" in result.out
    assert "test loss" in result.out and "accuracy" in result.out

    for name in (
        "config.yaml",
        "metrics.csv",
        "results.yaml",
        "train.log",
        "status.yaml",
        "outputs/dev.csv",
        "outputs/test.csv",
        "states/best.pt",
        "states/last.pt",
    ):
        assert (run / name).is_file(), name
    assert not (run / "outputs/train.csv").exists()
    (events,) = (run / "tensorboard").glob("events.out.tfevents.*")
    # the same file, hard-linked into the experiment's TensorBoard folder named by what varies
    (board,) = (run.parent.parent / "tensorboard").iterdir()
    assert (board / events.name).samefile(events) and (board / ".run").read_text() == run.name

    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["iterations"] == 2 and config["save_frequency"] == 1  # resolved
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics.columns) == [
        "iteration",
        "train_loss",
        "dev_loss",
        "dev_accuracy",
        "dev_uar",
        "dev_f1",
        "learning_rate",
        "elapsed_s",
    ]
    assert metrics.iteration.tolist() == [1, 2]
    results = yaml.safe_load((run / "results.yaml").read_text())
    assert results["tracking_metric"] == "accuracy"
    assert results["best_iteration"] == metrics.dev_accuracy.idxmax() + 1
    assert results["dev"]["accuracy"] == metrics.dev_accuracy.max()
    assert set(results["test"]) == {"loss", "accuracy", "uar", "f1"}
    assert results["train_time_s"] > 0
    status = yaml.safe_load((run / "status.yaml").read_text())
    assert status["state"] == "finished" and len(status["config_hash"]) == 12

    test = pd.read_csv(run / "outputs/test.csv")
    assert list(test.columns[:4]) == ["index", "target", "prediction", "loss"]
    assert [c for c in test.columns if c.startswith("score_")] == [f"score_{i}" for i in range(10)]
    accuracy = (test.target == test.prediction).mean()
    assert accuracy == results["test"]["accuracy"]
    assert test.filter(like="score_").sum(axis=1).round(4).eq(1).all()

    for name in ("best", "last"):
        state = torch.load(run / f"states/{name}.pt", weights_only=True)
        assert set(state) >= {"model", "optimizer", "scheduler", "training", "rng"}
    assert torch.load(run / "states/last.pt", weights_only=True)["training"]["iteration"] == 2
    log = (run / "train.log").read_text()
    assert "epoch 2/2" in log


def test_step_training_evaluates_every_n_steps(trainer, tmp_path):
    result = trainer(
        "training_type=step", "iterations=60", "eval_frequency=20", "progress_bar=false"
    )
    assert result.code == 0, result.err
    (run,) = run_dirs(tmp_path)
    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics.iteration.tolist() == [20, 40, 60]
    # 60 steps of batch 32 cross the epoch boundary (40 batches per epoch)
    assert torch.load(run / "states/last.pt", weights_only=True)["training"]["epoch"] == 1


def test_same_seed_same_metrics(trainer, tmp_path):
    first = trainer(*TINY, "experiment_id=a")
    second = trainer(*TINY, "experiment_id=b")
    assert first.code == second.code == 0
    a, b = (pd.read_csv(run_dirs(tmp_path, e)[0] / "metrics.csv") for e in "ab")
    pd.testing.assert_frame_equal(a.drop(columns="elapsed_s"), b.drop(columns="elapsed_s"))


def test_save_train_outputs_on_request(trainer, tmp_path):
    assert trainer(*TINY, "save_train_outputs=true", "save_dev_outputs=false").code == 0
    (run,) = run_dirs(tmp_path)
    assert (run / "outputs/train.csv").is_file() and not (run / "outputs/dev.csv").exists()
