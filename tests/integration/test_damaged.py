"""A damaged file in one run folder never takes the sweep down (issue 19, item 5): that run
is reported ``damaged`` and left as it is, every other run goes on, and the verbs that
read the experiment (validate, status, rm-failed) list it and carry on."""

from __future__ import annotations

import shutil

import pytest
import torch
import yaml

from tests.conftest import TINY, run_dirs, snapshot

RUNS = TINY  # what the shared `swept` fixture trained: its runs are found again


@pytest.fixture
def sweep(trainer, tmp_path, swept):
    """A copy of that sweep's results in this test's folder."""
    shutil.copytree(swept, tmp_path / "results", symlinks=True)
    return run_dirs(tmp_path)


def _garbage_status(run):
    (run / "status.yaml").write_bytes(b"\xff\xfe garbage: [")


def _attempt_abc(run):
    status = yaml.safe_load((run / "status.yaml").read_text())
    (run / "status.yaml").write_text(yaml.safe_dump({**status, "attempt": "abc"}))


def _unparsable_results(run):
    (run / "results.yaml").write_text("test: [1,\n")


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (_garbage_status, "status.yaml: not a readable YAML file"),
        (_attempt_abc, "status.yaml: attempt: expected a whole number of at least 1, got 'abc'"),
        (_unparsable_results, "results.yaml: not a readable YAML file"),
        (lambda run: (run / "results.yaml").unlink(), "results.yaml: missing, though status"),
    ],
    ids=["non-UTF-8 status.yaml", "attempt: abc", "unparsable results.yaml", "no results.yaml"],
)
def test_a_damaged_run_is_reported_and_the_sweep_goes_on(trainer, tmp_path, sweep, damage, said):
    first, _ = sweep
    damage(first)
    before = snapshot(first)

    again = trainer("-m", "seed=1,2,3", *RUNS)
    assert again.code == 1, again.err  # a run that cannot be trusted counts as not done
    assert "sweep: 3 runs: 1 trained, 1 skipped (finished before), 0 failed, 1 damaged" in again.out
    assert f"damaged: {first.name}: " in again.out and said in again.out
    assert (run_dirs(tmp_path)[2] / "results.yaml").is_file()  # the run after it trained
    assert snapshot(first) == before  # left exactly as it was

    validate = trainer("validate", "-m", "seed=1,2", *RUNS)
    assert validate.code == 0 and f"{first.name}  damaged (" in validate.out
    status = trainer("status", str(tmp_path / "results/default"))
    assert status.code == 0, status.err
    assert f"{first.name}  damaged" in status.out and "1 damaged, 2 finished" in status.out
    assert said in status.out
    removed = trainer("rm-failed", str(tmp_path / "results/default"), "--yes")
    assert removed.code == 0, removed.err
    assert snapshot(first) == before  # may hold a finished run's results: never removed


def test_a_saved_state_that_no_longer_fits_the_model_trains_anew(trainer, tmp_path, sweep):
    """An interrupted run whose ``last.pt`` holds weights of another shape (the model's code
    changed) warns and trains from scratch instead of failing with a traceback."""
    first, _ = sweep
    for name in ("last", "best"):
        state = torch.load(first / "states" / f"{name}.pt", weights_only=True)
        state["model"] = {k: torch.zeros(3, *v.shape[1:]) for k, v in state["model"].items()}
        torch.save(state, first / "states" / f"{name}.pt")
    status = yaml.safe_load((first / "status.yaml").read_text())
    (first / "status.yaml").write_text(yaml.safe_dump({**status, "state": "interrupted"}))

    again = trainer("-m", "seed=1,2", *RUNS)
    assert again.code == 0, again.err
    assert "the saved state does not fit the model" in again.err + again.out
    assert yaml.safe_load((first / "status.yaml").read_text())["state"] == "finished"
    model = torch.load(first / "states" / "best.pt", weights_only=True)["model"]
    assert next(iter(model.values())).shape[0] != 3


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (_garbage_status, "status.yaml: not a readable YAML file"),
        (lambda run: (run / "results.yaml").unlink(), "results.yaml: missing, though status"),
        (lambda run: (run / "metrics.csv").write_text(
            (run / "metrics.csv").read_text()[:-40]), "complete rows, expected 2"),
        (lambda run: (run / "metrics.csv").write_bytes(b"\xff\xfe\x00garbage"),
         "metrics.csv: "),
    ],
    ids=["non-UTF-8 status.yaml", "no results.yaml", "metrics.csv cut off", "metrics.csv garbage"],
)  # fmt: skip
def test_postprocess_lists_a_damaged_run_and_carries_on(trainer, tmp_path, sweep, damage, said):
    """Issue 19, items 5 and 7: a run that cannot be trusted is in runs.csv as damaged,
    with the reason; the others are aggregated as before."""
    import pandas as pd

    first = sweep[0]
    damage(first)
    result = trainer("postprocess", str(tmp_path / "results/default"), "--no-plots")
    assert result.code == 0, result.err
    runs = pd.read_csv(tmp_path / "results/default/postprocessing/runs.csv").set_index("run")
    assert runs.loc[first.name, "status"] == "damaged"
    assert said in runs.loc[first.name, "error"]
    assert (runs.drop(index=first.name)["status"] == "finished").all()
    aggregated = pd.read_csv(tmp_path / "results/default/postprocessing/aggregated.csv")
    assert aggregated["test_accuracy_count"].tolist() == [1]  # the damaged run is left out
