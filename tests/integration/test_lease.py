"""Runs trained on other nodes: their lease, not this host's locks, says they are alive.

The fast tests fake another node's lease in a finished run's folder; the slow one trains a
run in a UTS namespace of its own (hostname ``nodeB``), kills it, and reads it from here.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

import sweeptrainer.components.metrics  # noqa: F401  # imported by `trainer status`: not timed
from sweeptrainer.io.atomic import atomic_write_yaml
from sweeptrainer.io.lease import LEASE, activity, read_lease
from sweeptrainer.io.run_dir import RunDir
from tests.conftest import SUBPROCESS_TIMEOUT, run_dirs

ROOT = Path(__file__).resolve().parents[2]
TINY = ("iterations=2", "progress_bar=false", "~loggers.tensorboard")
EXPERIMENT = "results/default"
UTC = timezone.utc


class LeaseProbe:
    """Records, at each iteration's end, whom the run's lease names."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def cb_on_iteration_end(self) -> None:
        lease = read_lease(self.run_dir)
        seen = f"{lease.host} {lease.pid}" if lease else "none"
        (self.run_dir / "lease_seen.txt").write_text(seen)


def set_status(run: Path, **fields) -> None:
    """Rewrite fields of the run's status.yaml, as a process of another node would."""
    status = yaml.safe_load((run / "status.yaml").read_text()) | fields
    atomic_write_yaml(run / "status.yaml", status)


def fake_lease(run: Path, host: str, age_s: float, interval_s: float = 3600) -> datetime:
    heartbeat = datetime.now(UTC) - timedelta(seconds=age_s)
    lease = {"host": host, "pid": 4242, "started": heartbeat.isoformat(),
             "heartbeat": heartbeat.isoformat(), "interval_s": interval_s}  # fmt: skip
    atomic_write_yaml(run / LEASE, lease)
    return heartbeat


def line(out: str, name: str) -> str:
    """The run's line of `trainer status`."""
    (found,) = [line for line in out.splitlines() if line.startswith(name + " ")]
    return found


def row(out: str, name: str) -> list[str]:
    return line(out, name).split()


def test_a_run_holds_a_lease_while_it_trains_and_removes_it_after(trainer, tmp_path):
    probe = ("+callbacks.probe._target_=tests.integration.test_lease.LeaseProbe",)
    assert trainer(*TINY, *probe).code == 0
    (run,) = run_dirs(tmp_path)
    assert (run / "lease_seen.txt").read_text() == f"{socket.gethostname()} {os.getpid()}"
    assert not (run / LEASE).exists()
    assert [p.name for p in run.glob(".*.tmp")] == []


def test_a_fresh_lease_of_another_node_keeps_the_run_from_every_verb(trainer, tmp_path):
    """status, cancel, validate, training, rm-failed and rm-states all see a run another
    node trains, though no lock of this host is held."""
    assert trainer(*TINY).code == 0
    (run,) = run_dirs(tmp_path)
    (run / "states" / "epoch_1.pt").write_bytes((run / "states" / "last.pt").read_bytes())
    set_status(run, state="running", host="nodeB", pid=4242)
    fake_lease(run, "nodeB", age_s=1)

    out = trainer("status", EXPERIMENT).out
    assert "  running on nodeB  " in line(out, run.name), out
    assert row(out, run.name)[-1] == "nodeB:4242", out
    result = trainer("cancel", EXPERIMENT)
    assert "runs on nodeB, not on this host" in result.out, result.out
    out = trainer("validate", *TINY).out
    assert "skip (running on nodeB (pid 4242))" in out, out
    result = trainer(*TINY)
    assert result.code == 0 and "running on nodeB (pid 4242)" in result.err + result.out
    result = trainer("-m", *TINY)  # the sweep's tally names the node
    assert "1 running" in result.out and f"  running: {run.name}: running on nodeB" in result.out
    result = trainer("rm-states", EXPERIMENT, "--yes")
    assert "kept the states of" in result.out and "nodeB" in result.out, result.out
    assert (run / "states" / "epoch_1.pt").exists()

    # a retry that just took the run on nodeB: its status still says failed
    set_status(run, state="failed", error="RuntimeError: boom")
    result = trainer("rm-failed", EXPERIMENT, "--yes")
    assert (
        f"kept {run.relative_to(tmp_path)}: pid 4242 on nodeB is training it right now"
        in result.out
    ), result.out
    assert run.is_dir()
    # this host would retry it, but finds nodeB's lease once it holds the lock
    result = trainer(*TINY, "max_retries=3")
    assert "another process is training it" in result.err + result.out, result.err
    assert read_lease(run).host == "nodeB"  # untouched
    assert yaml.safe_load((run / "status.yaml").read_text())["state"] == "failed"


def test_a_stale_lease_of_another_node_reads_killed_and_resumes(trainer, tmp_path):
    assert trainer(*TINY).code == 0
    (run,) = run_dirs(tmp_path)
    set_status(run, state="running", host="nodeB", pid=4242)
    heard = fake_lease(run, "nodeB", age_s=3 * 3600, interval_s=30)

    out = trainer("status", EXPERIMENT).out
    local = heard.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert f"  killed (nodeB, last heard at {local})  " in line(out, run.name), out
    assert row(out, run.name)[-1] == "-" and "1 killed" in out
    out = trainer("validate", *TINY).out
    assert "resume (killed)" in out, out
    result = trainer(*TINY)
    assert result.code == 0 and "resume (killed)" in result.err + result.out
    assert yaml.safe_load((run / "status.yaml").read_text())["state"] == "finished"
    assert not (run / LEASE).exists()

    set_status(run, state="failed", error="RuntimeError: boom")
    fake_lease(run, "nodeB", age_s=3 * 3600, interval_s=30)
    assert trainer("rm-failed", EXPERIMENT, "--yes").code == 0
    assert not run.exists()


def test_a_dead_run_of_this_host_reads_killed_without_a_note(trainer, tmp_path):
    assert trainer(*TINY).code == 0
    (run,) = run_dirs(tmp_path)
    set_status(run, state="running", host=socket.gethostname(), pid=4242)
    fake_lease(run, socket.gethostname(), age_s=0)  # fresh, but no process holds the lock
    out = trainer("status", EXPERIMENT).out
    assert row(out, run.name)[1:3] == ["killed", "2/2"], out


def test_the_sweep_tally_reads_a_run_of_another_node_as_running_there(trainer, tmp_path):
    from sweeptrainer.run.outcome import _folder_outcome

    assert trainer(*TINY).code == 0
    (run,) = run_dirs(tmp_path)
    set_status(run, state="running", host="nodeB", pid=4242)
    fake_lease(run, "nodeB", age_s=0)
    outcome = _folder_outcome(RunDir(run), "2000-01-01T00:00:00")
    assert (outcome.state, outcome.error) == ("running", "running on nodeB")
    fake_lease(run, "nodeB", age_s=3 * 3600, interval_s=30)
    assert _folder_outcome(RunDir(run), "2000-01-01T00:00:00").state == "interrupted"


def test_heartbeat_s_must_be_a_positive_number(trainer):
    for value in ("0", "-1", "abc"):
        result = trainer("validate", *TINY, f"heartbeat_s={value}")
        said = result.out + result.err
        assert result.code == 2 and "heartbeat_s: expected a positive number of seconds" in said


# ------------------------------------------------------------- a real process on "nodeB"


def _unshare_problem() -> str:
    """Why a UTS namespace with its own hostname cannot be made here ("" when it can)."""
    if shutil.which("unshare") is None or shutil.which("bash") is None:
        return "needs unshare(1) and bash"
    try:
        probe = subprocess.run(["unshare", "--uts", "--fork", "bash", "-c", "hostname nodeB"],
                               capture_output=True, text=True, timeout=60)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"unshare failed: {err}"
    if probe.returncode != 0:
        return f"unshare --uts is not permitted here: {probe.stderr.strip()}"
    return ""


@pytest.mark.slow
def test_a_run_killed_on_another_node_reads_running_there_until_its_lease_is_stale(
    trainer, tmp_path
):
    """Acceptance: a run trained under hostname nodeB is SIGKILLed (its lock goes with it);
    from this host it reads `running` on nodeB, rm-failed keeps it (also as `failed`: a retry
    that just took it), and once its lease is stale it reads killed (nodeB, last heard ...)."""
    problem = _unshare_problem()
    if problem:
        pytest.skip(problem)
    args = ("training_type=step", "iterations=100000", "eval_frequency=1000",
            "progress_bar=false", "heartbeat_s=1", "~loggers.tensorboard")  # fmt: skip
    python = shlex.join([sys.executable, "-m", "sweeptrainer", *args])
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["PYTHONPATH"] = str(ROOT)
    log = tmp_path / "nodeB.log"
    with open(log, "w") as output:
        proc = subprocess.Popen(
            ["unshare", "--uts", "--fork", "bash", "-c", f"hostname nodeB && exec {python}"],
            cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    training = tmp_path / "results" / "default" / "training"
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        first = None
        while True:  # until it trains, and has just refreshed its lease: the longest window
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "nodeB's run did not start"
            runs = list(training.iterdir()) if training.is_dir() else []
            lease = read_lease(runs[0]) if runs else None
            status = runs and (runs[0] / "status.yaml").is_file() and (
                yaml.safe_load((runs[0] / "status.yaml").read_text()) or {}
            ).get("state")  # fmt: skip
            if lease is not None and status == "running":
                if first is not None and lease.heartbeat != first.heartbeat:
                    break
                first = first or lease
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    (run,) = runs
    assert lease.host == "nodeB" and activity(run).elsewhere

    out = trainer("status", EXPERIMENT).out
    assert "  running on nodeB  " in line(out, run.name), out
    assert row(out, run.name)[-1] == f"nodeB:{lease.pid}", out
    result = trainer("rm-failed", EXPERIMENT, "--yes")
    assert run.is_dir(), result.out
    set_status(run, state="failed", error="RuntimeError: an attempt before")
    result = trainer("rm-failed", EXPERIMENT, "--yes")
    assert (
        f"kept {run.relative_to(tmp_path)}: pid {lease.pid} on nodeB is training it right now"
        in result.out
    )
    assert run.is_dir()
    checked_in = time.monotonic() - killed_at
    assert checked_in < lease.stale_after_s, f"the checks took {checked_in:.1f} s: too slow"

    set_status(run, state="running")  # as nodeB's killed process left it
    time.sleep(max(0.0, lease.stale_after_s - (time.monotonic() - killed_at)) + 0.5)
    out = trainer("status", EXPERIMENT).out
    assert "  killed (nodeB, last heard at " in line(out, run.name), out
