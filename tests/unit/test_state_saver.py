"""States written beside the training: the state as it was when handed over, errors raised."""

from __future__ import annotations

import pytest
import torch

from sweeptrainer.io.run_dir import RunDir
from sweeptrainer.io.state_saver import StateSaver


def test_the_file_holds_the_state_as_handed_over(tmp_path):
    run = RunDir(tmp_path / "run")
    saver = StateSaver(run)
    weights = torch.zeros(1000)
    for value in range(5):
        weights.fill_(value)
        saver.save("last", {"w": weights, "rows": [value]}, durable=value == 4)
        weights.fill_(-1)  # the training goes on changing the live tensor
    saver.close()
    state = run.load_state("last")
    assert state["rows"] == [4] and torch.equal(state["w"], torch.full((1000,), 4.0))
    assert not list(run.path.rglob("*.tmp"))


def test_a_failed_write_is_raised_to_the_training(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    (run.path / "states").write_text("a file where the states folder goes")
    saver = StateSaver(run)
    saver.save("best", {"w": torch.ones(2)})
    with pytest.raises(OSError):
        saver.wait()
    saver.close()  # nothing pending: closes cleanly


def test_one_copy_serves_several_names_and_keeps_a_modules_metadata(tmp_path):
    run = RunDir(tmp_path / "run")
    saver = StateSaver(run)
    model = torch.nn.BatchNorm1d(3)
    state = {"model": model.state_dict(), "rows": [{"a": 1.0}], "order": (1, 2)}
    saver.save(("best", "last"), state)
    model.running_mean.fill_(7.0)  # after the hand-over: not in the files
    state["rows"][0]["a"] = 2.0
    saver.close()
    for name in ("best", "last"):
        loaded = run.load_state(name)
        assert torch.equal(loaded["model"]["running_mean"], torch.zeros(3))
        assert loaded["rows"] == [{"a": 1.0}] and loaded["order"] == (1, 2)
        assert (
            loaded["model"]._metadata[""]["version"] == model.state_dict()._metadata[""]["version"]
        )


def test_a_large_state_is_written_at_once_after_the_pending_ones(tmp_path, monkeypatch):
    from sweeptrainer.io import state_saver

    run = RunDir(tmp_path / "run")
    saver = StateSaver(run)
    saver.save("best", {"w": torch.ones(4)})  # small: buffered, written by the worker
    monkeypatch.setattr(state_saver, "INLINE_BYTES", 8)
    saver._large = None  # told again by the next state (a run's states keep their sizes)
    weights = torch.full((4,), 2.0)
    saver.save(("best", "last"), {"w": weights})  # large: written before save returns
    weights.fill_(-1)
    assert saver._pool is not None and not saver._pending
    for name in ("best", "last"):
        assert torch.equal(run.load_state(name)["w"], torch.full((4,), 2.0))
    saver.close()


def test_the_metrics_rows_travel_as_json_and_come_back_equal(tmp_path):
    import math

    from sweeptrainer.training.state import TrainingState

    run = RunDir(tmp_path / "run")
    state = TrainingState(iteration=2)
    state.rows = [{"iteration": 1, "dev_pcc": math.nan, "train_loss": 1 / 3},
                  {"iteration": 2, "dev_pcc": 0.25, "train_loss": 0.1 + 0.2}]  # fmt: skip
    run.save_state("last", {"training": state.state_dict()})
    saved = run.load_state("last")["training"]
    assert isinstance(saved["rows"], str)  # one object to pickle, however many rows
    back = TrainingState()
    back.load_state_dict(saved)
    assert back.rows[1] == state.rows[1] and back.rows[0]["train_loss"] == 1 / 3
    assert math.isnan(back.rows[0]["dev_pcc"]) and type(back.rows[0]["iteration"]) is int
    state.rows[1]["note"] = torch.tensor(1.0)  # not JSON: saved as it is
    back.load_state_dict(state.state_dict())
    assert back.rows[1]["note"] == 1.0
