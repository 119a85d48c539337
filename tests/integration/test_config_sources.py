"""The user's config folder: adds options, shadows packaged ones, may replace config.yaml."""

import yaml

from sweeptrainer.config.compose import packaged_conf_dir
from tests.conftest import TINY, run_dirs


def _config(tmp_path):
    (run,) = run_dirs(tmp_path)
    return yaml.safe_load((run / "config.yaml").read_text())


def test_user_option_shadows_the_packaged_one_of_the_same_name(trainer, tmp_path):
    (tmp_path / "conf" / "model").mkdir(parents=True)
    text = (packaged_conf_dir() / "model" / "FFNN.yaml").read_text()
    (tmp_path / "conf" / "model" / "FFNN.yaml").write_text(
        text.replace("hidden_sizes: [256, 128]", "hidden_sizes: [16]")
    )
    result = trainer(*TINY, "dataset=Wine")
    assert result.code == 0, result.err
    assert _config(tmp_path)["model"]["hidden_sizes"] == [16]
    assert not list(tmp_path.glob("sweeptrainer-conf-*"))


def test_user_option_added_to_a_group(trainer, tmp_path):
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "Tiny.yaml").write_text(
        "id: Tiny\n_target_: sweeptrainer.components.models.FFNN\nhidden_sizes: [8]\n"
    )
    assert trainer(*TINY, "dataset=Wine", "model=Tiny").code == 0
    assert run_dirs(tmp_path)[0].name.startswith("Wine_Tiny_")


def test_user_config_yaml_replaces_the_packaged_one(trainer, tmp_path):
    (tmp_path / "conf").mkdir()
    text = (packaged_conf_dir() / "config.yaml").read_text()
    (tmp_path / "conf" / "config.yaml").write_text(
        text.replace("  - dataset: Digits", "  - dataset: Wine").replace(
            "experiment_id: default", "experiment_id: mine"
        )
    )
    assert trainer(*TINY).code == 0
    (run,) = run_dirs(tmp_path, "mine")
    assert run.name.startswith("Wine_FFNN_")


def test_config_dir_option(trainer, tmp_path):
    (tmp_path / "elsewhere" / "model").mkdir(parents=True)
    (tmp_path / "elsewhere" / "model" / "Tiny.yaml").write_text(
        "id: Tiny\n_target_: sweeptrainer.components.models.FFNN\nhidden_sizes: [8]\n"
    )
    assert trainer("--config-dir", "elsewhere", *TINY, "dataset=Wine", "model=Tiny").code == 0
    missing = trainer("--config-dir", "nowhere", *TINY)
    assert missing.code == 2 and "--config-dir: folder 'nowhere' does not exist" in missing.err
