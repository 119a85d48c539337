"""Resume by re-running: retry of failed runs, continue_training, safe and damaged states,
the plan printed by `trainer validate`, the clean-up verbs. (Signals and kills: tests/e2e.)"""

from __future__ import annotations

import os
import pickle

import pandas as pd
import pytest
import torch
import yaml

from tests.conftest import run_dirs, snapshot
from tests.helpers import die_after_saving

WINE = ("dataset=Wine", "batch_size=50", "progress_bar=false")


def _status(run):
    return yaml.safe_load((run / "status.yaml").read_text())


def _set_state(run, state):
    status = _status(run) | {"state": state}
    (run / "status.yaml").write_text(yaml.safe_dump(status))


def _comparable(run):
    metrics = pd.read_csv(run / "metrics.csv").drop(columns="elapsed_s")
    results = yaml.safe_load((run / "results.yaml").read_text())
    results.pop("train_time_s")
    return metrics, results


def test_failed_run_is_retried_once_then_left_failed_and_rm_failed_removes_it(trainer, tmp_path):
    nan = ("optimizer=SGD", "learning_rate=1e12", "iterations=3", *WINE)
    first = trainer(*nan)
    assert first.code == 1
    (run,) = run_dirs(tmp_path)
    assert _status(run)["state"] == "failed" and _status(run)["attempt"] == 1
    second = trainer(*nan)
    assert second.code == 1 and "retry (attempt 2)" in second.out
    assert _status(run)["attempt"] == 2
    third = trainer(*nan)
    assert third.code == 1
    assert f"skip {run.name}: failed 2 times, max_retries is 1" in third.out
    assert _status(run)["attempt"] == 2  # untouched

    listed = trainer("rm-failed", "results/default", "--dry-run")
    assert listed.code == 0 and "would be removed" in listed.out and run.is_dir()
    removed = trainer("rm-failed", "results/default", "--yes")
    assert removed.code == 0 and "removed 1 failed run(s)" in removed.out
    assert not run.exists()


def test_rm_failed_asks_and_keeps_on_no(trainer, tmp_path, monkeypatch):
    assert trainer("optimizer=SGD", "learning_rate=1e12", "iterations=2", *WINE).code == 1
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    result = trainer("rm-failed", "results/default")
    assert "nothing removed" in result.out and len(run_dirs(tmp_path)) == 1


def test_clean_up_verbs_reject_a_non_experiment_folder(trainer, tmp_path):
    (tmp_path / "empty").mkdir()
    for verb in ("rm-failed", "rm-states"):
        result = trainer(verb, "empty")
        assert result.code == 2 and "is not an experiment folder" in result.err


def test_rm_states_keeps_best_and_last(trainer, tmp_path):
    assert trainer("iterations=2", *WINE).code == 0
    (run,) = run_dirs(tmp_path)
    (run / "states" / "epoch_1.pt").write_bytes(b"x" * 1000)
    assert trainer("rm-states", "results/default", "--yes").code == 0
    assert sorted(p.name for p in (run / "states").iterdir()) == ["best.pt", "last.pt"]
    asked = trainer("rm-states", "results/default", "--best-only")  # no answer: nothing goes
    assert "cannot be resumed" in asked.out and "nothing removed" in asked.out
    assert sorted(p.name for p in (run / "states").iterdir()) == ["best.pt", "last.pt"]
    assert trainer("rm-states", "results/default", "--best-only", "-y").code == 0
    assert sorted(p.name for p in (run / "states").iterdir()) == ["best.pt"]


def test_continue_training_trains_only_the_new_iterations(trainer, tmp_path):
    record = "+callbacks.rec._target_=tests.helpers.Recorder"
    assert trainer("iterations=10", *WINE, record).code == 0
    result = trainer("iterations=20", *WINE, record)
    assert result.code == 0, result.err
    short, long = run_dirs(tmp_path, "default")  # ..._epoch_10_... sorts before _epoch_20_
    assert "_epoch_10_" in short.name and "_epoch_20_" in long.name
    assert f"continue from {short.name} at iteration 10" in result.out
    steps = [ln.split()[1] for ln in (long / "hooks.txt").read_text().splitlines()
             if ln.startswith("step_begin")]  # fmt: skip
    assert sorted(set(map(int, steps))) == list(range(11, 21))
    metrics = pd.read_csv(long / "metrics.csv")
    assert metrics.iteration.tolist() == list(range(1, 21))
    results = yaml.safe_load((long / "results.yaml").read_text())
    assert results["continued_from"] == {"run": short.name, "iteration": 10}
    # the first ten rows are the short run's, carried over
    first = pd.read_csv(short / "metrics.csv")
    pd.testing.assert_frame_equal(metrics.iloc[:10], first)


def test_continue_training_off_trains_from_scratch(trainer, tmp_path):
    assert trainer("iterations=3", *WINE).code == 0
    result = trainer("iterations=5", "continue_training=false", *WINE)
    assert result.code == 0 and "(new)" in result.out


CONTROLS = ("accumulation_steps=2", "precision=bf16", "gradient_clip_norm=0.5")


@pytest.mark.parametrize(
    "extra",
    [(), CONTROLS, (*CONTROLS, "training_type=step", "iterations=6", "eval_frequency=1")],
    ids=["plain", "accumulation+bf16+clipping", "the same in step training"],
)
def test_resume_after_a_hard_stop_right_after_a_save_is_exact(
    trainer, tmp_path, monkeypatch, extra
):
    WINE = ("dataset=Wine", "batch_size=20", "progress_bar=false", *extra)
    assert trainer("iterations=6", *WINE, "experiment_id=ref").code == 0
    (ref,) = run_dirs(tmp_path, "ref")

    with monkeypatch.context() as patch:
        die_after_saving(patch, 3)
        assert trainer("iterations=6", *WINE, "experiment_id=cut").code == 130
    (cut,) = run_dirs(tmp_path, "cut")
    assert _status(cut)["state"] == "running"  # as a killed process leaves it
    result = trainer("iterations=6", *WINE, "experiment_id=cut")
    assert result.code == 0 and "resume (killed) from states/last.pt (iteration 3)" in result.out
    assert _comparable(ref)[1] == _comparable(cut)[1]
    pd.testing.assert_frame_equal(_comparable(ref)[0], _comparable(cut)[0])


def test_unsafe_state_file_is_refused_and_never_executed(trainer, tmp_path):
    assert trainer("iterations=2", *WINE).code == 0
    (run,) = run_dirs(tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"model": {}, "payload": Evil()}, run / "states/last.pt", pickle_module=pickle)
    _set_state(run, "interrupted")
    before = snapshot(run)
    result = trainer("iterations=2", *WINE)
    assert result.code == 2
    assert "refusing to load it" in result.err and "could run code" in result.err
    assert not marker.exists()
    assert {k: v for k, v in snapshot(run).items() if k != "train.log"} == {
        k: v for k, v in before.items() if k != "train.log"
    }


def test_truncated_last_state_falls_back_to_best(trainer, tmp_path):
    assert trainer("iterations=4", *WINE).code == 0
    (run,) = run_dirs(tmp_path)
    data = (run / "states/last.pt").read_bytes()
    (run / "states/last.pt").write_bytes(data[: len(data) // 3])
    _set_state(run, "interrupted")
    result = trainer("iterations=4", *WINE)
    assert result.code == 0, result.err
    assert "states/last.pt is unreadable, falling back" in result.out
    assert "from states/best.pt" in result.out
    assert _status(run)["state"] == "finished"
    torch.load(run / "states/last.pt", weights_only=True)  # rewritten, readable


def test_a_last_state_whose_packed_optimizer_does_not_fit_falls_back_to_best(trainer, tmp_path):
    """The optimizer's tensors are saved packed by kind with a JSON layout; a layout that
    does not fit them (a damaged or edited file) makes the state unreadable, not the run."""
    assert trainer("iterations=4", *WINE).code == 0
    (run,) = run_dirs(tmp_path)
    state = torch.load(run / "states/last.pt", weights_only=True)
    state["optimizer"]["packed"]["exp_avg"] = state["optimizer"]["packed"]["exp_avg"][:-1]
    torch.save(state, run / "states/last.pt")
    _set_state(run, "interrupted")
    result = trainer("iterations=4", *WINE)
    assert result.code == 0, result.err
    assert "states/last.pt is unreadable, falling back" in result.out
    assert "do not fit its layout" in result.out and "from states/best.pt" in result.out


def test_validate_prints_the_plan(trainer, tmp_path):
    assert trainer("iterations=2", *WINE).code == 0
    assert trainer("optimizer=SGD", "learning_rate=1e12", "iterations=2", *WINE).code == 1
    result = trainer("validate", "-m", "iterations=2,3", *WINE)
    assert result.code == 0
    lines = result.out.splitlines()
    assert any("_epoch_2_" in ln and "skip (finished)" in ln for ln in lines)
    assert any("_epoch_3_" in ln and "continue from" in ln for ln in lines)
    failed = trainer("validate", "optimizer=SGD", "learning_rate=1e12", "iterations=2", *WINE)
    assert "retry (attempt 2)" in failed.out
    bad = trainer("validate", "-m", "model=FFNN,Nope", *WINE)
    assert bad.code == 2 and "INVALID" in bad.out and "model/Nope" in bad.out


def test_a_state_copied_from_another_run_is_refused(trainer, tmp_path, monkeypatch):
    """Every state records its config's hash: run 1's last.pt copied into an interrupted
    run 2 is not resumed from (a warning; run 2's own best.pt is used); a continuation whose
    source state is another config's trains anew (issue 19, items 3 and 6)."""
    import shutil

    assert trainer("iterations=3", *WINE).code == 0
    with monkeypatch.context() as patch:
        die_after_saving(patch, 2)
        assert trainer("iterations=3", *WINE, "seed=2").code == 130
    first, second = run_dirs(tmp_path)
    shutil.copyfile(first / "states" / "last.pt", second / "states" / "last.pt")
    result = trainer("iterations=3", *WINE, "seed=2")
    assert result.code == 0, result.err
    assert "states/last.pt is the state of another config" in result.out + result.err
    assert "from states/best.pt" in result.out

    # the finished run 1 is continued by iterations=4; its last.pt replaced by run 2's
    shutil.copyfile(second / "states" / "last.pt", first / "states" / "last.pt")
    result = trainer("iterations=4", *WINE)
    assert result.code == 0, result.err
    assert "cannot continue from" in result.out + result.err and "training anew" in result.out
