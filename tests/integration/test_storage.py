"""A full disk is the machine's fault, not the run's (issue 19, item 12): a clear message
naming the folder, no retry used up, and the same command finishes the sweep once there
is space again."""

from __future__ import annotations

import contextlib
import os
import subprocess

import pytest
import yaml

RUNS = ("-m", "seed=1,2", "dataset=Wine", "iterations=2", "progress_bar=false")


@contextlib.contextmanager
def tmpfs(folder, size: str):
    """A tmpfs of ``size`` mounted on ``folder`` for the block (skips where not allowed)."""
    folder.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs is not allowed here (needs root in a mount namespace)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 1.6 MB tmpfs: one Wine run (two 460 KB states) fits, the second does not."""
    with tmpfs(tmp_path / "disk", "1600k") as disk:
        yield disk


def _status(run):
    return yaml.safe_load((run / "status.yaml").read_text())


def test_a_full_disk_says_so_uses_no_retry_and_the_sweep_finishes_later(trainer, small_disk):
    results = f"results_dir={small_disk / 'results'}"
    full = trainer(*RUNS, results)
    assert full.code == 1, full.err
    said = f"no space left on the device of {small_disk / 'results'}"
    assert said in full.out + full.err
    assert "unexpected pos" not in full.out + full.err and "Traceback" not in full.err
    runs = sorted((small_disk / "results/default/training").iterdir())
    stopped = [r for r in runs if _status(r)["state"] != "finished"]
    assert stopped and all(_status(r)["state"] in ("interrupted", "running") for r in stopped)

    again = trainer(*RUNS, results)  # still full: the same message, still no attempt used
    assert again.code == 1 and said in again.out + again.err
    assert all(_status(r).get("attempt", 1) == 1 for r in stopped)
    assert "failed 2 times" not in again.out

    grow = ["mount", "-o", "remount,size=16m", str(small_disk)]
    assert subprocess.run(grow, capture_output=True).returncode == 0
    done = trainer(*RUNS, results)
    assert done.code == 0, done.err
    assert all(_status(r)["state"] == "finished" for r in runs)


@pytest.fixture
def read_only_results(trainer, tmp_path):
    """A finished 2-run sweep on a tmpfs, then remounted read-only (root ignores chmod)."""
    with tmpfs(tmp_path / "ro", "32m") as disk:
        assert trainer(*RUNS, f"results_dir={disk}").code == 0
        remount = ["mount", "-o", "remount,ro", str(disk)]
        assert subprocess.run(remount, capture_output=True).returncode == 0
        yield disk


def test_a_read_only_results_folder_gives_clear_errors_and_reading_verbs_work(
    trainer, tmp_path, read_only_results
):
    """Issue 19, item 13: verbs that write say the folder is read-only (no traceback);
    verbs that only read work."""
    results, experiment = read_only_results, read_only_results / "default"
    said = "is on a read-only file system"
    writers = {
        "re-run": (2, (*RUNS, f"results_dir={results}")),
        "continue": (
            2,
            (*RUNS[2:], "iterations=3", "continue_training=true", f"results_dir={results}"),
        ),
        "postprocess": (1, ("postprocess", str(experiment))),
        "rm-states": (1, ("rm-states", str(experiment), "--best-only", "--yes")),
    }
    for name, (code, args) in writers.items():
        result = trainer(*args)
        assert result.code == code, (name, result.out, result.err)
        assert "Read-only file system" in result.err or said in result.err, (name, result.err)
        assert "Traceback" not in result.err, name

    status = trainer("status", str(experiment))
    assert status.code == 0 and status.out.count("finished") >= 2
    checked = trainer("validate", *RUNS, f"results_dir={results}")
    assert checked.code == 2 and "Traceback" not in checked.err + checked.out
    run = sorted((experiment / "training").iterdir())[0]
    predicted = trainer("inference", str(run), "Wine:test", str(tmp_path / "out.csv"))
    assert predicted.code == 0, predicted.err
    assert (tmp_path / "out.csv").read_text().count("\n") > 10
