"""`trainer -m`: every combination into one experiment; re-running skips finished runs."""

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
    assert snapshot(tmp_path / "results") == before


def test_a_basic_sweep_composes_once_and_runs_here(trainer, tmp_path, monkeypatch):
    """The runs of a basic sweep are composed once (not again by Hydra's launch): a value
    sweep costs two Hydra compositions however many runs it has, and the sweep folder is
    written as Hydra's launch writes it."""
    import yaml
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    composed = []
    original = ConfigLoaderImpl.load_configuration

    def counted(self, *args, **kwargs):
        composed.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counted)
    result = trainer("-m", "seed=1,2", "iterations=1", "progress_bar=false")
    assert result.code == 0, result.err
    assert len(composed) == 2  # the sweep's base config, and the runs' one composition
    sweeps = list((tmp_path / "results" / "default" / "sweeps").iterdir())
    assert len(sweeps) == 1
    saved = yaml.safe_load((sweeps[0] / "multirun.yaml").read_text())
    assert tmp_path / saved["hydra"]["sweep"]["dir"] == sweeps[0]
    for run in run_dirs(tmp_path):
        command = yaml.safe_load((run / "snapshot" / "command.yaml").read_text())
        assert command["sweep_dir"] == str(sweeps[0].absolute())
