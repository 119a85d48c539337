"""Batches the way users' datasets make them: dicts, (x, y, index), fields named in YAML."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import run_dirs, snapshot
from tests.helpers import die_after_saving

CONF = {
    "dataset/WineDicts.yaml": """\
id: WineDicts
_target_: tests.helpers.WineSamples
kind: dict
batch:
  inputs: [x, mask]   # model(x=..., mask=...)
  target: y
  index: id
metrics: [accuracy, f1]
tracking_metric: accuracy
""",
    "dataset/WineIndexed.yaml": """\
id: WineIndexed
_target_: tests.helpers.WineSamples
kind: indexed          # (x, y, id)
batch:
  index: 2
metrics: [accuracy, f1]
tracking_metric: accuracy
""",
    "dataset/WineTriplets.yaml": """\
id: WineTriplets
_target_: tests.helpers.WineTensors
tensors: 3             # TensorDataset(x, y, ids): in memory
batch:
  index: 2
metrics: [accuracy]
tracking_metric: accuracy
""",
    "model/MaskedMLP.yaml": "id: MaskedMLP\n_target_: tests.helpers.MaskedMLP\nhidden: 16\n",
}
DICT = ("dataset=WineDicts", "model=MaskedMLP", "batch_size=16", "progress_bar=false")
INDEXED = ("dataset=WineIndexed", "batch_size=16", "progress_bar=false")


@pytest.fixture(autouse=True)
def user_conf(tmp_path):
    for name, text in CONF.items():
        (tmp_path / "conf" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "conf" / name).write_text(text)


def _metrics(run):
    return pd.read_csv(run / "metrics.csv").drop(columns="elapsed_s")


@pytest.mark.parametrize("args", [DICT, INDEXED], ids=["dict", "x-y-index"])
def test_user_batches_train_resume_bit_for_bit_and_keep_their_ids(
    trainer, tmp_path, monkeypatch, args
):
    assert trainer(*args, "iterations=4", "experiment_id=ref").code == 0
    (ref,) = run_dirs(tmp_path, "ref")
    outputs = pd.read_csv(ref / "outputs/test.csv")
    assert outputs["index"].min() >= 1000 and outputs["index"].is_unique  # the dataset's ids
    with monkeypatch.context() as patch:
        die_after_saving(patch, 2)
        assert trainer(*args, "iterations=4", "experiment_id=cut").code == 130
    result = trainer(*args, "iterations=4", "experiment_id=cut")
    assert result.code == 0 and "resume (killed) from states/last.pt (iteration 2)" in result.out
    (cut,) = run_dirs(tmp_path, "cut")
    pd.testing.assert_frame_equal(_metrics(ref), _metrics(cut), check_exact=True)


def test_a_batch_the_model_cannot_take_fails_before_the_run_folder(trainer, tmp_path):
    assert trainer(*DICT, "iterations=1").code == 0
    before = snapshot(tmp_path / "results")
    result = trainer(*DICT, "~dataset.batch.target", "iterations=1", "seed=2")
    assert result.code == 2
    assert (
        "the batches are dicts with keys ['x', 'mask', 'y', 'id'], without 'target'" in result.err
    )
    assert "dataset.batch.target=KEY" in result.err
    result = trainer(*DICT, "dataset.batch.inputs=x", "iterations=1", "seed=2")
    assert result.code == 2
    assert "model: tests.helpers.MaskedMLP cannot take a train batch" in result.err
    assert "missing 1 required positional argument: 'mask'" in result.err
    assert snapshot(tmp_path / "results") == before
    bad_key = trainer(*DICT, "+dataset.batch.colate=x", "iterations=1")
    assert bad_key.code == 2 and "dataset.batch.colate: unknown key" in bad_key.err


def test_in_memory_splits_of_three_tensors_train_and_keep_their_ids(trainer, tmp_path):
    """docs/data.md: TensorDataset(x, y, ids) with batch: {index: 2} trains as is (the
    in-memory fast path serves any number of tensors); one tensor is an input error."""
    result = trainer("dataset=WineTriplets", "iterations=2", "progress_bar=false")
    assert result.code == 0, result.err
    (run,) = run_dirs(tmp_path)
    outputs = pd.read_csv(run / "outputs/test.csv")
    assert outputs["index"].min() >= 1000 and outputs["index"].is_unique
    one = trainer("dataset=WineTriplets", "dataset.tensors=1", "~dataset.batch.index",
                  "iterations=2", "progress_bar=false", "experiment_id=one")  # fmt: skip
    assert one.code == 2 and "dataset.batch.target: the batches have 1 fields" in one.err
    assert not (tmp_path / "results/one/training").exists() or not list(
        (tmp_path / "results/one/training").iterdir()
    )
