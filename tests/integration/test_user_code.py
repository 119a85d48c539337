"""The trainer adapts to user code: library constructors, own metrics, schedules per batch."""

from __future__ import annotations

import pandas as pd
import yaml

from tests.conftest import run_dirs

WINE = ("dataset=Wine", "batch_size=16", "progress_bar=false")

MY_NETS = '''
from torch import nn


class TwoLayer(nn.Module):
    """Names its sizes its own way: the run cannot fill them in."""

    def __init__(self, n_inputs, n_outputs):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(n_inputs, n_outputs))

    def forward(self, x):
        return self.net(x)


def library_like(*, weights=None, progress=True, **kwargs):
    """torchvision.models.resnet18's signature: everything in **kwargs."""
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(kwargs.get("num_classes", 1000)))
'''


def _write(root, name, text):
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)


def test_library_constructors_and_validate_in_the_users_folder(trainer, tmp_path):
    _write(tmp_path, "my_nets.py", MY_NETS)
    _write(tmp_path, "conf/model/TwoLayer.yaml", "id: TwoLayer\n_target_: my_nets.TwoLayer\n")
    _write(tmp_path, "conf/model/Lib.yaml",
           "id: Lib\n_target_: my_nets.library_like\nnum_classes: 3\n")  # fmt: skip
    bad = trainer("validate", "model=TwoLayer", *WINE)  # my_nets imports from this folder
    assert bad.code == 2
    assert "model: my_nets.TwoLayer needs 'n_inputs', 'n_outputs', which neither the config" in (
        bad.out
    )
    assert "the run gives input_shape, output_dim, num_classes, in_channels, in_chans" in bad.out
    assert trainer("validate", "model=Lib", *WINE).code == 0
    result = trainer("model=Lib", *WINE, "iterations=3", "learning_rate=0.02")  # lazy: 1st batch
    assert result.code == 0, result.err
    (run,) = run_dirs(tmp_path)
    assert yaml.safe_load((run / "results.yaml").read_text())["test"]["accuracy"] > 0.5
    missing = trainer("model=Lib", "~model.num_classes", *WINE, "iterations=2", "seed=2")
    assert missing.code == 2
    assert "gives outputs of shape (2, 1000) for 2 samples; the classification dataset needs" in (
        missing.err
    )
    assert len(run_dirs(tmp_path)) == 1  # nothing was created for it


def test_metrics_by_target_and_loss_as_the_tracking_metric(trainer, tmp_path):
    metrics = ("dataset.metrics=[accuracy,{_target_: sklearn.metrics.roc_auc_score, "
               "scores: true, multi_class: ovr}]")  # fmt: skip
    args = (*WINE, metrics, "dataset.tracking_metric=loss", "iterations=3")
    result = trainer("-m", "learning_rate=0.01,0.0001", *args)
    assert result.code == 0, result.err
    for run in run_dirs(tmp_path):
        results = yaml.safe_load((run / "results.yaml").read_text())
        assert results["tracking_metric"] == "loss" and results["tracking_direction"] == "min"
        assert 0.5 < results["test"]["roc_auc"] <= 1.0
        rows = pd.read_csv(run / "metrics.csv")
        assert results["best_iteration"] == int(rows.loc[rows.dev_loss.idxmin(), "iteration"])
    assert trainer("postprocess", "results/default", "--no-plots").code == 0
    table = pd.read_csv(tmp_path / "results/default/postprocessing/aggregated.csv")
    assert table["dev_loss_mean"].is_monotonic_increasing  # the lowest loss ranks first
    wrong = trainer(*WINE, "dataset.metrics=[accuracy,sklearn.metrics.log_loss]")
    assert wrong.code == 2 and "a metric of probabilities needs scores: true" in wrong.err
    unknown = trainer(*WINE, "dataset.metrics=[accuracy,acuracy]")
    assert (
        unknown.code == 2 and "unknown metric 'acuracy' (did you mean 'accuracy'?)" in unknown.err
    )


def test_one_cycle_per_batch_and_plateau_mode_from_the_metric(trainer, tmp_path):
    result = trainer(*WINE, "scheduler=OneCycleLR", "learning_rate=0.01", "iterations=8")
    assert result.code == 0, result.err
    (run,) = run_dirs(tmp_path)
    rates = pd.read_csv(run / "metrics.csv").learning_rate.tolist()
    peak = rates.index(max(rates))
    assert 0 < peak < 7 and rates[0] < max(rates) and rates[-1] < rates[0]  # up, then down
    assert rates[: peak + 1] == sorted(rates[: peak + 1])
    assert rates[peak:] == sorted(rates[peak:], reverse=True)
    assert max(rates) <= 0.01 and max(rates) > 0.008  # it peaks near max_lr within an epoch

    plateau = trainer(*WINE, "scheduler=ReduceLROnPlateau", "iterations=2", "experiment_id=p")
    assert plateau.code == 0 and "ReduceLROnPlateau watches dev_accuracy: mode max" in plateau.out
    wrong = trainer(*WINE, "scheduler=ReduceLROnPlateau", "+scheduler.mode=min", "iterations=2")
    assert wrong.code == 2
    assert "scheduler.mode: 'min' would lower the learning rate whenever dev_accuracy improves" in (
        wrong.err
    )
    watch = trainer(*WINE, "scheduler=ReduceLROnPlateau", "scheduler.monitor=dev_loss",
                    "iterations=2", "experiment_id=loss")  # fmt: skip
    assert watch.code == 0 and "watches dev_loss: mode min" in watch.out
    bad = trainer(*WINE, "scheduler=ReduceLROnPlateau", "scheduler.monitor=dev_los")
    assert bad.code == 2 and "scheduler.monitor: 'dev_los' is not a metrics column" in bad.err


def test_edits_to_the_users_code_and_data_are_seen(trainer, tmp_path):
    """(A module name of its own: an earlier test imported my_nets from its folder.)"""
    _write(tmp_path, "edited_nets.py", MY_NETS)
    _write(tmp_path, "conf/model/Lib.yaml",
           "id: Lib\n_target_: edited_nets.library_like\nnum_classes: 3\n")  # fmt: skip
    args = ("model=Lib", *WINE, "iterations=1")
    assert trainer(*args).code == 0
    (run,) = run_dirs(tmp_path)
    assert (run / "snapshot/code/edited_nets.py").read_text() == MY_NETS
    status = yaml.safe_load((run / "status.yaml").read_text())
    assert list(status["fingerprint"]["code"]) == ["edited_nets.py"]

    assert "skip" in trainer(*args).out and "changed since" not in trainer(*args).out
    _write(tmp_path, "edited_nets.py", MY_NETS + "\n# tuned\n")
    again = trainer(*args)
    assert again.code == 0
    assert (
        f"skip {run.name}: finished; changed since: edited_nets.py (rerun_on_change=rerun"
        in again.out
    )
    assert "changed since" not in trainer(*args, "rerun_on_change=ignore").out
    before = (run / "metrics.csv").stat().st_mtime_ns
    rerun = trainer(*args, "rerun_on_change=rerun")
    assert rerun.code == 0, rerun.err
    assert f"rerun {run.name}: changed since it trained: edited_nets.py" in rerun.out
    assert (run / "metrics.csv").stat().st_mtime_ns != before
    assert (run / "snapshot/code/edited_nets.py").read_text().endswith("# tuned\n")
    assert "changed since" not in trainer(*args).out  # recorded anew


def test_an_edited_data_file_is_named(trainer, tmp_path):
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame.sample(frac=1.0, random_state=0)
    (tmp_path / "data").mkdir()
    for name, part in (("train", frame[:120]), ("dev", frame[120:150]), ("test", frame[150:])):
        part.to_csv(tmp_path / f"data/{name}.csv", index=False)
    args = ("dataset=Table", "iterations=1", "progress_bar=false")
    assert trainer(*args).code == 0
    frame[:119].to_csv(tmp_path / "data/train.csv", index=False)  # one row fewer
    result = trainer(*args)
    assert "finished; changed since: data/train.csv" in result.out


def test_sweep_syntax_gaps_are_clear_errors_and_verbs_complete(trainer, tmp_path, monkeypatch):
    cfg = trainer("-m", "learning_rate=0.1,0.01", "--cfg", "job")
    assert cfg.code == 2 and "does not combine with -m" in cfg.err
    assert "trainer validate -m" in cfg.err
    interval = trainer("-m", "learning_rate=interval(0.0001,0.1)")
    assert interval.code == 2 and "needs a search sweeper: add hydra/sweeper=search" in interval.err
    plan = trainer("validate", "-m", "learning_rate=interval(0.0001,0.1)")
    assert plan.code == 2 and "needs a search sweeper" in plan.err
    completion = trainer("--shell-completion")
    assert completion.code == 2 and "expected one of install=SHELL" in completion.err
    for result in (cfg, interval, plan, completion):
        assert "Traceback" not in result.err + result.out
    assert not (tmp_path / "results").exists()

    monkeypatch.setenv("COMP_LINE", "trainer va")
    assert trainer("-sc", "query=bash").out.split() == ["validate"]
    monkeypatch.setenv("COMP_LINE", "trainer ")
    words = trainer("-sc", "query=bash").out.split()
    assert {"postprocess", "preprocess", "status", "learning_rate=", "dataset="} <= set(words)
    monkeypatch.setenv("COMP_LINE", "trainer postprocess res")
    assert trainer("-sc", "query=bash").out.split() == []  # the shell completes the folder
