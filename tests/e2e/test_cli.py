"""The `trainer` command as a new user runs it: a real process, a real terminal-less run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import SUBPROCESS_TIMEOUT

# The full default run, the 300-step run, the 4-run sweep and the default regression train
# real default-sized jobs (about 60 s together on 2 cores): `make test-slow` runs them; the
# exit-code test stays in `make test`.

PRODUCT_FILES = ("config.yaml", "metrics.csv", "results.yaml", "outputs/dev.csv",
                 "outputs/test.csv", "states/best.pt", "states/last.pt", "train.log",
                 "status.yaml")  # fmt: skip


def trainer(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run(
        [sys.executable, "-m", "sweeptrainer", *args],
        cwd=cwd, capture_output=True, text=True, env=env, timeout=SUBPROCESS_TIMEOUT,
    )  # fmt: skip


@pytest.mark.slow
def test_default_run_in_an_empty_folder(tmp_path):
    result = trainer(tmp_path)
    assert result.returncode == 0, result.stderr
    run = tmp_path / "results/default/training/Digits_FFNN_Adam_0.001_32_epoch_20_None_1"
    assert f"run folder: {run.relative_to(tmp_path)}" in result.stdout
    assert "finished Digits_FFNN_Adam_0.001_32_epoch_20_None_1: test loss" in result.stdout
    for name in PRODUCT_FILES:
        assert (run / name).is_file(), name
    assert any((run / "tensorboard").iterdir())
    (board,) = (tmp_path / "results/default/tensorboard").iterdir()
    assert board.name == run.name and any(board.glob("events.out.tfevents.*"))
    results = yaml.safe_load((run / "results.yaml").read_text())
    assert results["test"]["accuracy"] >= 0.95
    assert len(pd.read_csv(run / "metrics.csv")) == 20


@pytest.mark.slow
def test_step_training_300_steps_every_50(tmp_path):
    result = trainer(tmp_path, "training_type=step", "iterations=300", "eval_frequency=50")
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "results/default/training").iterdir()
    assert pd.read_csv(run / "metrics.csv").iteration.tolist() == [50, 100, 150, 200, 250, 300]


@pytest.mark.slow
def test_sweep_of_four_and_rerun(tmp_path):
    args = ("-m", "learning_rate=0.01,0.001", "seed=1,2")
    first = trainer(tmp_path, *args)
    assert first.returncode == 0, first.stderr
    runs = list((tmp_path / "results/default/training").iterdir())
    assert len(runs) == 4
    assert all(yaml.safe_load((r / "status.yaml").read_text())["state"] == "finished" for r in runs)
    start = time.perf_counter()
    again = trainer(tmp_path, *args)
    elapsed = time.perf_counter() - start
    assert again.returncode == 0
    assert "sweep: 4 runs: 0 trained, 4 skipped" in again.stdout
    print(f"re-running the finished sweep took {elapsed:.1f} s")


@pytest.mark.slow
def test_regression_from_the_command_line(tmp_path):
    result = trainer(tmp_path, "dataset=Diabetes", "model=FFNN", "criterion=MSE")
    assert result.returncode == 0, result.stderr
    assert "ccc" in result.stdout and "mae" in result.stdout


def test_help_and_bad_input_exit_codes(tmp_path):
    help_ = trainer(tmp_path, "--help")
    assert help_.returncode == 0 and "trainer -m" in help_.stdout
    bad = trainer(tmp_path, "model=Nope")
    assert bad.returncode == 2
    assert "Could not find 'model/Nope'" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "results").exists()
