"""Sweeps on Ray (``hydra/launcher=ray``): a local Ray gives the runs of the basic launcher,
an existing cluster trains them where the command's user expects them, and a cancelled run
is left to its run folder, not run again by Ray.

They need hydra-ray-launcher and ray, which live in their own venv: ``make install-ray``
creates ``.venv-ray`` and ``make test-slow`` runs this file with it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import SUBPROCESS_TIMEOUT
from tests.helpers import study_trials

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(importlib.util.find_spec(m) for m in ("ray", "hydra_plugins.hydra_ray_launcher")),
        reason="needs ray and hydra-ray-launcher: make install-ray, then make test-slow "
        "(or .venv-ray/bin/pytest -m slow tests/e2e/test_ray.py)",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")  # the ray command of this venv
SWEEP = ("-m", "seed=1,2,3,4", "dataset=Wine", "iterations=3", "progress_bar=false")
PROBE = ("+callbacks.probe._target_=tests.e2e.test_ray.Probe",)


class Probe:
    """Appends ``pid torch-threads OMP_NUM_THREADS`` to ``<run_dir>/probe.txt`` each time the
    run starts training: which process trained it, with how many threads, how many times."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "probe.txt"

    def cb_on_train_begin(self):
        import torch

        line = f"{os.getpid()} {torch.get_num_threads()} {os.environ.get('OMP_NUM_THREADS')}\n"
        with self.path.open("a") as file:
            file.write(line)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "RAY_ADDRESS")}
    paths = [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)  # the test's callbacks, in Ray's workers too
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


def start(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sweeptrainer", *args], cwd=cwd, env=_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def run(cwd: Path, *args: str) -> tuple[int, str]:
    proc = start(cwd, *args)
    out, _ = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    return proc.returncode, out


def wait_for(predicate, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def results(training: Path) -> dict[str, dict]:
    """results.yaml of every finished run under ``training``, times left out."""
    out = {}
    for run_dir in sorted(training.iterdir()):
        if (run_dir / "results.yaml").is_file():
            data = yaml.safe_load((run_dir / "results.yaml").read_text())
            out[run_dir.name] = {k: v for k, v in data.items() if k not in ("train_time_s",)}
    return out


def status(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "status.yaml").read_text())


def probes(run_dir: Path) -> list[list[str]]:
    return [ln.split() for ln in (run_dir / "probe.txt").read_text().splitlines()]


def ray_temp_dir() -> Path:
    """A short temp folder for Ray's sessions: its socket paths must stay under 108 bytes,
    which pytest's tmp_path would not."""
    return Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def ray_head(cwd: Path, temp: Path) -> Iterator[subprocess.Popen]:
    """An existing Ray cluster: ``ray start --head`` with 2 CPUs on loopback, run in ``cwd``,
    in a process group of its own; every process of it is stopped at the end (by that group,
    not ``ray stop``, which would stop every Ray of this machine)."""
    log = (temp / "head.log").open("w")
    head = subprocess.Popen(
        [str(RAY), "start", "--head", "--block", "--num-cpus=2", "--node-ip-address=127.0.0.1",
         f"--port={free_port()}", f"--temp-dir={temp}", "--include-dashboard=false",
         "--disable-usage-stats"],
        cwd=cwd, env=_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(lambda: "block forever" in (temp / "head.log").read_text() or head.poll())
        assert head.poll() is None, (temp / "head.log").read_text()
        yield head
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # what the drain left (it waits up to 30 s)
        head.wait(timeout=30)
        log.close()


def test_local_ray_sweep_gives_the_basic_launchers_runs(tmp_path):
    temp = ray_temp_dir()
    try:
        code, basic = run(tmp_path, *SWEEP, *PROBE, "experiment_id=basic")
        assert code == 0, basic
        code, out = run(tmp_path, *SWEEP, *PROBE, "experiment_id=ray", "hydra/launcher=ray",
                        f"+hydra.launcher.ray.init._temp_dir={temp}")  # fmt: skip
    finally:
        subprocess.run(["rm", "-rf", str(temp)], check=False)
    assert code == 0, out
    assert "Started a local Ray instance" in out
    assert "sweep: 4 runs: 4 trained, 0 skipped (finished before), 0 failed" in out
    ray_runs = tmp_path / "results/ray/training"
    assert len(results(ray_runs)) == 4
    assert results(tmp_path / "results/basic/training") == results(ray_runs)
    # each run trained once, in a Ray worker (not this command's process), with 1 torch
    # thread: Ray's OMP_NUM_THREADS for a task of num_cpus 1
    lines = [probes(r) for r in sorted(ray_runs.iterdir())]
    assert all(len(p) == 1 for p in lines), lines
    assert all(threads == "1" and omp == "1" for ((_, threads, omp),) in lines), lines


def test_existing_cluster_trains_a_relative_results_dir_under_the_commands_folder(tmp_path):
    head_dir, user_dir = tmp_path / "head", tmp_path / "user"
    head_dir.mkdir()
    user_dir.mkdir()
    temp = ray_temp_dir()
    try:
        with ray_head(head_dir, temp):
            code, out = run(user_dir, *SWEEP, "hydra/launcher=ray", "results_dir=out",
                            "hydra.launcher.ray.init.address=auto")  # fmt: skip
    finally:
        subprocess.run(["rm", "-rf", str(temp)], check=False)
    assert "Connecting to existing Ray cluster" in out
    assert not (head_dir / "out").exists(), "the runs went to the folder where ray start ran"
    assert code == 0, out
    assert "sweep: 4 runs: 4 trained, 0 skipped (finished before), 0 failed" in out
    training = user_dir / "out/default/training"
    assert len(results(training)) == 4
    assert all(status(r)["state"] == "finished" for r in training.iterdir())


PAUSE = (
    "+callbacks.pause._target_=tests.helpers.PauseAt", "+callbacks.pause.iteration=2",
    "+callbacks.pause.batch_idx=5", "+callbacks.pause.timeout=60",
)  # fmt: skip
# Wine in batches of 8: 16 steps per epoch
ONE = ("-m", "seed=1", "dataset=Wine", "batch_size=8", "iterations=5", "progress_bar=false")


def test_cancel_of_a_run_on_ray_interrupts_it_and_ray_does_not_run_it_again(tmp_path):
    marker = tmp_path / "paused"
    temp = ray_temp_dir()
    args = (*ONE, *PAUSE, f"+callbacks.pause.marker={marker}", *PROBE, "hydra/launcher=ray",
            f"+hydra.launcher.ray.init._temp_dir={temp}")  # fmt: skip
    try:
        sweep = start(tmp_path, *args)
        try:
            wait_for(lambda: marker.exists() or sweep.poll() is not None)
            assert marker.exists(), sweep.communicate(timeout=SUBPROCESS_TIMEOUT)[0]
            (run_dir,) = (tmp_path / "results/default/training").iterdir()
            assert int(marker.read_text()) != sweep.pid  # trained in a Ray worker
            code, cancelled = run(tmp_path, "cancel", "results/default", run_dir.name)
            out, _ = sweep.communicate(timeout=SUBPROCESS_TIMEOUT)
        finally:
            sweep.kill()
        # the sweep's process is done: its Ray is stopped; the run is as its folder says
        assert code == 0 and "to stop (SIGTERM)" in cancelled, cancelled
        assert status(run_dir)["state"] == "interrupted", out
        assert (run_dir / "states/last.pt").is_file()
        # one start only: Ray did not run the task again (nor did anything else)
        assert len(probes(run_dir)) == 1, out
        assert (run_dir / "train.log").read_text().count(" on cpu (") == 1
        assert status(run_dir)["attempt"] == 1
        assert "1 interrupted" in out, out

        code, out = run(tmp_path, *args)  # the same command again: it resumes
    finally:
        subprocess.run(["rm", "-rf", str(temp)], check=False)
    assert code == 0, out
    assert "resume (interrupted) from states/last.pt" in out
    assert "sweep: 1 runs: 1 trained" in out
    assert status(run_dir)["state"] == "finished"


def test_a_search_on_ray_keeps_one_study_for_all_its_tasks(tmp_path):
    """Issue 31: the search sweeper's trials as Ray tasks (two at a time): every task opens
    the study's journal by path and tells its trial; one study, n_trials distinct trials."""
    pytest.importorskip("optuna")
    temp = ray_temp_dir()
    try:
        code, out = run(tmp_path, "-m", "hydra/sweeper=search", "hydra.sweeper.n_trials=4",
                        "hydra.sweeper.sampler=random", "hydra.sweeper.n_jobs=2",
                        "learning_rate=tag(log,interval(1e-3,1e-1))", "dataset=Wine",
                        "iterations=3", "progress_bar=false", *PROBE, "hydra/launcher=ray",
                        f"+hydra.launcher.ray.init._temp_dir={temp}")  # fmt: skip
    finally:
        subprocess.run(["rm", "-rf", str(temp)], check=False)
    assert code == 0, out
    assert "sweep: 4 runs: 4 trained" in out, out
    trials = study_trials(tmp_path / "results/default")
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state.name == "COMPLETE" and sorted(t.intermediate_values) == [1, 2, 3]
               for t in trials)  # fmt: skip
    runs = sorted((tmp_path / "results/default/training").iterdir())
    assert {t.user_attrs["run"] for t in trials} == {r.name for r in runs}
    assert all(len(probes(r)) == 1 for r in runs)  # each trained once, in a Ray worker
