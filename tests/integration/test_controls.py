"""Training controls in YAML: each one shown to have its effect, in epoch and step training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.datasets import load_wine

from sweeptrainer.training.state import unpack_optimizer_state
from tests.conftest import run_dirs

QUIET = ("progress_bar=false",)
NO_DROPOUT = ("model.dropout=0.0",)


def _weights(tmp_path, experiment):
    (run,) = run_dirs(tmp_path, experiment)
    return torch.load(run / "states/last.pt", weights_only=True)["model"]


def _assert_close(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=1e-4)


def test_accumulation_matches_a_larger_batch_in_step_training(trainer, tmp_path):
    common = ("training_type=step", "iterations=12", "eval_frequency=6", *NO_DROPOUT, *QUIET)
    assert trainer(*common, "batch_size=32", "experiment_id=big").code == 0
    assert trainer(*common, "batch_size=8", "accumulation_steps=4", "experiment_id=acc").code == 0
    _assert_close(_weights(tmp_path, "big"), _weights(tmp_path, "acc"))
    # and it is not a no-op: batch 8 without accumulation ends elsewhere
    assert trainer(*common, "batch_size=8", "experiment_id=small").code == 0
    with pytest.raises(AssertionError):
        _assert_close(_weights(tmp_path, "big"), _weights(tmp_path, "small"))


def _wine_tables(root, n_train):
    frame = load_wine(as_frame=True).frame
    order = np.random.default_rng(0).permutation(len(frame))
    (root / "data").mkdir()
    parts = {"train": order[:n_train], "dev": order[n_train : n_train + 30], "test": order[-30:]}
    for name, rows in parts.items():
        frame.iloc[rows].to_csv(root / "data" / f"{name}.csv", index=False)


def test_accumulation_matches_a_larger_batch_in_epoch_training(trainer, tmp_path):
    _wine_tables(tmp_path, 96)  # 3 batches of 32 per epoch: groups never straddle epochs
    # on the CPU: a GPU's TF32 matmuls round the two batchings differently
    common = ("dataset=Table", "iterations=3", "learning_rate=0.01", "device=cpu", *NO_DROPOUT,
              *QUIET)  # fmt: skip
    assert trainer(*common, "batch_size=32", "experiment_id=big").code == 0
    assert trainer(*common, "batch_size=8", "accumulation_steps=4", "experiment_id=acc").code == 0
    _assert_close(_weights(tmp_path, "big"), _weights(tmp_path, "acc"))


def test_partial_group_at_the_end_of_an_epoch_is_stepped(trainer, tmp_path):
    # Wine: 124 training samples in batches of 50 -> batches of 50, 50, 24; groups of 2:
    # one full group and a last group of one batch: 2 optimizer steps per epoch.
    args = ("dataset=Wine", "batch_size=50", "accumulation_steps=2", "iterations=2", *QUIET)
    assert trainer(*args).code == 0
    state = torch.load(run_dirs(tmp_path)[0] / "states/last.pt", weights_only=True)
    optimizer = unpack_optimizer_state(state["optimizer"])
    steps = {float(s["step"]) for s in optimizer["state"].values()}
    assert steps == {4.0}


DELTAS = ("+callbacks.deltas._target_=tests.helpers.ParamDeltas", "optimizer=SGD",
          "optimizer.momentum=0.0", "learning_rate=1.0", *QUIET)  # fmt: skip


def _deltas(tmp_path, experiment):
    (run,) = run_dirs(tmp_path, experiment)
    norm, abs_max = map(float, (run / "deltas.txt").read_text().split())
    return norm, abs_max


@pytest.mark.parametrize(
    "mode",
    [
        ("training_type=epoch", "iterations=2"),
        ("training_type=step", "iterations=40", "eval_frequency=20"),
    ],
)
def test_gradient_clipping_bounds_every_update(trainer, tmp_path, mode):
    # With plain SGD at learning rate 1, an update is exactly minus the (clipped) gradient.
    assert trainer(*DELTAS, *mode, "experiment_id=free").code == 0
    assert trainer(*DELTAS, *mode, "gradient_clip_norm=0.5", "experiment_id=norm").code == 0
    assert trainer(*DELTAS, *mode, "gradient_clip_value=0.01", "experiment_id=value").code == 0
    free_norm, free_abs = _deltas(tmp_path, "free")
    assert free_norm > 0.5 and free_abs > 0.01  # unclipped gradients exceed both bounds
    assert _deltas(tmp_path, "norm")[0] <= 0.5 + 1e-5
    assert _deltas(tmp_path, "value")[1] <= 0.01 + 1e-6


def test_bf16_trains_digits_on_cpu(trainer, tmp_path):
    result = trainer("precision=bf16", "iterations=5", *QUIET)
    assert result.code == 0, result.err
    results = yaml.safe_load((run_dirs(tmp_path)[0] / "results.yaml").read_text())
    assert results["test"]["accuracy"] > 0.9


def test_precision_16_falls_back_to_bf16_on_cpu_with_a_warning(trainer, tmp_path):
    result = trainer("precision=16", "dataset=Wine", "iterations=2", "device=cpu", *QUIET)
    assert result.code == 0, result.err
    assert "precision 16 is for CUDA; on cpu bf16 is used instead" in result.out
    state = torch.load(run_dirs(tmp_path)[0] / "states/last.pt", weights_only=True)
    assert state["scaler"] is None  # no loss scaling needed for bf16


def test_reproducible_switch(trainer, tmp_path):
    assert trainer("dataset=Wine", "iterations=2", *QUIET, "experiment_id=a").code == 0
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.benchmark
    assert trainer("dataset=Wine", "iterations=2", *QUIET, "experiment_id=b").code == 0
    a, b = (pd.read_csv(run_dirs(tmp_path, e)[0] / "metrics.csv") for e in "ab")
    pd.testing.assert_frame_equal(a.drop(columns="elapsed_s"), b.drop(columns="elapsed_s"))
    assert trainer("dataset=Wine", "iterations=2", "reproducible=false", *QUIET).code == 0
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.benchmark = False


def test_results_do_not_depend_on_num_workers(trainer, tmp_path):
    noisy = ("dataset._target_=tests.helpers.NoisyWine", "~dataset.split_seed",
             "~dataset.dev_fraction", "~dataset.test_fraction", "dataset=Wine",
             "batch_size=16", "iterations=3", *QUIET)  # fmt: skip
    assert trainer(*noisy, "num_workers=0", "experiment_id=w0").code == 0
    result = trainer(*noisy, "num_workers=2", "persistent_workers=true", "experiment_id=w2")
    assert result.code == 0, result.err
    w0, w2 = (pd.read_csv(run_dirs(tmp_path, e)[0] / "metrics.csv") for e in ("w0", "w2"))
    pd.testing.assert_frame_equal(w0.drop(columns="elapsed_s"), w2.drop(columns="elapsed_s"))
    # the noise is real: the same data without it trains differently
    assert trainer("dataset=Wine", "batch_size=16", "iterations=3", *QUIET,
                   "experiment_id=clean").code == 0  # fmt: skip
    clean = pd.read_csv(run_dirs(tmp_path, "clean")[0] / "metrics.csv")
    assert not np.allclose(clean.train_loss, w0.train_loss)


def test_multilabel_dataset(trainer, tmp_path):
    result = trainer("dataset=MultiLabel", "criterion=BCEWithLogits", "iterations=10",
                     "learning_rate=0.003", *QUIET)  # fmt: skip
    assert result.code == 0, result.err
    (run,) = run_dirs(tmp_path)
    results = yaml.safe_load((run / "results.yaml").read_text())
    assert results["tracking_metric"] == "f1_multilabel"
    assert results["test"]["f1_multilabel"] > 0.6 and results["test"]["f1_multilabel_micro"] > 0.6
    outputs = pd.read_csv(run / "outputs/test.csv")
    assert [c for c in outputs.columns if c.startswith("score_")] == [
        f"score_label_{i}" for i in range(5)
    ]
    assert (
        set(outputs.target.iloc[0].split()) <= {"0", "1"}
        and len(outputs.target.iloc[0].split()) == 5
    )


def test_multilabel_needs_a_fitting_criterion(trainer, tmp_path):
    result = trainer("dataset=MultiLabel", "iterations=1", *QUIET)
    assert result.code == 2
    assert "criterion: CrossEntropy does not fit the multilabel dataset MultiLabel" in result.err
    assert "use criterion=BCEWithLogits" in result.err


def test_table_with_several_target_columns(trainer, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    frame["a"], frame["b"] = (x[:, 0] > 0).astype(int), (x[:, 1] + x[:, 2] > 0).astype(int)
    (tmp_path / "data").mkdir()
    for name, part in {"train": frame[:300], "dev": frame[300:350], "test": frame[350:]}.items():
        part.to_csv(tmp_path / "data" / f"{name}.csv", index=False)
    result = trainer(
        "dataset=Table", "dataset.task=multilabel", "dataset.target=[a,b]",
        "dataset.metrics=[f1_multilabel]", "dataset.tracking_metric=f1_multilabel",
        "criterion=BCEWithLogits", "iterations=10", "learning_rate=0.01", *QUIET,
    )  # fmt: skip
    assert result.code == 0, result.err
    (run,) = run_dirs(tmp_path)
    assert yaml.safe_load((run / "results.yaml").read_text())["test"]["f1_multilabel"] > 0.8
    assert {"score_a", "score_b"} <= set(pd.read_csv(run / "outputs/test.csv").columns)


def test_weight_decay_skips_biases_and_norm_layers(trainer, tmp_path):
    # zero gradients: AdamW moves parameters only by decoupled weight decay
    result = trainer(
        "model=CNN", "optimizer=AdamW", "optimizer.weight_decay=0.5", "learning_rate=0.1",
        "criterion=MSE", "criterion._target_=tests.helpers.ZeroLoss",
        "training_type=step", "iterations=3",
        "+callbacks.snap._target_=tests.helpers.ParamSnapshots", *QUIET,
    )  # fmt: skip
    assert result.code == 0, result.err
    (run,) = run_dirs(tmp_path)
    begin = torch.load(run / "params_begin.pt", weights_only=True)
    end = torch.load(run / "params_end.pt", weights_only=True)
    decayed = {k for k in begin if not torch.equal(begin[k], end[k])}
    assert decayed == {"features.0.weight", "features.4.weight", "head.1.weight"}  # convs, linear
    for name in decayed:
        torch.testing.assert_close(end[name], begin[name] * (1 - 0.1 * 0.5) ** 3)


@pytest.mark.slow
def test_compile_trains_and_saves_plain_weights(trainer, tmp_path):
    result = trainer("compile=true", "dataset=Wine", "iterations=1", *QUIET)
    assert result.code == 0, result.err
    state = torch.load(run_dirs(tmp_path)[0] / "states/best.pt", weights_only=True)["model"]
    assert not any(k.startswith("_orig_mod") for k in state)
    from sweeptrainer.components.models import FFNN

    FFNN((13,), 3, hidden_sizes=[256, 128], dropout=0.2).load_state_dict(state)
