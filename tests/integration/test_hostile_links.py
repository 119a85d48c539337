"""A results folder is untrusted input (copied, shared, damaged): what a run folder's config
may name is an explicit allowlist of components, nothing is read or written through a
link, nothing is appended to a file with other names, and a state of another config is not
used. Each case plants a victim file outside the folder: it stays as it was, and the
command says, in one line, what it refused."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY, run_dirs, snapshot

ROOT = Path(__file__).resolve().parents[2]
PACKAGED = [ROOT / "conf", ROOT / "src" / "sweeptrainer" / "templates"]
NEVER_FROM_A_RUN_FOLDER = ("callbacks", "loggers")  # built by training only, never inference


def _targets(node, where: tuple[str, ...] = ()):
    """(the dotted place, the target) of every sweeptrainer ``_target_`` in a YAML node."""
    if isinstance(node, dict):
        target = node.get("_target_")
        if isinstance(target, str) and target.startswith("sweeptrainer."):
            yield where, target
        for key, child in node.items():
            yield from _targets(child, (*where, str(key)))
    elif isinstance(node, list):
        for child in node:
            yield from _targets(child, where)


def packaged_targets() -> dict[str, str]:
    """Every ``_target_: sweeptrainer.*`` of the packaged configs and templates, comments
    included (``collate: null  # {_target_: sweeptrainer.data.collate.Pad}``) -> the config
    group it is built in (the folder of its option, or its key in config.yaml)."""
    found: dict[str, str] = {}
    for root in PACKAGED:
        for file in sorted(root.rglob("*.yaml")):
            parts = file.relative_to(root).parts
            group = parts[parts.index("conf") + 1] if "conf" in parts[:-1] else parts[0]
            text = file.read_text()
            for where, target in _targets(yaml.safe_load(text)):
                found[target] = where[0] if group.endswith(".yaml") and where else group
            for target in re.findall(r"_target_: *(sweeptrainer\.[\w.]+)", text):
                found.setdefault(target, group)
    return found


def _timed(trainer, *args):
    start = time.monotonic()
    result = trainer(*args)
    assert time.monotonic() - start < 10, (args, "took too long")
    assert "Traceback" not in result.err + result.out, (args, result.err)
    return result


def test_only_marked_components_of_sweeptrainer_build_from_a_run_folder(trainer, tmp_path):
    """Item 16: every component the packaged configs name is accepted; a class of
    sweeptrainer's that is no component (a log file handler that truncates its file, an
    event file that creates one) is refused by `trainer inference` and `load_run` before it
    is built, with the victim untouched."""
    from omegaconf import OmegaConf

    from sweeptrainer import load_run
    from sweeptrainer.errors import ConfigError
    from sweeptrainer.inference import check_run_config

    targets = packaged_targets()
    assert {"model", "dataset", "augmentation", "criterion", "loggers"} <= set(targets.values())
    assert targets["sweeptrainer.data.collate.Pad"] == "dataset"  # named in a comment
    for target, group in targets.items():
        key = "model" if group == "model" else "dataset"
        config = OmegaConf.create({key: {"_target_": target}})
        if group in NEVER_FROM_A_RUN_FOLDER:
            with pytest.raises(ConfigError, match="not one of its components"):
                check_run_config(config, tmp_path / "run" / "config.yaml")
        else:
            check_run_config(config, tmp_path / "run" / "config.yaml")

    assert trainer(*TINY).code == 0
    (run,) = run_dirs(tmp_path)
    original = (run / "config.yaml").read_text()
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("not yours")
    before = snapshot(outside)
    handler, events = "sweeptrainer.logs._QuietFileHandler", "sweeptrainer.io.tfevents.EventFile"
    logger = "sweeptrainer.components.loggers.TensorBoardLogger"
    cases = [
        ("dataset", "transform", [{"_target_": handler, "path": str(victim)}], handler),
        ("dataset", "transform", [{"_target_": events, "log_dir": str(outside)}], events),
        ("dataset", "loader", {"_target_": logger, "run_dir": str(outside / "run")}, logger),
        ("model", None, {"id": "FFNN", "_target_": handler, "path": str(victim)}, handler),
    ]
    for group, key, value, target in cases:
        config = yaml.safe_load(original)
        if key is None:
            config[group] = value
        else:
            config[group][key] = value
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        result = _timed(trainer, "inference", str(run), "Digits:test", str(tmp_path / "out.csv"))
        assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
        assert f"{target!r} is a class of sweeptrainer's that is not one of its " in result.err
        with pytest.raises(ConfigError, match="not one of its components"):
            load_run(run)
        assert snapshot(outside) == before, target
        assert not (tmp_path / "out.csv").exists()
    assert victim.read_text() == "not yours"


def test_postprocess_writes_nothing_through_a_link(trainer, tmp_path):
    """Item 20: a ``postprocessing/`` that is a link out of the experiment is refused in one
    line (its runs.csv would be replaced, its figures removed); files of a real one that are
    links or hard links are replaced, never written into."""
    assert trainer(*TINY).code == 0
    experiment = tmp_path / "results" / "default"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "runs.csv").write_text("precious,table\n")
    (outside / "figure.png").write_bytes(b"precious figure")
    (experiment / "postprocessing").symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)

    result = _timed(trainer, "postprocess", str(experiment), "--no-plots")
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        f"trainer: error: {experiment / 'postprocessing'} is a symbolic link (to "
        f"{str(outside)!r}): postprocess writes nothing through it; remove the link, and "
        "postprocessing/ is written anew"
    ]
    assert snapshot(outside) == before

    (experiment / "postprocessing").unlink()
    (experiment / "postprocessing").mkdir()
    os.link(outside / "runs.csv", experiment / "postprocessing" / "runs.csv")
    (experiment / "postprocessing" / "report.html").symlink_to(outside / "figure.png")
    result = _timed(trainer, "postprocess", str(experiment), "--no-plots")
    assert result.code == 0, result.err
    for name in ("runs.csv", "report.html"):
        written = experiment / "postprocessing" / name
        assert not written.is_symlink() and written.stat().st_nlink == 1
    assert "precious" not in (experiment / "postprocessing" / "runs.csv").read_text()
    assert snapshot(outside) == before


def test_inference_reads_through_no_link_and_takes_no_state_of_another_config(trainer, tmp_path):
    """Item 20: as a resume does, inference refuses a run folder whose best.pt or
    config.yaml is a symbolic link (here to a copy that would fit), and a best.pt copied in
    from another run (another config hash), exit 2; `load_run` refuses them too."""
    from sweeptrainer import load_run
    from sweeptrainer.errors import ConfigError

    assert trainer(*TINY).code == 0
    assert trainer(*TINY, "seed=2").code == 0
    run, other = run_dirs(tmp_path)
    out = tmp_path / "out.csv"
    assert _timed(trainer, "inference", str(run), "Digits:test", str(out)).code == 0
    out.unlink()
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("config.yaml", "states/best.pt"):
        shutil.copy(run / name, outside / Path(name).name)
    before, others = snapshot(outside), snapshot(other)
    best = (run / "states" / "best.pt").read_bytes()

    for name in ("config.yaml", "states/best.pt"):
        kept = (run / name).read_bytes()
        (run / name).unlink()
        (run / name).symlink_to(outside / Path(name).name)
        result = _timed(trainer, "inference", str(run), "Digits:test", str(out))
        assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
        assert f"{str(run / name)!r} is a symbolic link (to " in result.err
        assert "inference reads nothing through it" in result.err
        with pytest.raises(ConfigError, match="is a symbolic link"):
            load_run(run)
        (run / name).unlink()
        (run / name).write_bytes(kept)
        assert not out.exists() and snapshot(outside) == before

    shutil.copy(other / "states" / "best.pt", run / "states" / "best.pt")
    result = _timed(trainer, "inference", str(run), "Digits:test", str(out))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert "states/best.pt' is the state of another config (hash " in result.err
    assert "copied in from another run?" in result.err
    with pytest.raises(ConfigError, match="the state of another config"):
        load_run(run)
    assert not out.exists() and snapshot(other) == others
    (run / "states" / "best.pt").write_bytes(best)
    assert _timed(trainer, "inference", str(run), "Digits:test", str(out)).code == 0


def test_a_resume_appends_to_no_train_log_with_other_names(trainer, tmp_path):
    """Item 20: a run's train.log that is a hard link to a file outside (a planted link, or
    a `cp -l` backup) is not appended to when the run resumes: it gets a file of its own
    (a copy of its lines), with a warning; the other name stays as it was."""
    assert trainer(*TINY).code == 0
    (run,) = run_dirs(tmp_path)
    status = yaml.safe_load((run / "status.yaml").read_text()) | {"state": "interrupted"}
    (run / "status.yaml").write_text(yaml.safe_dump(status))
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.log"
    victim.write_text("precious line\n")
    (run / "train.log").unlink()
    os.link(victim, run / "train.log")
    before = snapshot(outside)

    resumed = trainer(*TINY)
    assert resumed.code == 0, resumed.err
    assert "Traceback" not in resumed.err + resumed.out
    said = [line for line in resumed.out.splitlines() if "hard link" in line]
    assert said == [
        f"warning: {run / 'train.log'} has 2 names (a hard link): not appended to; its lines "
        "were copied into a file of the run's own, the other names keep the old file"
    ], resumed.out
    assert snapshot(outside) == before
    log = run / "train.log"
    assert log.stat().st_nlink == 1 and not log.is_symlink()
    text = log.read_text()
    assert text.startswith("precious line\n") and "has 2 names (a hard link)" in text
    assert "resume" in text
