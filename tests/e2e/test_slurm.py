"""Sweeps on a real one-node SLURM cluster (tests/clusters/slurm.py), driven as a user would:
the same runs as the basic launcher, scancel and time limits resumed, status and cancel.

Skipped, with the missing piece named, where the cluster cannot be brought up (not root,
the Debian packages not installed: see tests/clusters/slurm.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.clusters.slurm import PARTITION, SlurmCluster, start
from tests.conftest import SUBPROCESS_TIMEOUT
from tests.helpers import study_trials

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# The packaged CPU-only option: no override besides the partition.
SLURM = ("hydra/launcher=slurm_cpu", f"hydra.launcher.partition={PARTITION}")
TINY = ("iterations=3", "progress_bar=false")  # Digits, FFNN: under a second of training
# Runs stretched by sleeping 0.3 s after each step (the CPU stays free): with
# iterations=100 about 30 s, evaluated and saved every 10 steps.
STEPS = ("training_type=step", "progress_bar=false",
         "+callbacks.slow._target_=tests.helpers.Slow", "+callbacks.slow.seconds=0.3")  # fmt: skip


@pytest.fixture(scope="session")
def slurm_cluster():
    """A one-node SLURM cluster for the session, stopped at its end (also on failure)."""
    cluster = start()
    if isinstance(cluster, str):
        pytest.skip(cluster)
    try:
        yield cluster
    finally:
        cluster.stop()


def env(cluster: SlurmCluster) -> dict[str, str]:
    environ = {k: v for k, v in cluster.env.items() if k != "HYDRA_FULL_ERROR"}
    environ["PYTHONPATH"] = str(ROOT)  # tests/helpers.py, for the jobs too (sbatch exports it)
    return environ


def trainer(cluster: SlurmCluster, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sweeptrainer", *args], cwd=cwd,
                          env=env(cluster), capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT)  # fmt: skip


def start_trainer(cluster: SlurmCluster, cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sweeptrainer", *args], cwd=cwd,
                            env=env(cluster), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)  # fmt: skip


def wait_for(predicate, timeout: float, what: str) -> float:
    """Poll until ``predicate()``; the seconds it took."""
    clock = time.monotonic()
    while not predicate():
        assert time.monotonic() - clock < timeout, f"timed out waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - clock


def status(run_dir: Path) -> dict:
    try:
        return yaml.safe_load((run_dir / "status.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):  # not written yet
        return {}


def results(cwd: Path, experiment: str) -> dict[str, dict]:
    """results.yaml of every run of the experiment, times left out."""
    out = {}
    for run in sorted((cwd / "results" / experiment / "training").iterdir()):
        data = yaml.safe_load((run / "results.yaml").read_text())
        out[run.name] = {k: v for k, v in data.items() if k not in ("train_time_s", "time_s")}
    return out


def the_run(cwd: Path, seed: int, experiment: str = "default") -> Path:
    (run,) = (cwd / "results" / experiment / "training").glob(f"*_None_{seed}_*")
    return run


def training(run_dir: Path) -> bool:
    """Running, and saved at least once (states/ has progressed)."""
    return status(run_dir).get("state") == "running" and (run_dir / "states/last.pt").is_file()


# two ~30 s runs, one job each, training at once (slurm_cpu: a core a job)
LONG_SWEEP = ("-m", "seed=1,2", "iterations=100", "eval_frequency=10", *STEPS, *SLURM)


def first_run_training(cwd: Path) -> Path:
    """The folder of the sweep's seed-1 run, once its job trains and has saved."""
    wait_for(lambda: list(cwd.glob("results/default/training/*_None_1_*")), 300,
             "the run's folder")  # fmt: skip
    run = the_run(cwd, 1)
    wait_for(lambda: training(run), 120, "the run to train and save")
    return run


def job_of(run_dir: Path) -> str:
    """The SLURM job (``ARRAY_TASK`` for an array task) whose process trains the run: from
    the environment of the pid in its status.yaml (the job runs on this machine)."""
    pid = status(run_dir)["pid"]
    environ = dict(
        item.split("=", 1)
        for item in Path(f"/proc/{pid}/environ").read_text().split("\0")
        if "=" in item
    )
    if "SLURM_ARRAY_JOB_ID" in environ:
        return f"{environ['SLURM_ARRAY_JOB_ID']}_{environ['SLURM_ARRAY_TASK_ID']}"
    return environ["SLURM_JOB_ID"]


def log(run_dir: Path) -> str:
    return (run_dir / "train.log").read_text()


def test_slurm_sweep_gives_the_runs_of_the_basic_launcher(slurm_cluster, tmp_path):
    sweep = ("-m", "seed=1,2,3,4", *TINY)
    done = trainer(slurm_cluster, tmp_path, *sweep, *SLURM, "experiment_id=slurm")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sweep: 4 runs: 4 trained, " in done.stdout and ", 0 failed" in done.stdout, done.stdout
    basic = trainer(slurm_cluster, tmp_path, *sweep, "experiment_id=basic")
    assert basic.returncode == 0, basic.stdout + basic.stderr
    # exactly the same results.yaml, run for run (test and dev metrics compared with ==)
    ours = results(tmp_path, "slurm")
    assert len(ours) == 4 and ours == results(tmp_path, "basic")
    # and the runs were SLURM jobs: four tasks of one array, COMPLETED in the accounting
    (submitit,) = (tmp_path / "results/slurm/sweeps").glob("*/.submitit")
    jobs = sorted(p.name for p in submitit.iterdir() if re.fullmatch(r"\d+_\d+", p.name))
    assert len(jobs) == 4, jobs
    states = slurm_cluster.run("sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j",
                               ",".join(jobs)).stdout.split()  # fmt: skip
    assert sorted(states) == sorted(f"{job}|COMPLETED" for job in jobs), states


def test_scancel_interrupts_a_run_and_the_same_command_resumes_it(slurm_cluster, tmp_path):
    sweep = LONG_SWEEP
    proc = start_trainer(slurm_cluster, tmp_path, *sweep)
    try:
        run = first_run_training(tmp_path)
        job = job_of(run)
        signalled = time.time()
        cancel = slurm_cluster.run("scancel", job)
        assert cancel.returncode == 0, cancel.stderr
        out, _ = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the command printed its summary and said it did not finish
    assert proc.returncode != 0, out
    assert "sweep: 2 runs:" in out, out
    after = status(run)
    assert after["state"] == "interrupted", (after, out, log(run))
    assert "SIGTERM received" in log(run)
    last = run / "states/last.pt"
    assert last.stat().st_mtime >= signalled - 1, "states/last.pt not written at the signal"

    again = trainer(slurm_cluster, tmp_path, *sweep)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "sweep: 2 runs:" in again.stdout and ", 0 failed" in again.stdout, again.stdout
    assert "resume (interrupted) from states/last.pt" in log(run)
    assert status(run)["state"] == "finished"
    assert status(the_run(tmp_path, 2))["state"] == "finished"


def test_time_limit_saves_the_run_and_the_next_commands_finish_it(slurm_cluster, tmp_path):
    """A run of about 3 min in jobs with a 1 min time limit: SIGUSR2 comes before the limit,
    the run saves and is `interrupted` (never `failed`); the command, run again (or
    submitit requeueing the job), resumes it until it is finished, with the test metrics
    of a run never interrupted.

    slurmctld looks at time limits every 30 s and may send the signal up to 30 s before
    ``signal_delay_s`` asks (seen: 28 s into a 1 min job with a delay of 15 s, 48 s in with
    a delay of 5 s), so a 1 min job trains for 15-40 s here after starting: 4 commands seen,
    about 4 min."""
    run_args = ("seed=1", "iterations=600", "eval_frequency=50")
    limited = ("-m", *run_args, *STEPS, *SLURM, "hydra.launcher.timeout_min=1",
               "hydra.launcher.signal_delay_s=5")  # fmt: skip
    outputs = []
    for _ in range(20):
        done = trainer(slurm_cluster, tmp_path, *limited)
        outputs.append(done.stdout + done.stderr)
        run = the_run(tmp_path, 1)
        if done.returncode == 0:
            break
        after = status(run)
        assert after["state"] == "interrupted", (after, outputs[-1], log(run))
        assert "1 interrupted" in done.stdout, outputs[-1]
        assert (run / "states/last.pt").is_file()
    else:
        pytest.fail(f"not finished after 20 commands:\n{outputs[-1]}")
    assert status(run)["state"] == "finished", outputs[-1]
    text = log(run)
    # it reached the time limit at least twice (3 min in 1 min jobs), and resumed each time
    assert text.count("SIGUSR2 received") >= 2, text
    assert text.count("resume (interrupted) from states/last.pt") >= 2, text
    assert "failed" not in text.lower()

    reference = trainer(slurm_cluster, tmp_path, *run_args, "training_type=step",
                        "progress_bar=false", "experiment_id=reference")  # fmt: skip
    assert reference.returncode == 0, reference.stdout + reference.stderr
    (ours,) = results(tmp_path, "default").values()
    (theirs,) = results(tmp_path, "reference").values()
    assert ours["iterations_done"] == theirs["iterations_done"] == 600
    assert ours["test"] == theirs["test"]  # exactly
    assert ours["dev"] == theirs["dev"]


def test_status_and_cancel_on_a_slurm_sweep(slurm_cluster, tmp_path):
    sweep = LONG_SWEEP
    proc = start_trainer(slurm_cluster, tmp_path, *sweep)
    try:
        run = first_run_training(tmp_path)
        shown = trainer(slurm_cluster, tmp_path, "status", "results/default")
        assert shown.returncode == 0, shown.stdout + shown.stderr
        info = status(run)
        (line,) = [ln for ln in shown.stdout.splitlines() if ln.startswith(run.name)]
        assert " running " in line and f"{info['host']}:{info['pid']}" in line, shown.stdout
        assert "/100" in line, line

        cancel = trainer(slurm_cluster, tmp_path, "cancel", "results/default", run.name)
        assert cancel.returncode == 0, cancel.stdout + cancel.stderr
        assert f"asked {run.name} to stop (SIGTERM)" in cancel.stdout
        # a step is 0.3 s: the run stops after it, saves, and is interrupted at once
        took = wait_for(lambda: status(run).get("state") == "interrupted", 10, "interrupted")
        out, _ = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert took < 5, took
    assert proc.returncode != 0 and "sweep: 2 runs:" in out, out
    assert "SIGTERM received" in log(run)
    shown = trainer(slurm_cluster, tmp_path, "status", "results/default")
    (line,) = [ln for ln in shown.stdout.splitlines() if ln.startswith(run.name)]
    assert " interrupted " in line, shown.stdout

    again = trainer(slurm_cluster, tmp_path, *sweep)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resume (interrupted) from states/last.pt" in log(run)
    assert all(status(r)["state"] == "finished"
               for r in (tmp_path / "results/default/training").iterdir())  # fmt: skip


def test_cluster_helper_names_what_is_missing(monkeypatch):
    """Without root the helper says so (the tests then skip with that reason)."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    reason = start()
    assert isinstance(reason, str) and "root" in reason


def test_a_killed_job_does_not_end_the_command_before_the_others(slurm_cluster, tmp_path):
    """Issue 21: a job that ends without a result (its process SIGKILLed: the OOM killer, a
    node failure) is one line; the command still waits for the other jobs, then prints the
    tally from the run folders (the killed run left to resume), exit 1."""
    sweep = ("-m", "seed=1,2", "iterations=60", "eval_frequency=10", *STEPS, *SLURM)
    proc = start_trainer(slurm_cluster, tmp_path, *sweep)
    try:
        wait_for(lambda: len(list(tmp_path.glob("results/default/training/*"))) == 2, 300,
                 "both runs' folders")  # fmt: skip
        first, second = the_run(tmp_path, 1), the_run(tmp_path, 2)
        wait_for(lambda: training(first) and training(second), 120, "both runs to train")
        os.kill(status(first)["pid"], 9)
        out, _ = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out
    assert "Traceback" not in out and "the launcher failed: UncompletedJobError" in out, out
    assert status(second)["state"] == "finished", out  # waited for, not cut short
    assert "sweep: 2 runs: 1 trained, 0 skipped (finished before), 0 failed, 1 interrupted" in out
    again = trainer(slurm_cluster, tmp_path, *sweep)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resume (killed) from states/last.pt" in log(first)


def test_a_search_on_slurm_keeps_one_study_for_all_its_jobs(slurm_cluster, tmp_path):
    """Issue 31: the search sweeper launches its trials as SLURM jobs (two at a time); each
    job opens the study's journal by path, reports every evaluation and tells its trial how
    it ended: one study, n_trials trials, distinct numbers."""
    pytest.importorskip("optuna")
    search = ("-m", "hydra/sweeper=search", "hydra.sweeper.sampler=random",
              "hydra.sweeper.n_trials=4", "learning_rate=tag(log,interval(1e-3,1e-1))",
              "hydra.launcher.array_parallelism=2", *TINY, *SLURM,
              "experiment_id=search")  # fmt: skip
    done = trainer(slurm_cluster, tmp_path, *search)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sweep: 4 runs: 4 trained" in done.stdout, done.stdout
    trials = study_trials(tmp_path / "results/search")
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state.name == "COMPLETE" and sorted(t.intermediate_values) == [1, 2, 3]
               for t in trials)  # fmt: skip
    runs = {t.user_attrs["run"] for t in trials}
    assert runs == {p.name for p in (tmp_path / "results/search/training").iterdir()}
    # the trials ran as SLURM jobs: two arrays of two
    (submitit,) = (tmp_path / "results/search/sweeps").glob("*/.submitit")
    jobs = sorted(p.name for p in submitit.iterdir() if re.fullmatch(r"\d+_\d+", p.name))
    assert len(jobs) == 4 and len({j.split("_")[0] for j in jobs}) == 2, jobs


# one run across the two tasks of a job: dropout off, so one process trains the same weights
ACROSS = ("dataset=Wine", "model.dropout=0.0", "progress_bar=false")


def test_a_job_of_two_tasks_trains_one_run_across_them(slurm_cluster, tmp_path):
    """Issue 32: hydra.launcher.tasks_per_node=2 (CPU, gloo) trains one run with world 2:
    one run folder, written by rank 0, equal to one process's run; status shows it once."""
    one = trainer(slurm_cluster, tmp_path, *ACROSS, "iterations=3", "experiment_id=one")
    assert one.returncode == 0, one.stdout + one.stderr
    sweep = ("-m", *ACROSS, "iterations=3", "seed=1", *SLURM, "hydra.launcher.tasks_per_node=2",
             "experiment_id=two")  # fmt: skip
    two = trainer(slurm_cluster, tmp_path, *sweep)
    assert two.returncode == 0, two.stdout + two.stderr
    assert "sweep: 1 runs: 1 trained" in two.stdout, two.stdout
    (a,), (b,) = ((tmp_path / "results" / e / "training").iterdir() for e in ("one", "two"))
    import pandas as pd

    ma, mb = (pd.read_csv(r / "metrics.csv").drop(columns="elapsed_s") for r in (a, b))
    pd.testing.assert_frame_equal(ma, mb, rtol=1e-5)
    assert status(b)["world"] == 2 and log(b).count(" on cpu (new)") == 1
    shown = subprocess.run([sys.executable, "-m", "sweeptrainer", "status", "results/two"],
                           cwd=tmp_path, capture_output=True, text=True).stdout  # fmt: skip
    assert shown.count(b.name) == 1 and "2 processes" in shown, shown
    again = trainer(slurm_cluster, tmp_path, *sweep)
    assert again.returncode == 0 and "sweep: 1 runs: 0 trained, 1 skipped" in again.stdout


def test_scancel_of_a_two_task_run_leaves_it_interrupted_and_it_resumes(slurm_cluster, tmp_path):
    sweep = ("-m", "seed=1", "dataset=Wine", "model.dropout=0.0", "iterations=100",
             "eval_frequency=10", *STEPS, *SLURM, "hydra.launcher.tasks_per_node=2")  # fmt: skip
    proc = start_trainer(slurm_cluster, tmp_path, *sweep)
    try:
        run = first_run_training(tmp_path)
        signalled = time.time()
        cancel = slurm_cluster.run("scancel", job_of(run))
        assert cancel.returncode == 0, cancel.stderr
        out, _ = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert status(run)["state"] == "interrupted", (status(run), out, log(run))
    assert (run / "states/last.pt").stat().st_mtime >= signalled - 1
    again = trainer(slurm_cluster, tmp_path, *sweep)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resume (interrupted) from states/last.pt" in log(run)
    assert status(run)["state"] == "finished" and status(run)["world"] == 2
