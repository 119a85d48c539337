"""The Python API: compose, train and load_run in one process, as a notebook uses them."""

from __future__ import annotations

import signal
import sys

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from sweeptrainer import compose, load_run, train
from sweeptrainer.components.metrics import METRICS
from sweeptrainer.errors import ConfigError, Interrupted, TrainingError

QUICK = ["iterations=2", "progress_bar=false", "~loggers.tensorboard"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project folder as the current folder; sys.path restored after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return tmp_path


def _hydra_initialized() -> bool:
    from hydra.core.global_hydra import GlobalHydra

    return GlobalHydra.instance().is_initialized()


def test_compose_twice_and_bad_overrides(project):
    a = compose(["learning_rate=0.01", "model=CNN"])
    b = compose(["seed=3"])
    assert (a.learning_rate, a.model.id, a.seed) == (0.01, "CNN", 1)
    assert (b.learning_rate, b.model.id, b.seed) == (0.001, "FFNN", 3)
    assert "hydra" not in a and not _hydra_initialized()
    with pytest.raises(ConfigError, match="lerning_rate"):
        compose(["lerning_rate=0.1"])
    with pytest.raises(ConfigError, match="iterations"):
        compose(["iterations=0"])
    with pytest.raises(ConfigError, match="config_dir"):
        compose([], config_dir="nowhere")
    assert not _hydra_initialized()


def test_train_twice_then_load_run_reproduces_the_test_accuracy(project):
    handler = signal.getsignal(signal.SIGINT)
    first = train([*QUICK, "seed=1"])
    second = train(compose([*QUICK, "seed=2"]), results_dir="elsewhere")
    assert signal.getsignal(signal.SIGINT) is handler  # restored after each call
    assert first.status == second.status == "finished"
    assert first.run_dir == project / "results/default/training" / first.name
    assert second.run_dir == project / "elsewhere/default/training" / second.name
    assert first.name.endswith("_epoch_2_None_1") and second.name.endswith("_epoch_2_None_2")
    assert first.results["test"]["accuracy"] != second.results["test"]["accuracy"]
    assert (second.run_dir / "snapshot" / "command.yaml").is_file()
    assert train([*QUICK, "seed=1"]).status == "skipped"  # finished before, as with the CLI

    loaded = load_run(first.run_dir)
    assert loaded.status == "finished" and loaded.results == first.results
    config = yaml.safe_load((first.run_dir / "config.yaml").read_text())
    assert OmegaConf.to_container(loaded.config) == config
    assert loaded.metrics.iteration.tolist() == [1, 2]  # one row per evaluation
    assert not loaded.model.training and next(loaded.model.parameters()).device.type == "cpu"
    features, targets = loaded.dataset.test.tensors
    with torch.no_grad():
        predictions = loaded.model(features).argmax(-1)
    accuracy = METRICS["accuracy"](targets.numpy(), predictions.numpy())
    assert accuracy == first.results["test"]["accuracy"]


def test_a_changed_config_gets_its_own_run_folder(project):
    cfg = compose(QUICK)
    cfg.model.dropout = 0.25  # not part of the readable name
    result = train(cfg)
    assert result.name.endswith("_model.dropout-0.25")
    assert load_run(result.run_dir).config.model.dropout == 0.25


def test_failures_and_folders_that_are_no_runs(project):
    failing = [
        *QUICK,
        "+callbacks.bug._target_=tests.helpers.FailingCallback",
        "+callbacks.bug.at=1",
    ]
    with pytest.raises(TrainingError, match="callback bug at iteration 1"):
        train(failing)
    retried = train([*failing, "max_retries=2"], check=False)
    assert retried.status == "failed" and "callback bug" in retried.error
    with pytest.raises(ConfigError, match="not a run folder"):
        load_run(project)
    with pytest.raises(ConfigError, match=r"states/best\.pt"):
        load_run(retried.run_dir)
    assert load_run(retried.run_dir, with_model=False).status == "failed"
    with pytest.raises(ConfigError, match="unknown config key"):
        train(["nonsense=1"])


def test_ctrl_c_saves_the_state_and_the_next_call_resumes(project):
    handler = signal.getsignal(signal.SIGINT)
    overrides = [*QUICK, "+callbacks.stop._target_=tests.helpers.SignalSelf"]
    with pytest.raises(Interrupted, match="SIGINT"):
        train(overrides)
    assert signal.getsignal(signal.SIGINT) is handler
    resumed = train(overrides)  # from states/last.pt, after the signalled step
    assert resumed.status == "finished"
    assert (resumed.run_dir / "snapshot" / "resumes" / "1" / "command.yaml").is_file()
