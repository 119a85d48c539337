"""Sweeps on Hydra's launchers: the same runs whatever the engine, failures isolated,
concurrent launches never train a run twice."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import SUBPROCESS_TIMEOUT

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SWEEP = ("-m", "seed=1,2,3,4", "dataset=Wine", "iterations=4", "progress_bar=false")
JOBLIB = ("hydra/launcher=joblib", "hydra.launcher.n_jobs=2")


def trainer(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sweeptrainer", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)  # fmt: skip


def results(cwd: Path, experiment: str) -> dict[str, dict]:
    """results.yaml of every finished run, times left out."""
    out = {}
    for run in sorted((cwd / "results" / experiment / "training").iterdir()):
        if not (run / "results.yaml").is_file():
            continue
        data = yaml.safe_load((run / "results.yaml").read_text())
        out[run.name] = {k: v for k, v in data.items() if k not in ("train_time_s", "time_s")}
    return out


def test_launchers_give_the_same_runs_and_isolate_a_failure(tmp_path):
    # 6 runs: 4 train normally, the two at learning rate 1e12 fail (NaN loss)
    sweep = ("-m", "learning_rate=0.001,0.01,1e12", "seed=1,2", "optimizer=SGD", "dataset=Wine",
             "iterations=3", "progress_bar=false")  # fmt: skip
    launchers = (
        ((), "basic"),
        (JOBLIB, "joblib"),
        (("hydra/launcher=submitit_local",), "submitit"),
    )
    for launcher, experiment in launchers:
        result = trainer(tmp_path, *sweep, *launcher, f"experiment_id={experiment}")
        assert result.returncode == 1, result.stderr
        assert "sweep: 6 runs: 4 trained, 0 skipped (finished before), 2 failed" in result.stdout
        assert "failed: Wine_FFNN_SGD_1e+12_32_epoch_3_None_1: TrainingError" in result.stdout
        assert "train.log" in result.stdout
    assert len(results(tmp_path, "basic")) == 4
    assert (
        results(tmp_path, "basic") == results(tmp_path, "joblib") == results(tmp_path, "submitit")
    )


def test_two_concurrent_sweeps_train_each_run_once(tmp_path):
    args = (*SWEEP, *JOBLIB, "+callbacks.slow._target_=tests.helpers.Slow",
            "+callbacks.slow.seconds=0.02")  # fmt: skip
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [
        subprocess.Popen([sys.executable, "-m", "sweeptrainer", *args], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env={**__import__("os").environ, **env})
        for _ in range(2)
    ]  # fmt: skip
    outputs = [p.communicate(timeout=SUBPROCESS_TIMEOUT)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    # "[run 2/4] train NAME on cpu (new) -> ...": the run's place in the sweep, then its name
    trained = [ln.partition("] ")[2] for out in outputs for ln in out.splitlines()
               if re.match(r"\[run \d+/4\] train ", ln)]  # fmt: skip
    names = [ln.split()[1] for ln in trained]
    assert len(names) == 4 and len(set(names)) == 4, trained  # each run trained exactly once
    runs = list((tmp_path / "results/default/training").iterdir())
    assert all(yaml.safe_load((r / "status.yaml").read_text())["state"] == "finished" for r in runs)
    # each command's tally: its own runs trained, the other's "trained by another process",
    # none "finished before" (issue 21, item 4)
    tallies = [
        re.search(
            r"sweep: 4 runs: (\d+) trained, (?:(\d+) trained by another "
            r"process, )?0 skipped \(finished before\)",
            out,
        )
        for out in outputs
    ]
    assert all(tallies), outputs
    mine = [int(t.group(1)) for t in tallies]
    assert sum(mine) == 4 and all(int(t.group(1)) + int(t.group(2) or 0) == 4 for t in tallies)


def test_torchrun_two_processes_match_one_and_only_rank_0_writes(tmp_path):
    run = ("dataset=Wine", "model.dropout=0.0", "iterations=3", "progress_bar=false")
    one = trainer(tmp_path, *run, "experiment_id=one")
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m",
         "sweeptrainer", *run, "experiment_id=two"],
        cwd=tmp_path, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
    )  # fmt: skip
    assert two.returncode == 0, two.stdout + two.stderr
    assert two.stdout.count("finished Wine_FFNN") == 1  # rank 1 prints no progress
    (a,), (b,) = ((tmp_path / "results" / e / "training").iterdir() for e in ("one", "two"))
    import pandas as pd

    ma, mb = (pd.read_csv(r / "metrics.csv").drop(columns="elapsed_s") for r in (a, b))
    pd.testing.assert_frame_equal(ma, mb, rtol=1e-5)
    ra, rb = (yaml.safe_load((r / "results.yaml").read_text()) for r in (a, b))
    assert ra["test"] == pytest.approx(rb["test"], rel=1e-5)
    # rank 0 alone wrote the folder: one event file, one start line in the log
    assert len(list((b / "tensorboard").iterdir())) == 1
    assert (b / "train.log").read_text().count(" on cpu (new)") == 1
    assert sorted(p.name for p in b.iterdir()) == sorted(p.name for p in a.iterdir())


def _node(cwd: Path, rank: int, port: int, *args: str) -> subprocess.Popen:
    """One node rank of a two-node torchrun on loopback (a node per process group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
         f"--node_rank={rank}", "--master_addr=127.0.0.1", f"--master_port={port}", "-m",
         "sweeptrainer", *args],
        cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def _kill_node(agent: int) -> None:
    """SIGKILL a node: its torchrun agent and its workers (torchrun starts each worker in a
    session of its own, so killing the agent's process group leaves the worker training)."""
    import os
    import signal

    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # pid (comm) state ppid ...: the comm may hold spaces, the rest follows ")"
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == agent:
            children.append(int(stat.parent.name))
    for pid in [*children, agent]:
        try:
            os.killpg(pid, signal.SIGKILL)  # each worker leads its own session
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, signal.SIGKILL)


def test_two_torchrun_nodes_train_one_run_and_a_killed_node_stops_the_other(tmp_path):
    """Issue 32: two node ranks on loopback train one run equal to one process; SIGKILL of
    node rank 1 ends node rank 0 within the collective timeout with a clear message, the
    run `interrupted`; both nodes again resume it to the same result."""
    import socket
    import time

    import pandas as pd

    run = ("dataset=Wine", "model.dropout=0.0", "training_type=step", "iterations=120",
           "eval_frequency=20", "progress_bar=false", "distributed_timeout_s=20")  # fmt: skip
    one = trainer(tmp_path, *run, "experiment_id=one")
    assert one.returncode == 0, one.stderr
    slow = ("+callbacks.slow._target_=tests.helpers.Slow", "+callbacks.slow.seconds=0.05")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nodes = [_node(tmp_path, r, port, *run, *slow, "experiment_id=two") for r in (0, 1)]
    training = tmp_path / "results/two/training"
    deadline = time.monotonic() + 300
    while not list(training.glob("*/states/last.pt")):
        assert time.monotonic() < deadline and all(n.poll() is None for n in nodes), [
            n.communicate()[0] for n in nodes if n.poll() is not None
        ]
        time.sleep(0.1)
    _kill_node(nodes[1].pid)
    killed = time.monotonic()
    out, _ = nodes[0].communicate(timeout=SUBPROCESS_TIMEOUT)
    nodes[1].communicate(timeout=SUBPROCESS_TIMEOUT)
    assert time.monotonic() - killed < 20 + 30, "node rank 0 waited past the timeout"
    assert nodes[0].returncode != 0
    assert "another process of this run died or stopped answering" in out, out
    (run_dir,) = training.iterdir()
    assert yaml.safe_load((run_dir / "status.yaml").read_text())["state"] == "interrupted"

    port += 1
    again = [_node(tmp_path, r, port, *run, *slow, "experiment_id=two") for r in (0, 1)]
    outs = [n.communicate(timeout=SUBPROCESS_TIMEOUT)[0] for n in again]
    assert [n.returncode for n in again] == [0, 0], outs
    assert "resume (interrupted)" in (run_dir / "train.log").read_text()
    (a,) = (tmp_path / "results/one/training").iterdir()
    ma, mb = (pd.read_csv(r / "metrics.csv").drop(columns="elapsed_s") for r in (a, run_dir))
    pd.testing.assert_frame_equal(ma, mb, rtol=1e-5)
