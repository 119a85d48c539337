"""sweeptrainer's benchmark suite: the trainer against the hand-written loop (``make bench``).

Every row is measured side by side in this one invocation: the commands of a row
alternate (trainer, hand-written, trainer, ...), each in a fresh process and a fresh
results folder, ``--repeats`` times; the table shows medians and, for paired rows, the
median of the per-pair ratios. The table is printed and written to ``benches/results.md``
with the machine's CPU and the date.

Rows (targets from the performance issue):
  start-up      ``trainer --help``, ``trainer list model``, ``import sweeptrainer``  <= 0.3 s
  single run    default Digits config vs handwritten.py digits, whole process     <= 1.2x
  per epoch     the median epoch (training, dev, and what the trainer saves and <= 1.15x
                logs per epoch), the two sides' epochs interleaved in one process
                (bench_epoch.py); below it, the epoch's training batches alone
  per step      MLP hidden 1024 on 20 000 x 256 synthetic, 3 epochs, ms/step      <= 1.03x
                (both sides in one process, bench_step.py)
  sweep         ``trainer -m seed=1..8`` vs 8 hand-written trainings, one process <= 1.25x
                (basic launcher), and the same with joblib, 2 jobs
  validate      ``trainer validate -m`` of a 1,000-run grid                        <= 10 s
  big sweep     a 200-run sweep: its first run starts; re-run, all finished     <= 10 s each
  busy          a run's training beside busy processes: default threads (half the
                cores) vs torch's default (all cores); both sweeptrainer
  busy-sweep    an 8-run sweep beside one busy process per core: default threads vs
                all cores (torch's default) and vs num_threads=1; whole commands
  postprocess   ``trainer postprocess`` on 100 synthetic runs, plots included     <= 3 s
  peak memory   max RSS of the single run vs the hand-written script              <= 1.1x
  files         an epoch over 2,000 PNG files, num_workers=2, vs a plain          <= 1.1x
                DataLoader loop (both sides in one process, bench_files.py)
  cache         a 4-run sweep on 400 audio files, preprocessing cached vs the
                same steps as transform (whole processes, bench_cache.py)
  eval          the dev evaluation of a 20 000-sample split split over 2 processes    <= 0.7x
                (torchrun, gloo, CPU) vs 1 process (bench_eval.py), one thread each
  table         a Files dataset of 100,000 files in one table, its cache built: the   <= 5 s
                command's start to its first run
  search        a 16-run grid on Digits (hydra/sweeper=search, sampler=grid) with    <= 0.5x
                pruner=halving vs the same grid trained to the end: wall time, the
                evaluations trained, the best dev accuracy and its configuration (same)
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TRAINER = (
    [str(BIN / "trainer")] if (BIN / "trainer").exists() else [sys.executable, "-m", "sweeptrainer"]
)
HANDWRITTEN = [sys.executable, str(HERE / "handwritten.py")]
QUIET = ["progress_bar=false"]
SEEDS = "1,2,3,4,5,6,7,8"


@dataclass
class Measurement:
    wall_s: float
    max_rss_mb: float
    value: float  # what the row compares: wall time, ms per step, ...


@dataclass
class Row:
    name: str
    unit: str
    target: str
    ours: list[Measurement] = field(default_factory=list)
    theirs: list[Measurement] = field(default_factory=list)  # empty: an absolute target
    limit: float | None = None  # on the ratio (paired rows) or on our median
    verdict: bool | None = None  # a row met or not by a check other than a number

    @property
    def ours_median(self) -> float | None:
        return statistics.median(m.value for m in self.ours) if self.ours else None

    @property
    def theirs_median(self) -> float | None:
        return statistics.median(m.value for m in self.theirs) if self.theirs else None

    @property
    def ratio(self) -> float | None:
        """Median of the per-pair ratios (each pair ran back to back)."""
        if not self.theirs:
            return None
        return statistics.median(
            a.value / b.value for a, b in zip(self.ours, self.theirs, strict=True)
        )

    @property
    def ratio_range(self) -> tuple[float, float] | None:
        """The smallest and largest per-pair ratio: how much the machine's noise moves it."""
        if not self.theirs:
            return None
        ratios = [a.value / b.value for a, b in zip(self.ours, self.theirs, strict=True)]
        return min(ratios), max(ratios)

    @property
    def met(self) -> bool | None:
        if self.verdict is not None:
            return self.verdict
        if self.limit is None:
            return None
        value = self.ratio if self.theirs else self.ours_median
        return value is not None and value <= self.limit


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[Measurement, str]:
    """Run ``cmd`` to the end: wall time, the peak RSS of that process alone, stdout."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # its own rusage (Linux: ru_maxrss in KiB)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err.read()}")
        return Measurement(wall, usage.ru_maxrss / 1024, wall), out.read()


def fresh(workdir: Path) -> Path:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    return workdir


def only_run(workdir: Path) -> Path:
    (path,) = (workdir / "results/default/training").iterdir()
    return path


# -- rows ---------------------------------------------------------------------------------
def startup(tmp: Path, repeats: int) -> list[Row]:
    commands = {
        "start-up: trainer --help": [*TRAINER, "--help"],
        "start-up: trainer list model": [*TRAINER, "list", "model"],
        "start-up: import sweeptrainer": [sys.executable, "-c", "import sweeptrainer"],
    }
    rows = {name: Row(name, "s", "<= 0.3 s" if "help" in name else "", limit=None)
            for name in commands}  # fmt: skip
    rows["start-up: trainer --help"].limit = 0.3
    for _ in range(repeats):
        for name, cmd in commands.items():
            rows[name].ours.append(run(cmd, tmp)[0])
    return list(rows.values())


def single(tmp: Path, repeats: int) -> list[Row]:
    wall = Row("single run, whole process (Digits)", "s", "<= 1.2x", limit=1.2)
    train = Row("  of which training", "s", "")
    epoch = Row("  median epoch in that process (epochs 2-20)", "ms", "")
    memory = Row("peak memory of the single run", "MB", "<= 1.1x", limit=1.1)
    accuracy = Row("  test accuracy (same work)", "", "")
    for _ in range(repeats):
        work = fresh(tmp / "single")
        ours, _ = run([*TRAINER, *QUIET], work)
        results = yaml.safe_load((only_run(work) / "results.yaml").read_text())
        theirs, out = run([*HANDWRITTEN, "digits"], work)
        hand = json.loads(out.splitlines()[-1])
        wall.ours.append(ours)
        wall.theirs.append(theirs)
        train.ours.append(Measurement(0, 0, results["train_time_s"]))
        train.theirs.append(Measurement(0, 0, hand["fit_time_s"]))
        epoch.ours.append(Measurement(0, 0, 1000 * _epoch_s(only_run(work))))
        epoch.theirs.append(Measurement(0, 0, 1000 * statistics.median(hand["epoch_s"][1:])))
        memory.ours.append(Measurement(0, 0, ours.max_rss_mb))
        memory.theirs.append(Measurement(0, 0, theirs.max_rss_mb))
        accuracy.ours.append(Measurement(0, 0, results["test"]["accuracy"]))
        accuracy.theirs.append(Measurement(0, 0, hand["test_accuracy"]))
    return [wall, train, epoch, accuracy, memory]


def _epoch_s(run_dir: Path) -> float:
    """The median epoch of a run, from its metrics.csv (``elapsed_s`` at each evaluation):
    training, dev evaluation, and the saving and logging of the epoch before; the first
    epoch (imports, warm-up) is left out, as on the hand-written side."""
    import csv

    with open(run_dir / "metrics.csv", encoding="utf-8") as f:
        elapsed = [float(row["elapsed_s"]) for row in csv.DictReader(f)]
    return statistics.median(b - a for a, b in itertools.pairwise(elapsed))


def _paired(tmp: Path, script: str, flag: str, rows: list[tuple[Row, str, str]]) -> list[Row]:
    """Rows from a script that alternates both sides in one process and prints a JSON line
    per pair; each row takes its two values from the keys named beside it."""
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    _, out = run([sys.executable, str(HERE / script), *flag.split()], tmp, env)
    for line in out.splitlines():
        if line.startswith("{"):
            pair = json.loads(line)
            for row, ours, theirs in rows:
                row.ours.append(Measurement(0, 0, pair[ours]))
                row.theirs.append(Measurement(0, 0, pair[theirs]))
    return [row for row, _, _ in rows]


def per_epoch(tmp: Path, repeats: int) -> list[Row]:
    """Interleaved in one process (bench_epoch.py): a callback runs one hand-written epoch
    after each of the trainer's, so the machine's drift slows both sides alike; a pair is
    one run (the median epoch of each side, epochs 2-20). The second row is the training
    loop alone: the epoch's batches, without the evaluation and what follows it."""
    epoch = Row("per epoch, interleaved in one process (Digits)", "ms", "<= 1.15x", limit=1.15)
    batches = Row("  its training batches alone (the training loop)", "ms", "")
    return _paired(
        tmp, "bench_epoch.py", f"--runs {repeats}",
        [(epoch, "trainer_ms", "handwritten_ms"),
         (batches, "trainer_batches_ms", "handwritten_batches_ms")],
    )  # fmt: skip


def per_step(tmp: Path, repeats: int) -> list[Row]:
    """In one process (bench_step.py): per-step times are short and noisy, so the pairs run
    back to back without process start-up in between, switching order every pair."""
    row = Row("per optimizer step (MLP 1024, synthetic)", "ms", "<= 1.03x", limit=1.03)
    return _paired(
        tmp, "bench_step.py", f"--pairs {repeats}", [(row, "trainer_ms", "handwritten_ms")]
    )


def sweep(tmp: Path, repeats: int) -> list[Row]:
    """The basic launcher (runs one after the other in the command's process) and joblib
    with 2 jobs, each against 8 hand-written trainings in one process."""
    basic = Row("8-run sweep, basic launcher (Digits)", "s", "<= 1.25x", limit=1.25)
    joblib = Row("  the same, hydra/launcher=joblib n_jobs=2", "s", "")
    parallel = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    for _ in range(repeats):
        work = fresh(tmp / "sweep")
        basic.ours.append(run([*TRAINER, "-m", f"seed={SEEDS}", *QUIET], work)[0])
        hand = run([*HANDWRITTEN, "digits", "--seeds", SEEDS], work)[0]
        basic.theirs.append(hand)
        work = fresh(tmp / "sweep")
        joblib.ours.append(run([*TRAINER, "-m", f"seed={SEEDS}", *QUIET, *parallel], work)[0])
        joblib.theirs.append(hand)
    return [basic, joblib]


def validate_grid(tmp: Path, repeats: int) -> list[Row]:
    """``trainer validate -m`` of a 10 x 10 x 10 grid: every run composed, checked, planned."""
    row = Row("start-up: trainer validate -m, 1,000-run grid", "s", "<= 10 s", limit=10.0)
    grid = ["-m", "seed=range(1,11)", "batch_size=range(8,18)",
            "learning_rate=0.1,0.05,0.02,0.01,0.005,0.002,0.001,0.0005,0.0002,0.0001"]  # fmt: skip
    for _ in range(repeats):
        row.ours.append(run([*TRAINER, "validate", *grid], fresh(tmp / "validate"))[0])
    return [row]


def big_sweep(tmp: Path, repeats: int) -> list[Row]:
    """A 200-run sweep of 1-iteration Wine runs: how soon its first run starts, and how long
    the same command takes once all 200 are finished (it only skips them). ``repeats`` is
    ignored: one sweep (about 3 minutes here) is the measurement."""
    first = Row("200-run sweep: its first run starts after", "s", "<= 10 s", limit=10.0)
    skip = Row("  the same command, all 200 finished (skips)", "s", "<= 10 s", limit=10.0)
    work = fresh(tmp / "big")
    args = [*TRAINER, "-m", "seed=range(200)", "dataset=Wine", "iterations=1", *QUIET]
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    assert proc.stdout is not None
    started = None
    for line in proc.stdout:
        if started is None and line.startswith("[run 1/200] train "):
            started = time.perf_counter() - start
    proc.wait()
    if proc.returncode != 0 or started is None:
        raise RuntimeError(f"the 200-run sweep failed (exit {proc.returncode})")
    first.ours.append(Measurement(0, 0, started))
    skip.ours.append(run(args, work)[0])
    return [first, skip]


TABLE_FILES = 100_000


def write_table_files(root: Path, n: int = TABLE_FILES) -> None:
    """``n`` tiny .npy files (2 x 4 values) in folders of 1,000, listed in all.csv with a
    label: written once and kept (about 20 s), the folder named by ``n``."""
    import numpy as np
    import pandas as pd

    if (root / "all.csv").is_file():
        return
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        name = f"{i // 1000:03d}/{i:06d}.npy"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        np.save(root / name, rng.normal(size=(2, 4)).astype(np.float32))
        rows.append((name, "ab"[i % 2]))
    pd.DataFrame(rows, columns=["file", "label"]).to_csv(root / "all.csv.tmp", index=False)
    os.replace(root / "all.csv.tmp", root / "all.csv")


def large_table(tmp: Path, repeats: int) -> list[Row]:
    """A Files dataset of 100,000 files in one index table, its preprocessing cache built:
    the command's start to its first run (``train ...``): listing, stat, the header check
    (recorded beside the cache), the cache's proof, the plan and the model."""
    row = Row("100,000-file table, cache built: start to the first run", "s", "<= 5 s", limit=5.0)
    data = Path(tempfile.gettempdir()) / f"sweeptrainer-bench-table-{TABLE_FILES}"
    write_table_files(data)
    step = "[{_target_:sweeptrainer.data.transforms.Standardize}]"
    args = ["dataset=Files", f"dataset.path={data}", "dataset.train=null", "dataset.dev=null",
            "dataset.test=null", "dataset.index=all.csv", f"dataset.preprocess={step}",
            *QUIET]  # fmt: skip
    run([*TRAINER, "preprocess", *args], fresh(tmp / "table"))  # builds what is missing
    for _ in range(repeats):
        work = fresh(tmp / "table")
        start = time.perf_counter()
        proc = subprocess.Popen([*TRAINER, *args], cwd=work, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)  # fmt: skip
        assert proc.stdout is not None
        started = None
        for line in proc.stdout:
            if line.startswith("train "):
                started = time.perf_counter() - start
                break
        proc.kill()
        proc.wait()
        if started is None:
            raise RuntimeError("the 100,000-file run did not start")
        row.ours.append(Measurement(0, 0, started))
    return [row]


def busy(tmp: Path, repeats: int) -> list[Row]:
    """One Digits run beside two busy processes (a shared machine): training time with the
    default threads (half the cores) against torch's default (all cores). Both sides are
    sweeptrainer; the 'hand-written' column is the run with num_threads=<all cores>."""
    row = Row("busy machine: a run's training, default threads", "s", "")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(cores or 1)]  # fmt: skip
    try:
        for _ in range(repeats):
            for threads, side in (("null", row.ours), (str(cores), row.theirs)):
                work = fresh(tmp / "busy")
                run([*TRAINER, *QUIET, "iterations=10", f"num_threads={threads}"], work)
                results = yaml.safe_load((only_run(work) / "results.yaml").read_text())
                side.append(Measurement(0, 0, results["train_time_s"]))
    finally:
        for spinner in spinners:
            spinner.kill()
    return [row]


def busy_sweep(tmp: Path, repeats: int) -> list[Row]:
    """An 8-run sweep (basic launcher, 3 epochs a run) beside one busy-loop process per
    core: the whole command with the default threads against torch's own default (all
    cores, what sweeptrainer used before it chose), and against num_threads=1. Both sides
    are sweeptrainer; the 'hand-written' column is the other thread count."""
    before = Row("busy machine: 8-run sweep, default vs all-core threads", "s", "")
    one = Row("  the same, default vs num_threads=1", "s", "")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(cores or 1)]  # fmt: skip
    args = [*TRAINER, "-m", f"seed={SEEDS}", *QUIET, "iterations=3"]
    try:
        for _ in range(repeats):
            ours = run([*args, "num_threads=null"], fresh(tmp / "busy-sweep"))[0]
            before.ours.append(ours)
            one.ours.append(ours)
            before.theirs.append(run([*args, f"num_threads={cores}"], fresh(tmp / "busy-sweep"))[0])
            one.theirs.append(run([*args, "num_threads=1"], fresh(tmp / "busy-sweep"))[0])
    finally:
        for spinner in spinners:
            spinner.kill()
    return [before, one]


def postprocess(tmp: Path, repeats: int) -> list[Row]:
    from bench_postprocess import make_experiment

    experiment = make_experiment(fresh(tmp / "post"))
    plots = Row("postprocess 100 runs, with plots", "s", "<= 3 s", limit=3.0)
    tables = Row("  postprocess 100 runs, --no-plots", "s", "")
    for _ in range(repeats):
        plots.ours.append(run([*TRAINER, "postprocess", str(experiment)], tmp)[0])
        tables.ours.append(run([*TRAINER, "postprocess", str(experiment), "--no-plots"], tmp)[0])
    return [plots, tables]


def files(tmp: Path, repeats: int) -> list[Row]:
    """In one process (bench_files.py), order switched every pair, like the per-step row."""
    row = Row("epoch over 2,000 image files, 2 workers", "s", "<= 1.1x", limit=1.1)
    return _paired(
        tmp, "bench_files.py", f"--pairs {repeats}", [(row, "trainer_s", "handwritten_s")]
    )


def cache(tmp: Path, repeats: int) -> list[Row]:
    """Both sides are sweeptrainer: the 'hand-written' column is the uncached sweep."""
    row = Row("4-run audio sweep, cached (vs uncached)", "s", "")
    built = Row("  the same, cache built before", "s", "")
    _, out = run([sys.executable, str(HERE / "bench_cache.py"), "--repeats",
                  str(max(1, repeats // 2))], tmp)  # fmt: skip
    for line in out.splitlines():
        if line.startswith("{"):
            times = json.loads(line)
            row.ours.append(Measurement(0, 0, times["cached_s"]))
            row.theirs.append(Measurement(0, 0, times["uncached_s"]))
            built.ours.append(Measurement(0, 0, times["cached_built_before_s"]))
            built.theirs.append(Measurement(0, 0, times["uncached_s"]))
    return [row, built]


def split_eval(tmp: Path, repeats: int) -> list[Row]:
    """Both sides are sweeptrainer's ``evaluate``: split over 2 processes vs 1."""
    row = Row("dev evaluation (20 000 samples), 2 processes vs 1", "s", "<= 0.7x", limit=0.7)
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    for _ in range(repeats):
        for processes, side in ((2, row.ours), (1, row.theirs)):
            launch = [sys.executable, "-m", "torch.distributed.run",
                      f"--nproc_per_node={processes}", str(HERE / "bench_eval.py")]  # fmt: skip
            _, out = run(launch, tmp, env)
            line = next(x for x in out.splitlines() if x.startswith("{"))
            side.append(Measurement(0, 0, json.loads(line)["eval_s"]))
    return [row]


# 8 learning rates (too small, good, diverging) x 2 seeds, 40 epochs: a first grid a user
# might sweep (the named pruners decide from a tenth of the run on: epoch 4)
GRID16 = ["learning_rate=1e-5,1e-4,0.003,0.01,0.1,1,5,20", "seed=1,2", "iterations=40"]


def search(tmp: Path, repeats: int) -> list[Row]:
    """Both sides are sweeptrainer: the 'hand-written' column is the grid trained to the
    end (pruner=none), ours the same grid with pruner=halving (successive halving)."""
    wall = Row("16-run grid (Digits), pruner=halving vs none", "s", "<= 0.5x", limit=0.5)
    evals = Row("  evaluations trained", "evals", "")
    best = Row("  best dev accuracy", "", "")
    found: dict[str, set[str]] = {"halving": set(), "none": set()}
    for _ in range(repeats):
        for pruner, side in (("halving", "ours"), ("none", "theirs")):
            work = fresh(tmp / "search")
            args = ["-m", "hydra/sweeper=search", "hydra.sweeper.sampler=grid",
                    f"hydra.sweeper.pruner={pruner}", *GRID16, *QUIET]  # fmt: skip
            measured = run([*TRAINER, *args], work)[0]
            training = work / "results/default/training"
            rows = sum(len((r / "metrics.csv").read_text().splitlines()) - 1
                       for r in training.iterdir())  # fmt: skip
            (study,) = (work / "results/default/search").iterdir()
            top = yaml.safe_load((study / "best.yaml").read_text())["best"]
            found[pruner] |= _best_configs(training, top["value"])  # ties: every one
            getattr(wall, side).append(measured)
            getattr(evals, side).append(Measurement(0, 0, rows))
            getattr(best, side).append(Measurement(0, 0, top["value"]))
    same = Row(f"  best configuration: {' / '.join(sorted(found['halving']))} "
               f"(trained to the end: {' / '.join(sorted(found['none']))})", "", "same",
               verdict=bool(found["halving"]) and found["halving"] <= found["none"])  # fmt: skip
    return [wall, evals, best, same]


def _best_configs(training: Path, best: float) -> set[str]:
    """The swept values of every finished run that reached the best dev accuracy (runs
    can tie: a tie is one best configuration as much as the other)."""
    configs = set()
    for run_dir in training.iterdir():
        if not (run_dir / "results.yaml").is_file():
            continue  # pruned
        results = yaml.safe_load((run_dir / "results.yaml").read_text())
        if results["dev"]["accuracy"] == best:
            cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
            configs.add(f"learning_rate={cfg['learning_rate']} seed={cfg['seed']}")
    return configs


ROWS: dict[str, Callable[[Path, int], list[Row]]] = {
    "startup": startup,
    "single": single,
    "epoch": per_epoch,
    "step": per_step,
    "sweep": sweep,
    "validate": validate_grid,
    "big": big_sweep,
    "busy": busy,
    "busy-sweep": busy_sweep,
    "postprocess": postprocess,
    "files": files,
    "cache": cache,
    "eval": split_eval,
    "search": search,
    "table": large_table,
}


# -- report -------------------------------------------------------------------------------
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    digits = 4 if unit == "" else 0 if unit == "MB" else 3 if value < 10 else 1
    return f"{value:.{digits}f} {unit}".strip()


def table(rows: list[Row]) -> list[str]:
    lines = ["| measure | sweeptrainer | hand-written | ratio | pair range | target | met |",
             "|---|---:|---:|---:|---:|---|---|"]  # fmt: skip
    for r in rows:
        show = r.ratio is not None and r.unit
        ratio = f"{r.ratio:.3f}x" if show else ""
        spread = "{:.2f}-{:.2f}".format(*r.ratio_range) if show else ""
        met = {None: "", True: "yes", False: "**no**"}[r.met]
        ours, theirs = fmt(r.ours_median, r.unit), fmt(r.theirs_median, r.unit)
        lines.append(f"| {r.name} | {ours} | {theirs} | {ratio} | {spread} | {r.target} | {met} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="alternating runs per row (>= 5 for results.md)"
    )
    parser.add_argument(
        "--only", default=",".join(ROWS), help=f"comma-separated rows: {', '.join(ROWS)}"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results.md", help="'-' writes nothing")
    args = parser.parse_args()
    names = args.only.split(",")
    unknown = set(names) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows: {', '.join(sorted(unknown))}; choose from {', '.join(ROWS)}")
    sys.path.insert(0, str(HERE))
    started = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            t0 = time.perf_counter()
            rows += ROWS[name](Path(tmp), args.repeats)
            print(f"  {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    total = time.perf_counter() - started
    import torch

    header = [
        "# Benchmarks: sweeptrainer vs the hand-written loop",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- CPU: {cpu_name()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"torch {torch.__version__}",
        f"- `python benches/bench.py --repeats {args.repeats}` (`make bench`): alternating "
        f"runs, medians; ratio = median of the per-pair ratios; total {total / 60:.1f} min",
        "",
    ]
    text = "\n".join(header + table(rows)) + "\n"
    print(text)
    if str(args.out) != "-":
        notes = HERE / "notes.md"
        if notes.exists():
            text += "\n" + notes.read_text()
        args.out.write_text(text)
        print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
