"""What a terminal shows: the batch bar with the running loss, ``[run k/n]`` in a sweep,
evaluation lines within 100 columns, the sweep's tally with its time."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios

import pytest

from sweeptrainer.training.progress import Progress, evaluation_line
from tests.conftest import SUBPROCESS_TIMEOUT


def _in_a_terminal(args: list[str], cwd) -> tuple[int, str]:
    """Run ``trainer ARGS`` with stdout and stderr on a pseudo-terminal 120 columns wide."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeptrainer", *args],
        stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, cwd=cwd, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    chunks = []
    try:
        while select.select([master], [], [], SUBPROCESS_TIMEOUT)[0]:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=SUBPROCESS_TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", errors="replace")


@pytest.mark.slow  # a sweep in a pseudo-terminal, in a child process (about 7 s)
def test_a_sweep_in_a_terminal_shows_batch_bars_with_the_loss_and_its_place(tmp_path):
    code, text = _in_a_terminal(["-m", "seed=1,2", "iterations=1", "batch_size=8"], tmp_path)
    assert code == 0, text
    assert "[run 1/2] train Digits" in text and "[run 2/2] train Digits" in text
    # tqdm's batch bar of the epoch: 1,257 samples in batches of 8 = 158 batches
    bar = re.search(r"epoch 1:\s+\d+%\|[^|]*\|\s*\d+/158 \[[^\]]*batch/s, loss \d+\.\d{4}\]", text)
    assert bar, text[-3000:]
    assert re.search(r"sweep: 2 runs: 2 trained, .*; took \d+:\d\d", text)


def test_no_bars_when_switched_off_or_not_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert Progress.open(False, "epoch", 2, 0, 10) is None  # progress_bar=false
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert Progress.open(True, "epoch", 2, 0, 10) is None  # piped, redirected, a job's log


def test_evaluation_lines_fit_100_columns_and_line_up():
    rows = [
        {"iteration": i, "train_loss": loss, "dev_loss": 0.5 / i, "dev_accuracy": 0.9 + i / 100,
         "dev_a_very_long_metric_name": 3075.0847 * i, "dev_mse": 12345.678, "dev_pcc": 0.7,
         "dev_ccc": 0.6, "dev_mae": 48.6368, "learning_rate": 1e-3, "elapsed_s": 1.0}
        for i, loss in ((1, 1.5665), (12, 0.0054))
    ]  # fmt: skip
    lines = [evaluation_line("epoch", r["iteration"], 20, r, i == 0) for i, r in enumerate(rows)]
    assert all(len(line) <= 100 for line in lines), lines
    assert lines[0].startswith("epoch  1/20  loss 1.5665") and lines[0].endswith("best")
    assert "acc 0.9100" in lines[0] and "a_very_long_" in lines[0] and "..." in lines[0]
    assert lines[0].index("| dev") == lines[1].index("| dev")  # aligned
    assert lines[0].index(" acc ") == lines[1].index(" acc ")


def test_status_lists_finished_running_and_pending_runs_of_a_sweep(trainer, tmp_path, monkeypatch):
    """A 4-run sweep stopped at once in its third run (its process still alive: the lock is
    held) lists 2 finished, 1 running with its progress, and 1 pending from the sweep's record."""
    from sweeptrainer.io.lock import RunLock
    from sweeptrainer.io.run_dir import RunDir
    from sweeptrainer.training.signals import StopNow

    save_state = RunDir.save_state

    def stop_in_the_third_run(self, name, state, **kwargs):
        save_state(self, name, state, **kwargs)
        if name == "last" and self.name.endswith("_3"):
            raise StopNow  # gone at once, as a killed process would be

    def save_here(self, names, state, durable=True):
        for name in (names,) if isinstance(names, str) else names:
            self.run_dir.save_state(name, state, durable=durable)

    from sweeptrainer.io.state_saver import StateSaver

    with monkeypatch.context() as patch:
        patch.setattr(RunDir, "save_state", stop_in_the_third_run)
        patch.setattr(StateSaver, "save", save_here)
        assert trainer("-m", "seed=1,2,3,4", "iterations=2", "progress_bar=false").code == 130
    experiment = tmp_path / "results/default"
    third = experiment / "training/Digits_FFNN_Adam_0.001_32_epoch_2_None_3"
    lock = RunLock(third)
    assert lock.acquire()  # as if its process were still training it
    try:
        result = trainer("status", str(experiment))
    finally:
        lock.release()
    assert result.code == 0, result.err
    rows = [line.split() for line in result.out.splitlines()[1:5]]
    assert [(r[0].rsplit("_", 1)[1], r[1]) for r in rows] == [
        ("1", "finished"), ("2", "finished"), ("3", "running"), ("4", "pending")
    ]  # fmt: skip
    assert rows[0][2] == "2/2" and rows[0][3] == "accuracy" and float(rows[0][4]) > 0.5
    assert rows[2][2] == "1/2" and rows[3][2] == "-"
    assert result.out.splitlines()[5] == "2 finished, 1 pending, 1 running"
