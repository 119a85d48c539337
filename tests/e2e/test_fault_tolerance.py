"""Kill a run or a sweep at any moment, run the same command again: it finishes as if never
interrupted. Real processes, real signals."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from tests.conftest import SUBPROCESS_TIMEOUT
from tests.helpers import study_trials

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# Wine in batches of 8: 16 steps per epoch.
BASE = ("dataset=Wine", "batch_size=8", "iterations=5", "progress_bar=false")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["PYTHONPATH"] = str(ROOT)  # the helper callbacks in tests/helpers.py
    return env


def start(cwd: Path, *args: str, script: tuple[str, ...] = ("-m", "sweeptrainer")):
    return subprocess.Popen(
        [sys.executable, *script, *args], cwd=cwd, env=_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def run(cwd: Path, *args: str, script: tuple[str, ...] = ("-m", "sweeptrainer")):
    proc = start(cwd, *args, script=script)
    out, _ = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    return proc.returncode, out


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def comparable(run_dir: Path):
    metrics = pd.read_csv(run_dir / "metrics.csv").drop(columns="elapsed_s")
    results = yaml.safe_load((run_dir / "results.yaml").read_text())
    for key in ("train_time_s", "time_s"):
        results.pop(key, None)
    return metrics, results


def assert_same_run(a: Path, b: Path) -> None:
    (ma, ra), (mb, rb) = comparable(a), comparable(b)
    pd.testing.assert_frame_equal(ma, mb, check_exact=True)
    assert ra == rb


def only_run(cwd: Path, experiment: str) -> Path:
    (folder,) = (cwd / "results" / experiment / "training").iterdir()
    return folder


def status(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "status.yaml").read_text())


PAUSE = (
    "+callbacks.pause._target_=tests.helpers.PauseAt", "+callbacks.pause.iteration=2",
    "+callbacks.pause.batch_idx=5", "+callbacks.pause.marker=paused",
)  # fmt: skip


def test_sigterm_mid_epoch_then_rerun_is_identical(tmp_path):
    (tmp_path / "paused").touch()  # the reference run does not pause
    code, out = run(tmp_path, *BASE, *PAUSE, "experiment_id=ref")
    assert code == 0, out
    (tmp_path / "paused").unlink()

    proc = start(tmp_path, *BASE, *PAUSE, "experiment_id=cut")
    wait_for((tmp_path / "paused").exists)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 143, out
    cut = only_run(tmp_path, "cut")
    assert status(cut)["state"] == "interrupted"
    state = torch.load(cut / "states/last.pt", weights_only=True)
    assert (state["training"]["iteration"], state["training"]["batch_in_epoch"]) == (1, 6)

    code, out = run(tmp_path, *BASE, *PAUSE, "experiment_id=cut")
    assert code == 0, out
    assert "resume (interrupted) from states/last.pt (iteration 1)" in out
    assert_same_run(only_run(tmp_path, "ref"), cut)


@pytest.mark.parametrize("sweep", [(), ("-m", "seed=1,2")], ids=["one run", "a sweep"])
def test_two_ctrl_c_stop_at_once_and_the_run_resumes(tmp_path, sweep):
    """Also in a sweep of the basic launcher (issue 19, item 9: once a traceback, exit 1)."""
    proc = start(tmp_path, *sweep, *BASE, *PAUSE, "+callbacks.pause.linger=30")
    wait_for((tmp_path / "paused").exists)
    proc.send_signal(signal.SIGINT)
    wait_for(
        lambda: (
            "SIGINT received"
            in (tmp_path / "results")
            .joinpath("default/training")
            .glob("*/train.log")
            .__next__()
            .read_text()
        )
    )
    proc.send_signal(signal.SIGINT)  # the second Ctrl-C, while the first is being honoured
    out, _ = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 130, out
    assert "stopped at once" in out
    cut = only_run(tmp_path, "default")
    assert status(cut)["state"] == "running"  # left as by a kill: the next run resumes it
    code, out = run(tmp_path, *sweep, *BASE, *PAUSE, "+callbacks.pause.linger=30")  # no pause
    assert code == 0 and "resume (killed)" in out, out


def test_two_ctrl_c_at_a_terminal_with_dataloader_workers_are_as_quiet(tmp_path):
    """Issue 34 (item 15): a terminal's Ctrl-C reaches the whole process group, DataLoader
    workers too: said once, no KeyboardInterrupt traceback from a worker, exit 130, and the
    run resumes."""
    from tests.files_data import IMAGES, write_digit_pngs

    write_digit_pngs(tmp_path / "images", n=120)
    args = ("-m", "seed=1,2", *IMAGES, "batch_size=8", "num_workers=2", "iterations=5", *PAUSE,
            "+callbacks.pause.linger=30")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeptrainer", *args], cwd=tmp_path, env=_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    wait_for((tmp_path / "paused").exists)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the foreground group, workers included
    wait_for(
        lambda: (
            "SIGINT received" in next(tmp_path.glob("results/*/training/*/train.log")).read_text()
        )
    )
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 130, out
    assert "stopped at once" in out and out.count("SIGINT received") == 1, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    code, out = run(tmp_path, *args)
    assert code == 0 and "resume (killed)" in out, out


def test_a_sigterm_to_the_group_with_dataloader_workers_interrupts_and_resumes(tmp_path):
    """A cluster cancelling a job signals every process of it: the DataLoader workers end
    (SIGTERM is theirs to die of: a worker deaf to it would hang its parent's exit), and
    the run is interrupted at its last step, not failed; the same command resumes it."""
    from tests.files_data import IMAGES, write_digit_pngs

    write_digit_pngs(tmp_path / "images", n=120)
    args = (*IMAGES, "batch_size=8", "num_workers=2", "iterations=5", *PAUSE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeptrainer", *args], cwd=tmp_path, env=_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    wait_for((tmp_path / "paused").exists)
    os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 143, out
    assert "Traceback" not in out, out
    cut = only_run(tmp_path, "default")
    assert status(cut)["state"] == "interrupted", out
    code, out = run(tmp_path, *args)
    assert code == 0 and "resume (interrupted)" in out, out


def test_a_second_process_never_trains_a_locked_run(tmp_path):
    first = start(tmp_path, *BASE, *PAUSE)
    wait_for((tmp_path / "paused").exists)
    code, out = run(tmp_path, *BASE, *PAUSE)
    assert code == 0
    assert "being trained by pid" in out or "another process is training it" in out
    first.send_signal(signal.SIGUSR1)
    first.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert first.returncode == 128 + signal.SIGUSR1
    assert status(only_run(tmp_path, "default"))["state"] == "interrupted"


SLOW = ("+callbacks.slow._target_=tests.helpers.Slow", "+callbacks.slow.seconds=0.01")


def _states_readable(run_dir: Path) -> None:
    for path in (run_dir / "states").glob("*.pt"):
        torch.load(path, weights_only=True)


def test_sigkill_at_random_moments_and_during_a_save(tmp_path):
    # with gradient accumulation, bf16 autocast and clipping on
    controls = ("accumulation_steps=3", "precision=bf16", "gradient_clip_norm=0.5")
    args = (*BASE, "iterations=6", *SLOW, *controls)
    code, out = run(tmp_path, *args, "experiment_id=ref")
    assert code == 0, out
    ref = only_run(tmp_path, "ref")
    cut_args = (*args, "experiment_id=cut")

    # Killed half-way through writing its 3rd state file.
    code, out = run(tmp_path, "3", *cut_args, script=(str(ROOT / "tests/kill_on_save.py"),))
    assert code == -signal.SIGKILL, out
    cut = only_run(tmp_path, "cut")
    assert list((cut / "states").glob(".*.tmp"))  # the half-written temp file
    _states_readable(cut)

    rng = random.Random(7)
    for _ in range(3):
        proc = start(tmp_path, *cut_args)
        wait_for(lambda p=proc: p.poll() is not None or (cut / "train.log").stat().st_size > 0)
        time.sleep(rng.uniform(0.0, 1.0))
        proc.kill()
        proc.communicate(timeout=SUBPROCESS_TIMEOUT)
        _states_readable(cut)
        if status(cut)["state"] == "finished":
            break
    code, out = run(tmp_path, *cut_args)
    assert code == 0, out
    assert status(cut)["state"] == "finished"
    assert not list((cut / "states").glob(".*.tmp"))
    assert_same_run(ref, cut)


def test_sweep_killed_in_its_second_run_finishes_on_rerun(tmp_path):
    args = ("-m", "seed=1,2,3,4", *BASE, "iterations=3", *SLOW)
    proc = start(tmp_path, *args)
    training = tmp_path / "results/default/training"
    wait_for(lambda: next(training.glob("*_None_2_*/states/last.pt"), None) is not None)
    proc.kill()
    (second,) = training.glob("*_None_2_*")
    proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert status(second)["state"] == "running"

    code, out = run(tmp_path, *args)
    assert code == 0, out
    lines = out.splitlines()
    (first,) = training.glob("*_None_1_*")
    assert f"skip {first.name}: finished" in out
    assert any(second.name in ln and "resume (killed) from states/last.pt" in ln for ln in lines)
    for seed in (3, 4):
        assert any(f"_None_{seed}_" in ln and "on cpu (new)" in ln for ln in lines)
    assert "sweep: 4 runs: 3 trained, 1 skipped" in out
    assert all(status(r)["state"] == "finished" for r in training.iterdir())


def test_status_of_a_running_sweep_and_cancel_then_resume(tmp_path):
    args = ("-m", "seed=1,2", *BASE, *PAUSE)
    sweep = start(tmp_path, *args)
    wait_for((tmp_path / "paused").exists)
    code, out = run(tmp_path, "status", "results/default")
    assert code == 0, out
    (line,) = [ln for ln in out.splitlines() if "_None_1_" in ln]
    assert " running " in line and f":{sweep.pid}" in line and "/5" in line

    code, out = run(tmp_path, "cancel", "results/default")
    assert code == 0 and "asked" in out and "to stop (SIGTERM)" in out
    sweep.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert sweep.returncode == 143
    (first,) = (tmp_path / "results/default/training").glob("*_None_1_*")
    assert status(first)["state"] == "interrupted"
    assert not list((tmp_path / "results/default/training").glob("*_None_2_*"))  # not started

    code, out = run(tmp_path, "status", "results/default")
    assert "interrupted" in out
    code, out = run(tmp_path, *args)
    assert code == 0, out
    assert "resume (interrupted)" in out and "sweep: 2 runs: 2 trained" in out
    code, out = run(tmp_path, "cancel", "results/default", "nope")
    assert code == 2 and "RUN: no run 'nope'" in out  # bad input: nothing is signalled


JOBLIB_SWEEP = ("-m", "seed=1,2,3,4", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *BASE,
                "iterations=3", *PAUSE, *SLOW)  # fmt: skip


@pytest.fixture(scope="module")
def joblib_reference(tmp_path_factory) -> Path:
    """The joblib sweep of the stop tests, never interrupted."""
    cwd = tmp_path_factory.mktemp("reference")
    (cwd / "paused").touch()  # no pause
    code, out = run(cwd, *JOBLIB_SWEEP)
    assert code == 0, out
    return cwd / "results/default/training"


@pytest.mark.parametrize("how", ["SIGTERM to the group", "SIGTERM to the main process", "cancel"])
def test_joblib_sweep_stops_like_the_basic_launcher(tmp_path, how, joblib_reference):
    """Issue 19, item 8: under the joblib launcher a stop reaches every worker: each running
    run finishes its step, saves and is `interrupted`, no run is left `running`, the command
    exits 128+15 with its summary, and the next command finishes the sweep as if never
    stopped."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeptrainer", *JOBLIB_SWEEP], cwd=tmp_path, env=_env(),
        text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for((tmp_path / "paused").exists)
        if how == "SIGTERM to the group":
            os.killpg(proc.pid, signal.SIGTERM)
        elif how == "SIGTERM to the main process":
            proc.send_signal(signal.SIGTERM)
        else:
            code, out = run(tmp_path, "cancel", "results/default")
            assert code == 0 and "to stop (SIGTERM)" in out, out
        out, _ = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group
    assert proc.returncode == 143, out
    assert "Traceback" not in out and "sweep: 4 runs:" in out, out
    training = tmp_path / "results/default/training"
    states = {run.name: status(run)["state"] for run in training.iterdir()}
    assert "interrupted" in states.values(), states
    assert set(states.values()) <= {"interrupted", "finished"}, states

    code, out = run(tmp_path, *JOBLIB_SWEEP)
    assert code == 0, out
    assert "resume (interrupted)" in out
    assert sorted(p.name for p in training.iterdir()) == sorted(
        p.name for p in joblib_reference.iterdir()
    )
    for run_dir in training.iterdir():
        assert_same_run(joblib_reference / run_dir.name, run_dir)


def test_a_stopped_optuna_search_ends_at_once_and_resumes(tmp_path):
    """Issue 21, item 4: a stop ends the search (no trial after it, none recorded as failed
    with "Return value must be float-castable"); the same command resumes the interrupted
    trial and finishes the search, printing its best trial."""
    pytest.importorskip("optuna")
    args = ("-m", "+experiment=optuna_search", *BASE, "iterations=3",
            "hydra.sweeper.n_trials=3", *PAUSE)  # fmt: skip
    proc = start(tmp_path, *args)
    wait_for((tmp_path / "paused").exists)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 143, out
    assert "float-castable" not in out and "Traceback" not in out, out
    training = tmp_path / "results/optuna_search/training"
    assert [status(r)["state"] for r in training.iterdir()] == ["interrupted"]

    code, out = run(tmp_path, *args)
    assert code == 0, out
    assert "resume (interrupted)" in out and "best trial 1/3" not in out.split("resume")[0]
    assert "best trial " in out and "overrides: " in out
    assert sorted(status(r)["state"] for r in training.iterdir()) == ["finished"] * 3


def test_a_search_killed_mid_trial_resumes_it_bit_identically_and_ends_at_n_trials(tmp_path):
    """Issue 31: SIGKILL the search command during its second trial, run it again: the
    study ends with exactly n_trials trials, the finished trial is not trained again, the
    killed one resumes from last.pt, and every run equals the uninterrupted search's."""
    pytest.importorskip("optuna")
    args = ("-m", "hydra/sweeper=search", "hydra.sweeper.sampler=random",
            "hydra.sweeper.n_trials=3", "learning_rate=tag(log,interval(1e-3,1e-1))", *BASE,
            *SLOW)  # fmt: skip
    code, out = run(tmp_path, *args, "experiment_id=ref")
    assert code == 0, out

    proc = start(tmp_path, *args, "experiment_id=cut")
    training = tmp_path / "results/cut/training"

    def second_trial_saved() -> bool:
        runs = [r for r in training.glob("*/") if (r / "states/last.pt").is_file()]
        return len(runs) == 2 and any(status(r)["state"] == "running" for r in runs)

    wait_for(second_trial_saved)
    proc.kill()
    proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    code, again = run(tmp_path, *args, "experiment_id=cut")
    assert code == 0, again
    assert again.count("(new)") == 1 and again.count("resume (killed)") == 1, again

    cut, ref = study_trials(tmp_path / "results/cut"), study_trials(tmp_path / "results/ref")
    assert [t.number for t in cut] == [0, 1, 2]
    assert [t.state.name for t in cut] == ["COMPLETE"] * 3
    assert [t.params for t in cut] == [t.params for t in ref]
    assert [t.value for t in cut] == [t.value for t in ref]
    names = sorted(p.name for p in training.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "results/ref/training").iterdir())
    for name in names:
        assert_same_run(tmp_path / "results/ref/training" / name, training / name)
