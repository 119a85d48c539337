"""An experiment folder is untrusted input: every verb that reads one, run over a hostile
folder, executes nothing from it, touches nothing outside it and ends with a clear error or
a clean result."""

from __future__ import annotations

import pickle

import pytest
import torch

from tests.conftest import run_dirs, snapshot

TINY = ("iterations=1", "progress_bar=false")


class _Marker:
    """Unpickling this creates the marker file: code run from a state file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def hostile(trainer, tmp_path):
    """A finished run, then a second run folder made hostile: a pickled state that would
    create a marker file, YAML files with python tags, and a symbolic link out of the
    experiment (to a file and to a folder)."""
    assert trainer(*TINY).code == 0
    assert trainer(*TINY, "seed=2").code == 0
    good, bad = run_dirs(tmp_path)
    marker = tmp_path / "MARKER"
    torch.save({"x": _Marker(str(marker))}, bad / "states" / "last.pt", pickle_module=pickle)
    (bad / "states" / "best.pt").write_bytes((bad / "states" / "last.pt").read_bytes())
    tag = f"!!python/object/apply:builtins.open ['{marker}', 'w']\n"
    (bad / "results.yaml").write_text(f"test: {tag}")
    (bad / "config.yaml").write_text(f"model: {tag}")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.pt").write_text("not yours")
    (bad / "states" / "epoch_1.pt").symlink_to(outside / "precious.pt")
    (good.parent / "linked-run").symlink_to(outside, target_is_directory=True)
    return good, bad, marker, outside


def test_no_verb_executes_or_escapes(trainer, tmp_path, hostile):
    good, bad, marker, outside = hostile
    experiment = str(good.parent.parent)
    before = snapshot(outside)
    commands = [
        ("status", experiment),
        ("postprocess", experiment, "--no-plots"),
        ("rm-failed", experiment, "--yes"),
        ("rm-states", experiment, "--yes"),
        ("cancel", experiment),
        ("inference", str(bad), "Digits:test", "out.csv"),
        (*TINY, "seed=2"),  # resuming the hostile run
        ("validate", *TINY, "seed=2"),
    ]
    for args in commands:
        result = trainer(*args)
        assert "Traceback" not in result.err, (args, result.err)
        assert result.code in (0, 1, 2), (args, result.code)
        assert not marker.exists(), args
        assert snapshot(outside) == before, args
    assert (outside / "precious.pt").read_text() == "not yours"


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(120)
"""


def test_cancel_signals_only_the_process_that_holds_the_runs_lock(trainer, tmp_path):
    """status.yaml names a pid; only a process proven to hold the run's lock is signalled."""
    import socket
    import subprocess
    import sys

    import yaml

    assert trainer(*TINY).code == 0
    (run,) = run_dirs(tmp_path)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run / ".lock")],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        status = yaml.safe_load((run / "status.yaml").read_text())
        for pid, signalled in ((bystander.pid, False), (holder.pid, True)):
            status |= {"state": "running", "pid": pid, "host": socket.gethostname()}
            (run / "status.yaml").write_text(yaml.safe_dump(status))
            result = trainer("cancel", str(run.parent.parent))
            if signalled:
                assert result.code == 0 and "to stop (SIGTERM)" in result.out, result.out
                assert holder.wait(timeout=30) == -15  # SIGTERM
            else:
                assert result.code == 1 and "does not hold the run's lock" in result.out
                assert bystander.poll() is None  # untouched
    finally:
        for process in (bystander, holder):
            process.kill()
            process.wait()
        holder.stdout.close()


def test_cancel_of_a_run_that_ends_meanwhile_is_not_an_error(trainer, tmp_path, monkeypatch):
    """A run seen running whose lock is free at the second look because it just finished
    (its status says so by then) is not a failure of ``trainer cancel``."""
    import socket

    import yaml

    from sweeptrainer.io.lock import RunLock

    assert trainer(*TINY).code == 0
    (run,) = run_dirs(tmp_path)
    finished = (run / "status.yaml").read_text()
    running = yaml.safe_load(finished) | {
        "state": "running",
        "pid": 424242,
        "host": socket.gethostname(),
    }
    (run / "status.yaml").write_text(yaml.safe_dump(running))

    def ends_now(self, pid):
        (run / "status.yaml").write_text(finished)  # the run finished and let its lock go
        return False

    monkeypatch.setattr(RunLock, "held_elsewhere", lambda self: True)  # at the first look
    monkeypatch.setattr(RunLock, "held_by", ends_now)
    result = trainer("cancel", str(run.parent.parent))
    assert result.code == 0 and "does not hold" not in result.out, result.out
    (run / "status.yaml").write_text(yaml.safe_dump(running))
    result = trainer("cancel", str(run.parent.parent), run.name)  # named: said why
    assert f"{run.name}: not running (finished)" in result.out, result.out


@pytest.mark.parametrize(
    ("node", "value", "said"),
    [
        ("model", {"id": "FFNN", "_target_": "os.system", "command": "touch {marker}"},
         "model._target_: 'os.system' is part of Python itself"),
        ("model", {"id": "FFNN", "_target_": "tests.helpers.touch", "path": "{marker}"},
         "model._target_: 'tests.helpers.touch' is not a Module class"),
        ("model", {"id": "FFNN", "_target_": "sweeptrainer.components.datasets.Wine"},
         "is not a Module class"),
        ("dataset.loader", {"_target_": "subprocess.Popen", "args": ["touch", "{marker}"]},
         "dataset.loader._target_: 'subprocess.Popen' is part of Python itself"),
        ("dataset.steps", [{"_target_": "tests.helpers.touch", "path": "{marker}"}],
         "dataset.steps[0]._target_: 'tests.helpers.touch' is not a component class"),
        ("dataset.loader", {"_target_": "torch.utils.cpp_extension.subprocess.Popen",
                            "args": ["touch", "{marker}"]},
         "is subprocess's (part of Python itself)"),
        ("dataset", {"_target_": "numpy.memmap", "filename": "{marker}", "mode": "w+",
                     "shape": [1]},
         "dataset._target_: 'numpy.memmap' is not a component class"),
    ],
    ids=["os.system as the model", "a function as the model", "a dataset as the model",
         "Popen nested in the dataset", "a function in a list",
         "Popen reached through torch", "a library class as the dataset"],
)  # fmt: skip
def test_a_run_folders_config_runs_no_code_in_inference_and_load_run(
    trainer, tmp_path, node, value, said
):
    """Issue 19, item 1: a ``_target_`` in a run folder's config.yaml is checked to be a
    class of the expected kind (or a marked factory) before anything is called."""
    import yaml

    from sweeptrainer import load_run
    from sweeptrainer.errors import ConfigError

    assert trainer(*TINY).code == 0
    (run,) = run_dirs(tmp_path)
    marker = tmp_path / "MARKER"
    config = yaml.safe_load((run / "config.yaml").read_text())
    text = yaml.safe_dump(value).replace("{marker}", str(marker))
    parent, _, leaf = node.rpartition(".")
    (config[parent] if parent else config)[leaf] = yaml.safe_load(text)
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    before = snapshot(tmp_path / "results")

    result = trainer("inference", str(run), "Digits:test", str(tmp_path / "out.csv"))
    assert result.code == 2 and said in result.err, result.err
    with pytest.raises(ConfigError, match=r"part of Python itself|is not a"):
        load_run(run)
    assert not marker.exists() and not (tmp_path / "out.csv").exists()
    assert snapshot(tmp_path / "results") == before


def test_a_marked_factory_builds_from_a_run_folder(tmp_path):
    """The packaged model factories (torchvision, timm) carry the mark; classes need none."""
    from omegaconf import OmegaConf

    from sweeptrainer.inference import check_run_config

    for target in ("sweeptrainer.components.models.torchvision_model",
                   "sweeptrainer.components.models.FFNN"):  # fmt: skip
        config = OmegaConf.create({"model": {"_target_": target}})
        check_run_config(config, tmp_path / "run" / "config.yaml")


@pytest.mark.parametrize("link", ["train.log", "states", "run folder"])
def test_a_run_with_a_link_out_is_neither_resumed_nor_continued_through_it(trainer, tmp_path, link):
    """Issue 19, item 2: resuming appends to train.log and writes states/; continuing reads
    the other run's states: through a symbolic link that would be outside the experiment."""
    import yaml

    assert trainer(*TINY).code == 0
    (run,) = run_dirs(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kept.txt").write_text("not yours")
    status = yaml.safe_load((run / "status.yaml").read_text()) | {"state": "interrupted"}
    (run / "status.yaml").write_text(yaml.safe_dump(status))
    if link == "run folder":
        (outside / run.name).mkdir()
        run.rename(outside / run.name)
        run.symlink_to(outside / run.name, target_is_directory=True)
    else:
        (run / link).rename(outside / link)
        (run / link).symlink_to(outside / link, target_is_directory=link == "states")
    before = snapshot(outside)

    resumed = trainer(*TINY)
    assert resumed.code == 1 and "is a symbolic link" in resumed.out + resumed.err
    status["state"] = "finished"  # a finished run to continue from: never read through a link
    (run / "status.yaml").write_text(yaml.safe_dump(status))
    assert snapshot(outside).keys() == before.keys()
    before = snapshot(outside)  # the test wrote status.yaml through the link itself
    continued = trainer("iterations=2", "progress_bar=false", "continue_training=true")
    assert continued.code == 0 and "continue from" not in continued.out + continued.err
    assert "on cpu (new)" in continued.out
    assert "Traceback" not in resumed.err + continued.err
    assert snapshot(outside) == before
