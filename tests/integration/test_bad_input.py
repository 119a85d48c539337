"""Bad input: one clear message naming the key or file, exit code 2, results untouched.

Each case runs after a finished run exists, and checks that nothing in the
results folder changed.
"""

import pandas as pd
import pytest
import yaml

from tests.conftest import TINY, run_dirs, snapshot


@pytest.fixture
def with_finished_run(trainer, tmp_path):
    assert trainer("iterations=1", "progress_bar=false").code == 0
    return snapshot(tmp_path / "results")


CASES = [
    # (overrides, what the message must say)
    (["model=Nope"], "Could not find 'model/Nope'"),
    (["foo=1"], "unknown config key 'foo'"),
    (["iteratons=3"], "did you mean 'iterations'"),
    (["training_type=foo"], "training_type: expected 'epoch' or 'step', got 'foo'"),
    (["iterations=0"], "iterations: expected a positive integer, got 0"),
    (["iterations=-5"], "iterations: expected a positive integer, got -5"),
    (["iterations=10", "eval_frequency=20"], "eval_frequency: 20 is larger than iterations (10)"),
    (["model._target_=nope.Model"], "model._target_: cannot import 'nope.Model'"),
    (["+model.hidden=3"], "model: the arguments do not fit sweeptrainer.components.models.FFNN"),
    (["batch_size=abc"], "batch_size: expected a positive integer, got 'abc'"),
    (["device=gpu"], "device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    (["dataset.tracking_metric=mae"], "dataset.tracking_metric: expected one of dataset.metrics"),
    (["dataset=Table"], "dataset.train: file 'data/train.csv' does not exist"),
    # names past a file system's limit (255 bytes): one line, not an OSError traceback
    ([f"experiment_id={'x' * 300}"], "experiment_id: expected a folder name (no '/', no control"),
    ([f"results_dir=r/{'x' * 300}"], "results_dir: expected a folder path (each name in it at"),
]


@pytest.mark.parametrize(("overrides", "message"), CASES, ids=[c[1][:40] for c in CASES])
def test_bad_override(trainer, tmp_path, with_finished_run, overrides, message):
    result = trainer(*overrides, "progress_bar=false")
    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err + result.out
    assert snapshot(tmp_path / "results") == with_finished_run


def test_bad_value_in_one_run_of_a_sweep_stops_before_any_run(trainer, tmp_path):
    result = trainer("-m", "model=FFNN,Nope", *TINY)
    assert result.code == 2
    assert "model=Nope" in result.err and "Could not find 'model/Nope'" in result.err
    assert not (tmp_path / "results").exists()


def test_table_without_the_target_column(trainer, tmp_path, with_finished_run):
    (tmp_path / "data").mkdir()
    for split in ("train", "dev", "test"):
        pd.DataFrame({"a": [1.0, 2.0], "label": [0, 1]}).to_csv(tmp_path / f"data/{split}.csv")
    result = trainer("dataset=Table", *TINY)
    assert result.code == 2
    assert (
        "dataset.target: column(s) ['target'] not in the train file 'data/train.csv'" in result.err
    )
    assert "label" in result.err  # the columns that are there
    assert snapshot(tmp_path / "results") == with_finished_run


def test_yaml_syntax_error_in_user_config(trainer, tmp_path, with_finished_run):
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "Mine.yaml").write_text("id: Mine\nhidden_sizes: [32\n")
    result = trainer("model=Mine", *TINY)
    assert result.code == 2
    assert "Mine.yaml" in result.err and "line 2" in result.err
    assert snapshot(tmp_path / "results") == with_finished_run


def test_nan_loss_fails_the_run_with_the_iteration(trainer, tmp_path):
    result = trainer("optimizer=SGD", "learning_rate=1e12", "iterations=3", "progress_bar=false")
    assert result.code == 1
    assert "the training loss became nan in epoch 1" in result.out
    assert "Traceback" not in result.out + result.err
    (run,) = run_dirs(tmp_path)
    status = yaml.safe_load((run / "status.yaml").read_text())
    assert status["state"] == "failed"
    assert "the training loss became nan in epoch 1" in status["error"]
    assert "Traceback" in (run / "train.log").read_text()  # details stay in the run's log


def test_an_unknown_flag_is_refused_before_anything_trains(trainer, tmp_path):
    for flag in ("--bogus", "-cp", "-p"):
        args = (flag, "somewhere", "iterations=1") if flag != "--bogus" else (flag, "iterations=1")
        result = trainer(*args)
        assert result.code == 2, (flag, result.err)
        assert f"{flag}: not an option of training" in result.err
    assert "your config folder is --config-dir DIR" in trainer("-cp", "x", "iterations=1").err
    assert not (tmp_path / "results").exists()
