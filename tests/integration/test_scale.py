"""Scale-out configs: the SLURM launcher's job parameters, Optuna search over runs."""

from __future__ import annotations

import tempfile

import pytest
import yaml
from omegaconf import OmegaConf

from sweeptrainer.config.compose import ConfigSources, compose
from tests.conftest import run_dirs


def test_slurm_launcher_config_renders_the_expected_sbatch_script(tmp_path, monkeypatch):
    submitit = pytest.importorskip("submitit")
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    cfg = compose(ConfigSources(), ["hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                                    "hydra.launcher.gpus_per_node=2"])  # fmt: skip
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    assert launcher["_target_"].endswith("SlurmLauncher")
    # Build the executor the way the launcher does; a stand-in `srun` lets submitit start.
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{__import__('os').environ['PATH']}")
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    skip = {"_target_", "submitit_folder", "max_num_timeout", "name"}
    params = {k if k in base else f"slurm_{k}": v for k, v in launcher.items() if k not in skip}
    executor = submitit.AutoExecutor(cluster="slurm", folder=tempfile.mkdtemp(dir=tmp_path))
    executor.update_parameters(**params)
    script = executor._executor._make_submission_file_text("python -m sweeptrainer", "0")
    for line in ("--partition=gpu", "--gpus-per-node=2", "--time=240", "--cpus-per-task=8",
                 "--mem=32GB", "--signal=USR2@120"):  # fmt: skip
        assert f"#SBATCH {line}" in script
    assert executor._executor.parameters["array_parallelism"] == 16


@pytest.mark.slow
def test_optuna_search_beats_its_worst_trial_and_skips_finished_trials(trainer, tmp_path):
    """+experiment=optuna_search: the search sweeper's example (tpe, median pruner, a list
    choice); its best.yaml names the best run, and the same command trains nothing."""
    pytest.importorskip("optuna")
    args = ("-m", "+experiment=optuna_search", "dataset=Wine", "iterations=2",
            "hydra.sweeper.n_trials=5", "progress_bar=false")  # fmt: skip
    first = trainer(*args)
    assert first.code == 0, first.err
    runs = run_dirs(tmp_path, "optuna_search")
    assert len(runs) == 5
    values = [yaml.safe_load((r / "results.yaml").read_text())["dev"]["accuracy"] for r in runs]
    best = yaml.safe_load(
        (tmp_path / "results/optuna_search/search/lr_and_hidden/best.yaml").read_text()
    )
    assert best["best"]["value"] == max(values) and best["best"]["value"] > min(values)
    rates = [yaml.safe_load((r / "config.yaml").read_text())["learning_rate"] for r in runs]
    assert best["best"]["params"]["learning_rate"] in rates
    assert f"learning_rate={best['best']['params']['learning_rate']}" in first.out
    assert (tmp_path / "results/optuna_search/training" / best["best"]["run"]).is_dir()
    again = trainer(*args)
    assert again.code == 0
    assert "sweep: 5 runs: 0 trained, 5 skipped" in again.out
    assert len(run_dirs(tmp_path, "optuna_search")) == 5
