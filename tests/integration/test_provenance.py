"""Run provenance: the snapshot/ folder of every run, and config sources frozen per command."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from sweeptrainer import __version__
from sweeptrainer.config.compose import packaged_conf_dir
from tests.conftest import run_dirs

QUICK = ("iterations=1", "progress_bar=false", "~loggers.tensorboard")
EDIT = (
    "+callbacks.edit._target_=tests.helpers.EditConfigOnce",
    "+callbacks.edit.old='batch_size: 32'",
    "+callbacks.edit.new='batch_size: 16'",
)


def _yaml(path):
    return yaml.safe_load(path.read_text())


def test_editing_conf_during_a_sweep_changes_no_later_run(trainer, tmp_path):
    (tmp_path / "conf").mkdir()
    shutil.copyfile(packaged_conf_dir() / "config.yaml", tmp_path / "conf" / "config.yaml")
    result = trainer("-m", "seed=1,2,3", *QUICK, *EDIT)
    assert result.code == 0, result.err
    assert "batch_size: 16" in (tmp_path / "conf" / "config.yaml").read_text()  # edited in run 1
    runs = run_dirs(tmp_path)
    assert len(runs) == 3
    for run in runs:  # runs 2 and 3 started after the edit, from the frozen copy
        assert "_32_epoch_1_" in run.name
        assert _yaml(run / "config.yaml")["batch_size"] == 32
        assert "batch_size: 32" in (run / "snapshot" / "conf" / "config.yaml").read_text()
    (sweep,) = (tmp_path / "results" / "default" / "sweeps").iterdir()
    assert "batch_size: 32" in (sweep / "conf" / "config.yaml").read_text()
    command = _yaml(runs[1] / "snapshot" / "command.yaml")
    assert command["frozen_config_dir"] == str((sweep / "conf").resolve())
    assert command["sweep_dir"] == str(sweep.resolve())
    assert command["config_dir"] == str(tmp_path / "conf")
    assert not (runs[0] / "snapshot" / "git.yaml").exists()  # tmp_path is no git repository

    after = trainer("seed=1", *QUICK)  # a new command composes the edited file
    assert after.code == 0, after.err
    assert any("_16_epoch_1_" in run.name for run in run_dirs(tmp_path))


def _git(cwd, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd, check=True, capture_output=True,
    )  # fmt: skip


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_snapshot_records_sources_command_versions_packages_hardware_and_git(trainer, tmp_path):
    (tmp_path / "conf" / "model").mkdir(parents=True)  # an option, no config.yaml of its own
    (tmp_path / "conf" / "model" / "Tiny.yaml").write_text(
        "id: Tiny\n_target_: sweeptrainer.components.models.FFNN\nhidden_sizes: [8]\n"
    )
    (tmp_path / "notes.txt").write_text("first\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "notes.txt", "conf")
    _git(tmp_path, "commit", "-q", "-m", "first")
    (tmp_path / "notes.txt").write_text("first\nchanged\n")
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()

    assert trainer("model=Tiny", "seed=7", *QUICK).code == 0
    (run,) = run_dirs(tmp_path)
    snap = run / "snapshot"
    assert (snap / "conf" / "model" / "Tiny.yaml").is_file()
    assert (snap / "conf" / "config.yaml").read_text() == (
        packaged_conf_dir() / "config.yaml"
    ).read_text()  # the packaged main config, which the command used
    assert (snap / "packaged" / "dataset" / "Digits.yaml").is_file()
    assert (snap / "packaged" / "optimizer" / "Adam.yaml").is_file()
    assert not (snap / "packaged" / "model").exists()  # the user's Tiny, in conf/

    command = _yaml(snap / "command.yaml")
    assert command["command"].startswith("trainer model=Tiny seed=7 iterations=1")
    assert command["overrides"] == ["model=Tiny", "seed=7", *QUICK]
    assert command["cwd"] == str(tmp_path) and command["action"] == "new"
    assert command["sweep_dir"] is None and command["choices"]["model"] == "Tiny"
    assert command["config_dir"] == str(tmp_path / "conf")
    assert command["frozen_config_dir"] is None  # a single run's copy is a temp folder
    assert "trainer model=Tiny seed=7" in (snap / "command.txt").read_text()
    versions = _yaml(snap / "versions.yaml")
    assert versions["sweeptrainer"] == __version__
    assert {"python", "torch", "hydra-core", "omegaconf", "numpy", "platform"} <= set(versions)
    requirements = (snap / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("torch==") for line in requirements)
    assert requirements == sorted(requirements, key=str.lower)
    hardware = _yaml(snap / "hardware.yaml")
    assert hardware["cpu_count"] >= 1 and hardware["memory_gib"] > 0
    assert isinstance(hardware["gpus"], list) and hardware["cpu"]
    git = _yaml(snap / "git.yaml")
    assert git["commit"] == commit and git["dirty"] is True
    assert git["root"] == str(tmp_path) and git["untracked"] == []  # before results/ existed
    diff = (snap / "git.diff").read_text()
    assert "notes.txt" in diff and "+changed" in diff

    # resumed: the first snapshot stays, the new start gets a note with what changed
    status = _yaml(run / "status.yaml") | {"state": "interrupted"}
    (run / "status.yaml").write_text(yaml.safe_dump(status))
    (tmp_path / "notes.txt").write_text("first\nchanged again\n")
    assert trainer("model=Tiny", "seed=7", *QUICK).code == 0
    assert _yaml(snap / "command.yaml")["action"] == "new"
    note = snap / "resumes" / "1"
    assert _yaml(note / "command.yaml")["action"] == "resume (interrupted)"
    assert "+changed again" in (note / "git.diff").read_text()
    assert _yaml(note / "git.yaml")["untracked"] == ["results/"]
    assert not (note / "requirements.txt").exists() and not (note / "conf").exists()


def test_installed_packages_are_the_ones_importlib_metadata_parses():
    """The packages list reads only the head of each metadata file: the same names and
    versions as importlib.metadata's full parse of every installed distribution."""
    import importlib.metadata

    from sweeptrainer.snapshot import installed_packages

    parsed: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            parsed.setdefault(name.lower().replace("_", "-"), f"{name}=={dist.version}")
    assert installed_packages() == tuple(sorted(parsed.values(), key=str.lower))
    assert any(p.startswith("torch==") for p in installed_packages())
