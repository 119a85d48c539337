"""`trainer -m`: every combination into one experiment; re-running skips finished runs."""

import os

import pytest
import yaml

from sweeptrainer.config.compose import packaged_conf_dir
from tests.conftest import run_dirs, snapshot


def test_sweep_then_rerun_skips(trainer, tmp_path):
    # two runs (make test-slow sweeps four in a real process: tests/e2e/test_cli.py)
    args = ("-m", "learning_rate=0.01,0.001", "iterations=1", "progress_bar=false")
    first = trainer(*args)
    assert first.code == 0, first.err
    names = [p.name for p in run_dirs(tmp_path)]
    assert names == [
        "Digits_FFNN_Adam_0.001_32_epoch_1_None_1",
        "Digits_FFNN_Adam_0.01_32_epoch_1_None_1",
    ]
    assert "sweep: 2 runs: 2 trained, 0 skipped" in first.out
    before = snapshot(tmp_path / "results" / "default" / "training")

    again = trainer(*args)
    assert again.code == 0
    assert "sweep: 2 runs: 0 trained, 2 skipped" in again.out
    assert again.out.count("skip Digits_FFNN_Adam") == 2
    assert snapshot(tmp_path / "results" / "default" / "training") == before


def test_a_different_config_never_reuses_a_folder(trainer, tmp_path):
    assert trainer("iterations=1", "progress_bar=false").code == 0
    before = snapshot(tmp_path / "results")
    # The user's own config.yaml changes the model without an override: same run name.
    (tmp_path / "conf").mkdir()
    packaged = (packaged_conf_dir() / "config.yaml").read_text()
    (tmp_path / "conf" / "config.yaml").write_text(packaged + "model:\n  dropout: 0.3\n")
    result = trainer("iterations=1", "progress_bar=false")
    assert result.code == 2
    assert "holds a run of a different config" in result.err
    assert "use another experiment_id (experiment_id=NAME)" in result.err
    assert "rm-failed" not in result.err  # it finished: nothing to remove
    assert "or rerun_on_change=rerun to train this config anew" in result.err
    assert snapshot(tmp_path / "results") == before
    # the way out the message names: the new config trains in that folder
    rerun = trainer("iterations=1", "progress_bar=false", "rerun_on_change=rerun")
    assert rerun.code == 0, rerun.err
    assert "its config changed (hash" in rerun.out
    (run,) = run_dirs(tmp_path)
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["dropout"] == 0.3
    assert trainer("iterations=1", "progress_bar=false").code == 0  # now the same config


def test_a_failed_run_of_another_config_names_rm_failed(trainer, tmp_path):
    """The run failed, the user fixed the config: the message names the way out."""
    bug = ("+callbacks.bug._target_=tests.helpers.FailingCallback", "+callbacks.bug.at=1",
           "iterations=2", "progress_bar=false")  # fmt: skip
    assert trainer(*bug).code == 1
    (tmp_path / "conf").mkdir()
    packaged = (packaged_conf_dir() / "config.yaml").read_text()
    (tmp_path / "conf" / "config.yaml").write_text(packaged + "model:\n  dropout: 0.3\n")
    result = trainer(*bug)
    assert result.code == 2
    assert "`trainer rm-failed results/default` removes it (it failed)" in result.err


@pytest.fixture
def compositions(monkeypatch) -> list:
    """Every configuration Hydra composes in this process, as it composes it."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    composed = []
    original = ConfigLoaderImpl.load_configuration

    def counted(self, *args, **kwargs):
        composed.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counted)
    return composed


def test_a_basic_sweep_composes_once_and_runs_here(trainer, tmp_path, compositions):
    """The runs of a basic sweep are composed once (not again by Hydra's launch): a value
    sweep costs two Hydra compositions however many runs it has, and the sweep folder is
    written as Hydra's launch writes it."""
    import yaml

    result = trainer("-m", "seed=1,2", "iterations=1", "progress_bar=false")
    assert result.code == 0, result.err
    assert len(compositions) == 2  # the sweep's base config, and the runs' one composition
    sweeps = list((tmp_path / "results" / "default" / "sweeps").iterdir())
    assert len(sweeps) == 1
    saved = yaml.safe_load((sweeps[0] / "multirun.yaml").read_text())
    assert tmp_path / saved["hydra"]["sweep"]["dir"] == sweeps[0]
    for run in run_dirs(tmp_path):
        command = yaml.safe_load((run / "snapshot" / "command.yaml").read_text())
        assert command["sweep_dir"] == str(sweeps[0].absolute())


PROBE = '''\
import os

from hydra.experimental.callback import Callback


class Probe(Callback):
    """Writes each call with what the job saw: its seed and the variable env_set sets."""

    def _note(self, line):
        with open(os.environ["PROBE_OUT"], "a") as f:
            f.write(line + "\\n")

    def on_multirun_start(self, config, **kwargs):
        self._note("multirun start")

    def on_job_start(self, config, **kwargs):
        self._note(f"job {config.seed} {os.environ.get('GREETING')}")

    def on_multirun_end(self, config, **kwargs):
        self._note("multirun end")
'''


def test_hydra_job_machinery_runs_each_planned_job(trainer, tmp_path, monkeypatch, compositions):
    """A sweep that asks for Hydra's job machinery (its callbacks, env_set, .hydra/ files)
    gets it for each run, from the planned configs: still two compositions."""
    (tmp_path / "probe.py").write_text(PROBE)
    monkeypatch.setenv("PROBE_OUT", str(tmp_path / "probe.txt"))
    result = trainer(
        "-m", "seed=1,2", "iterations=1", "progress_bar=false",
        "+hydra.callbacks.probe._target_=probe.Probe", "+hydra.job.env_set.GREETING=hello",
        "hydra.output_subdir=.hydra",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "sweep: 2 runs: 2 trained" in result.out
    calls = (tmp_path / "probe.txt").read_text().splitlines()
    assert calls == ["multirun start", "job 1 hello", "job 2 hello", "multirun end"]
    (sweep,) = (tmp_path / "results" / "default" / "sweeps").iterdir()
    assert (sweep / ".hydra" / "config.yaml").is_file()  # Hydra's own job files
    assert len(compositions) == 2
    assert "GREETING" not in os.environ  # env_set is the job's alone


def test_a_failing_hydra_callback_is_a_warning_and_the_sweep_goes_on(trainer, tmp_path):
    (tmp_path / "failing.py").write_text(
        "from hydra.experimental.callback import Callback\n\n\n"
        "class Failing(Callback):\n"
        "    def on_job_end(self, config, **kwargs):\n"
        "        raise RuntimeError('the callback broke')\n"
    )
    with pytest.warns(UserWarning, match="Failing.on_job_end failed: RuntimeError"):
        result = trainer(
            "-m", "seed=1,2", "iterations=1", "progress_bar=false",
            "+hydra.callbacks.failing._target_=failing.Failing", "hydra.output_subdir=null",
        )  # fmt: skip
    assert result.code == 0, result.err
    assert "sweep: 2 runs: 2 trained" in result.out


def test_a_single_run_of_a_config_without_our_hydra_block_gets_no_hydra_files(trainer, tmp_path):
    """A project's config.yaml without the packaged hydra: block leaves Hydra's defaults
    (.hydra/ under outputs/DATE/TIME, Hydra's logging): a plain single run uses none of
    them, as before."""
    packaged = (packaged_conf_dir() / "config.yaml").read_text()
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(packaged.split("\nhydra:")[0] + "\n")
    result = trainer("iterations=1", "progress_bar=false")
    assert result.code == 0, result.err
    assert not (tmp_path / "outputs").exists()
    assert result.err.count("finished Digits") + result.out.count("finished Digits") == 1


def test_a_joblib_sweep_ships_the_planned_configs_to_its_workers(trainer, tmp_path):
    """joblib's workers unpickle the plan's config loader with every job (its compositions
    as bytes): the runs train there from the planned configs (the slow launcher tests
    compare its runs with the basic launcher's)."""
    result = trainer(
        "-m", "seed=1,2", "iterations=1", "progress_bar=false", "dataset=Wine",
        "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "sweep: 2 runs: 2 trained" in result.out
    assert len(run_dirs(tmp_path)) == 2


def test_plus_and_plain_overrides_name_one_run_and_a_run_named_before_is_found(trainer, tmp_path):
    """Issue 33: ++key=v and key=v of one config are one run (the second command skips it);
    a folder named as before (a + override sorted first) is still found and skipped."""
    from sweeptrainer.config.naming import run_name

    first = trainer("++model.dropout=0.3", "gradient_clip_norm=1.0", "iterations=1",
                    "progress_bar=false")  # fmt: skip
    assert first.code == 0, first.err
    again = trainer("model.dropout=0.3", "gradient_clip_norm=1.0", "iterations=1",
                    "progress_bar=false")  # fmt: skip
    assert again.code == 0 and "skip " in again.out and " train " not in again.out
    (run,) = (tmp_path / "results/default/training").iterdir()
    # the same run, named as runs were before: its folder is found, not trained again
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(yaml.safe_load((run / "config.yaml").read_text()))
    overrides = ["++model.dropout=0.3", "gradient_clip_norm=1.0", "iterations=1",
                 "progress_bar=false"]  # fmt: skip
    legacy = run.parent / run_name(cfg, overrides, legacy=True)
    assert legacy.name != run.name
    run.rename(legacy)
    old = trainer(*overrides)
    assert old.code == 0 and "skip " in old.out and " train " not in old.out
    assert [p.name for p in run.parent.iterdir()] == [legacy.name]
