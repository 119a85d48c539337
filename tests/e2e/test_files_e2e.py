"""Data from files end to end, in real processes: kills mid-epoch, full sweeps, templates."""

from __future__ import annotations

import signal

import pandas as pd
import pytest

from tests.conftest import SUBPROCESS_TIMEOUT, snapshot
from tests.e2e.test_fault_tolerance import (
    assert_same_run,
    only_run,
    run,
    start,
    status,
    wait_for,
)
from tests.files_data import AUDIO, IMAGES, write_digit_pngs, write_tone_wavs

pytestmark = pytest.mark.slow


def test_sigkill_mid_epoch_with_workers_and_augmentation_resumes_bit_for_bit(tmp_path):
    write_digit_pngs(tmp_path / "images", n=160)
    args = (*IMAGES, "augmentation=RandomCrop", "num_workers=2", "iterations=3")
    pause = ("+callbacks.pause._target_=tests.helpers.PauseAt", "+callbacks.pause.iteration=2",
             "+callbacks.pause.batch_idx=3", "+callbacks.pause.marker=paused")  # fmt: skip
    (tmp_path / "paused").touch()  # the reference run does not pause
    code, out = run(tmp_path, *args, *pause, "experiment_id=ref")
    assert code == 0, out
    (tmp_path / "paused").unlink()

    proc = start(tmp_path, *args, *pause, "experiment_id=cut")
    wait_for((tmp_path / "paused").exists)  # in epoch 2, after its 4th batch
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    cut = only_run(tmp_path, "cut")
    assert status(cut)["state"] == "running"  # killed: nothing was told
    code, out = run(tmp_path, *args, *pause, "experiment_id=cut")
    assert code == 0, out
    assert "resume (killed) from states/last.pt (iteration 1)" in out
    assert_same_run(only_run(tmp_path, "ref"), cut)


def test_a_run_is_the_same_whether_it_builds_the_cache_finds_it_or_was_killed_after(tmp_path):
    """Issue 34 (item 1): building the preprocessing cache (with 2 workers) consumes nothing
    training uses, so the same run gives identical metrics and results when it builds the
    cache, when it finds it built, and when it was SIGKILLed right after building it."""
    import shutil

    write_digit_pngs(tmp_path / "images", n=120)
    args = (*IMAGES, "dataset.preprocess=[{_target_:sweeptrainer.data.transforms.Resize,size:10}]",
            "augmentation=RandomCrop", "num_workers=2", "iterations=2")  # fmt: skip
    cache = tmp_path / "images/.sweeptrainer-cache"

    code, out = run(tmp_path, *args, "experiment_id=builds")
    assert code == 0, out
    assert "preprocessing cache: computed" in out, out
    code, out = run(tmp_path, *args, "experiment_id=finds")
    assert code == 0 and "preprocessing cache: computed" not in out, out

    shutil.rmtree(cache)
    proc = start(tmp_path, *args, "experiment_id=killed")
    wait_for(lambda: any(cache.glob("*/*/index.json")), timeout=120)  # built: kill it now
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    code, out = run(tmp_path, *args, "experiment_id=killed")
    assert code == 0, out
    assert "preprocessing cache: computed" not in out, out  # the kill left a complete cache
    builds = only_run(tmp_path, "builds")
    assert_same_run(builds, only_run(tmp_path, "finds"))
    assert_same_run(builds, only_run(tmp_path, "killed"))


def _caches(data):
    return [p for p in (data / ".sweeptrainer-cache").iterdir() if not p.name.startswith(".")]


def test_audio_sweep_of_four_builds_the_cache_once(tmp_path):
    write_tone_wavs(tmp_path / "clips")
    sweep = ("-m", "augmentation=None,SpecAugment", "seed=1,2", *AUDIO)
    code, out = run(tmp_path, *sweep, "iterations=2")
    assert code == 0, out
    assert out.count("preprocessing 36 files once") == 1
    assert "sweep: 4 runs: 4 trained" in out
    (cache,) = _caches(tmp_path / "clips")
    built = snapshot(cache)
    code, out = run(tmp_path, *sweep, "iterations=3")  # a second command: each run continues
    assert code == 0, out
    assert "preprocessing" not in out and out.count("continue from") == 4
    assert snapshot(cache) == built and len(_caches(tmp_path / "clips")) == 1


@pytest.mark.parametrize("template", ["images", "audio"])
def test_file_templates_train_their_declared_sweep(tmp_path, template):
    code, out = run(tmp_path, "create", "project", "--template", template)
    assert code == 0, out
    project = tmp_path / "project"
    code, out = run(project, "-m", "iterations=2", "progress_bar=false")
    assert code == 0, out
    assert "sweep: 4 runs: 4 trained" in out
    code, out = run(project, "postprocess", f"results/{template}")
    assert code == 0, out
    aggregated = pd.read_csv(project / f"results/{template}/postprocessing/aggregated.csv")
    assert len(aggregated) == 2 and (aggregated["runs"] == 2).all()
    assert "augmentation.id" in aggregated.columns
    if template == "audio":
        per_speaker = project / "results/audio/postprocessing/stratified_aggregated.csv"
        assert set(pd.read_csv(per_speaker).group) == {"anna", "ben", "chloe", "dev", "emil"}
