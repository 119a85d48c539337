"""A results folder is untrusted input (the hardening issue, items 17, 18, 19 and 21): every
file of a run or sweep folder is read through one reader (io/untrusted.py) that never
follows a link, never waits on a FIFO, never expands a YAML alias bomb and never reads more
than a bound; a file of a shape it does not expect is ``damaged: <file>: <what>``, and the
other runs go on. The commands that could hang or blow up run in a child process, killed
past a wall-clock limit, its CPU time and peak memory measured."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY, run_dirs, snapshot

RUNS = TINY  # what the shared `swept` fixture trained: its runs are found again
WALL_S = 60  # a child still running then hangs: killed, and the test fails
CPU_S = 10  # the most CPU time a child may spend on a hostile folder
RSS_MB = 500  # its most memory


@pytest.fixture
def sweep(trainer, tmp_path, swept):
    """A copy of that sweep's results here: (first run, second run, sweep folder)."""
    shutil.copytree(swept, tmp_path / "results", symlinks=True)
    first, second = run_dirs(tmp_path)
    (folder,) = (tmp_path / "results/default/sweeps").iterdir()
    return first, second, folder


@dataclass
class Child:
    code: int
    out: str
    err: str
    wall_s: float
    cpu_s: float
    rss_mb: float


# Runs the command and writes its CPU time and peak memory. A process started from pytest
# would report pytest's own peak (Linux keeps the peak of the memory an exec replaced), so
# the command is started from this small process instead.
MEASURE = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{usage.ru_utime + usage.ru_stime} {usage.ru_maxrss / 1024}")
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def child(cwd: Path, *args: str) -> Child:
    """``trainer ARGS`` in a child process: its exit code, output, wall and CPU time, and
    peak memory; killed (with what it started) after WALL_S."""
    usage = cwd / ".usage"
    command = [sys.executable, "-c", MEASURE, str(usage), sys.executable, "-m", "sweeptrainer"]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([*command, *args], cwd=cwd, stdout=out, stderr=err, text=True,
                                start_new_session=True)  # fmt: skip
        try:
            proc.wait(timeout=WALL_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        cpu, rss = map(float, usage.read_text().split()) if usage.is_file() else (0.0, 0.0)
        usage.unlink(missing_ok=True)
        return Child(proc.returncode, out.read(), err.read(), wall, cpu, rss)


def assert_bounded(result: Child) -> None:
    assert result.wall_s < WALL_S, f"hung: killed after {WALL_S} s"
    assert "Traceback" not in result.err, result.err
    assert result.cpu_s < CPU_S, f"{result.cpu_s:.1f} s of CPU"
    assert result.rss_mb < RSS_MB, f"{result.rss_mb:.0f} MB"


# -- item 17: YAML alias bombs ----------------------------------------------------------------
def bomb(levels: int = 9) -> str:
    """A "billion laughs" mapping: 10**levels nodes once its aliases are expanded."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def _plant(path: Path, used: str) -> None:
    """The bomb beside the file's own content, used where the readers look."""
    path.write_text(bomb() + path.read_text() + used)


@pytest.mark.parametrize(
    ("file", "used", "command"),
    [
        # each a command in a child process with bounded memory: one of them in the fast
        # suite (inference, which hung), the others slow
        pytest.param("config.yaml", "", "status", marks=pytest.mark.slow),
        pytest.param("config.yaml", "", "postprocess", marks=pytest.mark.slow),
        ("config.yaml", "", "inference"),
        pytest.param("results.yaml", "summary: *l9\n", "status", marks=pytest.mark.slow),
        pytest.param("results.yaml", "summary: *l9\n", "postprocess", marks=pytest.mark.slow),
        pytest.param("runs.yaml", "", "status", marks=pytest.mark.slow),
    ],
)
def test_a_yaml_alias_bomb_is_damaged_not_expanded(tmp_path, sweep, file, used, command):
    first, second, folder = sweep
    if file == "runs.yaml":  # as written before it was JSON: block YAML
        record = yaml.safe_load((folder / file).read_text())
        record["runs"] = "*l9"
        text = yaml.safe_dump(record).replace("'*l9'", "*l9")
        (folder / file).write_text(bomb() + text)
    else:
        _plant(first / file, used)
    experiment = str(tmp_path / "results/default")
    args = {
        "status": ("status", experiment),
        "postprocess": ("postprocess", experiment, "--no-plots"),
        "inference": ("inference", str(first), "Digits:test", str(tmp_path / "out.csv")),
    }[command]

    result = child(tmp_path, *args)
    assert_bounded(result)
    said = result.out + result.err
    where = folder if file == "runs.yaml" else first
    expanded = f"{where / file}: its aliases expand it by"
    if command == "status":
        damaged = f"damaged: {expanded}" if file == "runs.yaml" else f"{first.name}: {expanded}"
        assert result.code == 0 and damaged in result.out, said
        assert f"{second.name}  finished" in result.out  # the other run goes on
    elif command == "postprocess":
        import pandas as pd

        assert result.code == 0, said
        runs = pd.read_csv(tmp_path / "results/default/postprocessing/runs.csv").set_index("run")
        assert runs.loc[second.name, "status"] == "finished"
        assert runs.loc[first.name, "status"] == "damaged"
        assert expanded in runs.loc[first.name, "error"]
    else:
        assert result.code == 2 and "trainer: error: damaged: " in result.err
        assert not (tmp_path / "out.csv").exists()


def test_yaml_the_trainer_writes_has_no_aliases_and_a_few_are_read(tmp_path):
    """An object used twice is written twice (never an anchor), and a file with a few
    aliases (written by hand, or before) still reads; one that loops does not."""
    from sweeptrainer.errors import DamagedRunError
    from sweeptrainer.io.atomic import atomic_write_yaml
    from sweeptrainer.io.untrusted import read_yaml

    shared = {"accuracy": 0.9}
    atomic_write_yaml(tmp_path / "results.yaml", {"dev": shared, "test": shared})
    assert "&" not in (tmp_path / "results.yaml").read_text()
    (tmp_path / "a.yaml").write_text("a: &a {x: [1, 2]}\nb: *a\nc: [*a, *a]\n")
    assert read_yaml(tmp_path / "a.yaml") == {"a": {"x": [1, 2]}, "b": {"x": [1, 2]},
                                              "c": [{"x": [1, 2]}] * 2}  # fmt: skip
    (tmp_path / "loop.yaml").write_text("a: &a [1, *a]\n")
    with pytest.raises(DamagedRunError, match="holds it"):
        read_yaml(tmp_path / "loop.yaml")
    (tmp_path / "deep.yaml").write_text("[" * 150 + "]" * 150 + "\n")
    with pytest.raises(DamagedRunError, match="nested more than 100 levels"):
        read_yaml(tmp_path / "deep.yaml")


# -- item 18: the stop file -------------------------------------------------------------------
PLANT = '''
"""A callback that makes the sweep's stop file a FIFO while the sweep runs (the command
removes a stop file left by an earlier one before it starts), then waits until the trainer
looks at it again; built for a later run (the FIFO, or a folder left by someone, is there),
with ``then_stop``, it sends its own process SIGTERM, which must still stop the sweep."""

import os
import signal
import time
from pathlib import Path


class PlantStop:
    def __init__(self, stop, then_stop=False):
        from sweeptrainer.training.signals import LOOK_EVERY_S

        path = Path(stop)
        if path.exists():
            if then_stop:
                os.kill(os.getpid(), signal.SIGTERM)
            return
        os.mkfifo(path)
        time.sleep(LOOK_EVERY_S + 0.1)  # the next step looks at the stop file

    def cb_on_train_begin(self):
        return None
'''


def make_odd(stop: Path, kind: str, victim: Path | None = None) -> None:
    """Make ``stop`` a folder, a FIFO, or a link (to ``victim``, else to /dev/zero)."""
    if kind == "folder":
        stop.mkdir()
    elif kind == "fifo":
        os.mkfifo(stop)
    else:
        stop.symlink_to(victim or "/dev/zero")


STOP_KINDS = ["folder", "fifo", "link to /dev/zero", "link to a file outside"]


@pytest.mark.parametrize("kind", STOP_KINDS)
def test_a_stop_file_that_is_no_file_is_ignored_with_one_warning(tmp_path, kind):
    """Read as it is read during a sweep: at once, without waiting or reading much, and
    ignored (the victim file outside, which says SIGINT, is not followed)."""
    from sweeptrainer.training.signals import StopSignals

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("SIGINT\n")
    before = snapshot(outside)
    stop = tmp_path / "sweep" / "stop"
    stop.parent.mkdir()
    make_odd(stop, kind.split()[0], outside / "victim" if "outside" in kind else None)
    signals = StopSignals(stop)
    start = time.perf_counter()
    with pytest.MonkeyPatch.context() as patch:
        warnings: list[str] = []
        patch.setattr("sweeptrainer.training.signals.log.warning", warnings.append)
        for _ in range(3):
            assert signals.look() is None
    assert time.perf_counter() - start < 1
    assert len(warnings) == 1 and f"{stop}: " in warnings[0] and "ignored" in warnings[0]
    assert snapshot(outside) == before
    stop.parent.joinpath("stop2").write_text("SIGINT\n")  # a real stop still reads
    assert StopSignals(stop.parent / "stop2").look() == signal.SIGINT


@pytest.mark.slow  # real sweeps in child processes, 6-8 s each
@pytest.mark.parametrize(("kind", "then_stop"), [("folder", False), ("fifo", True)])
def test_a_sweep_with_an_odd_stop_file_runs_and_still_stops(tmp_path, kind, then_stop):
    """A whole sweep: the stop file planted as a folder (present when the command starts
    too) or a FIFO (made while the first run trains; SIGTERM in the second): no traceback,
    no hang, one warning, and SIGTERM still ends it."""
    folder = tmp_path / "results/default/sweeps/fixed"
    folder.mkdir(parents=True)
    (tmp_path / "plant.py").write_text(PLANT)  # the project's own code: importable
    if kind == "folder":
        (folder / "stop").mkdir()  # left by someone: the command cannot remove it
    plant = (
        "+callbacks.plant._target_=plant.PlantStop",
        f"+callbacks.plant.stop={folder / 'stop'}",
        f"+callbacks.plant.then_stop={then_stop}",
    )
    result = child(tmp_path, "-m", "seed=1,2", *RUNS, f"hydra.sweep.dir={folder}", *plant)
    assert result.wall_s < WALL_S, "hung"
    assert "Traceback" not in result.err, result.err
    said = result.out + result.err
    assert said.count(f"{folder / 'stop'}: ") == 1, said  # one warning
    if then_stop:
        assert result.code != 0 and "SIGTERM received" in said, said
        assert "2 trained" not in said
    else:
        assert result.code == 0 and "2 runs: 2 trained" in said, said


# -- item 19: a huge runs.yaml ----------------------------------------------------------------
def _record(folder: Path, runs: int, json: bool) -> None:
    names = (f"Digits_FFNN_Adam_0.001_32_epoch_2_None_{i}" for i in range(3, runs + 3))
    if json:
        from sweeptrainer.io import sweep_record

        sweep_record.write(folder, ["seed"], [(n, [f"seed={n[-1]}"]) for n in names])
        return
    with open(folder / "runs.yaml", "w") as f:  # block YAML, as written before
        f.write("swept:\n- seed\nruns:\n")
        f.writelines(f"- name: {n}\n  overrides:\n  - seed=1\n" for n in names)


@pytest.mark.parametrize(
    ("runs", "json"), [(50_000, True), (1_000_000, False)], ids=["50,000 runs", "1,000,000 runs"]
)
def test_status_of_a_huge_sweep_record_is_bounded(tmp_path, sweep, runs, json):
    """A record is parsed once and the pending runs listed up to a few (``N more
    pending``); one past the bound (a million runs) is not read: damaged, said, and the
    runs there are listed all the same."""
    first, second, folder = sweep
    _record(folder, runs, json)
    result = child(tmp_path, "status", str(tmp_path / "results/default"))
    assert_bounded(result)
    assert result.code == 0
    lines = result.out.splitlines()
    for run in (first, second):  # listed all the same
        assert any(line.split()[:2] == [run.name, "finished"] for line in lines), result.out
    if json:
        assert len(lines) < 40
        assert f"... {runs - 20:,} more pending" in result.out
        assert f"2 finished, {runs} pending" in result.out
    else:
        assert f"damaged: {folder / 'runs.yaml'}: " in result.out
        assert "more than the 8.0 MB sweeptrainer reads" in result.out


# -- item 21: damaged run files ---------------------------------------------------------------
RESULTS_DAMAGE = {
    "dev: [1, 2]": ("dev", [1, 2]),
    "test: a string": ("test", "a string"),
    "tracking_metric: [1]": ("tracking_metric", [1]),
    "stratified: [1]": ("stratified", [1]),
}


@pytest.mark.parametrize("damage", list(RESULTS_DAMAGE))
def test_results_of_the_wrong_shape_are_damaged_everywhere(trainer, tmp_path, sweep, damage):
    import pandas as pd

    first, second, _ = sweep
    key, value = RESULTS_DAMAGE[damage]
    results = yaml.safe_load((first / "results.yaml").read_text())
    (first / "results.yaml").write_text(yaml.safe_dump({**results, key: value}))
    said = f"{first.name}/results.yaml: {key}: expected"  # the sweep says relative paths
    experiment = str(tmp_path / "results/default")

    status = trainer("status", experiment)
    assert status.code == 0, status.err
    assert f"damaged: {first.name}: " in status.out and said in status.out
    assert "1 damaged, 1 finished" in status.out
    post = trainer("postprocess", experiment, "--no-plots")
    assert post.code == 0, post.err
    runs = pd.read_csv(tmp_path / "results/default/postprocessing/runs.csv").set_index("run")
    assert runs.loc[first.name, "status"] == "damaged" and said in runs.loc[first.name, "error"]
    assert runs.loc[second.name, "status"] == "finished"
    again = trainer("-m", "seed=1,2", *RUNS)
    assert again.code == 1 and "Traceback" not in again.err
    assert "1 skipped (finished before), 0 failed, 1 damaged" in again.out, again.out
    assert said in again.out


CONFIG_DAMAGE = {
    "no model": (lambda c: c.pop("model"), "model: expected a mapping"),
    "dataset: 5": (lambda c: c.update(dataset=5), "dataset: expected a mapping"),
    "inference_batch_size: abc": (lambda c: c.update(inference_batch_size="abc"),
                                  "inference_batch_size: expected a positive integer"),
    "no inference_batch_size": (lambda c: c.pop("inference_batch_size"),
                                "inference_batch_size: missing"),
    "no dataset.id": (lambda c: c["dataset"].pop("id"), "dataset.id: missing"),
}  # fmt: skip


@pytest.mark.parametrize("damage", list(CONFIG_DAMAGE))
def test_a_config_of_the_wrong_shape_is_damaged_in_inference(trainer, tmp_path, sweep, damage):
    first, _, _ = sweep
    edit, said = CONFIG_DAMAGE[damage]
    config = yaml.safe_load((first / "config.yaml").read_text())
    edit(config)
    (first / "config.yaml").write_text(yaml.safe_dump(config))

    result = trainer("inference", str(first), "Digits:test", str(tmp_path / "out.csv"))
    assert result.code == 2, result.err
    assert f"trainer: error: damaged: {first / 'config.yaml'}: {said}" in result.err
    assert not (tmp_path / "out.csv").exists()
    if damage.startswith(("no model", "dataset")):  # what status reads too
        status = trainer("status", str(tmp_path / "results/default"))
        assert status.code == 0 and f"damaged: {first.name}: " in status.out
        assert "1 damaged, 1 finished" in status.out


@pytest.mark.parametrize("line", [",,,,,,,", "inf,1,1,1,1,1,1,1", "2.5,1,1,1,1,1,1,1"])
def test_a_damaged_metrics_line_is_damaged_in_status(trainer, tmp_path, sweep, line):
    first, second, _ = sweep
    with open(first / "metrics.csv", "a") as f:
        f.write(line + "\n")
    experiment = str(tmp_path / "results/default")
    status = trainer("status", experiment)
    assert status.code == 0, status.err
    assert f"damaged: {first.name}: {first / 'metrics.csv'}: row 3: iteration" in status.out
    assert f"{second.name}  finished" in status.out
    post = trainer("postprocess", experiment, "--no-plots")
    assert post.code == 0, post.err


def test_an_empty_or_scalar_yaml_file_parses_without_a_walk(tmp_path):
    """An empty status.yaml (a crash between create and write, a truncation) is YAML's null:
    the bound walk has nothing to walk, and the readers then call it damaged or absent."""
    from sweeptrainer.io.untrusted import parse_yaml

    assert parse_yaml(b"", tmp_path / "status.yaml") is None
    assert parse_yaml(b"3\n", tmp_path / "status.yaml") == 3
