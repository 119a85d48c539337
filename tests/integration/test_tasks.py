"""Every built-in dataset, model and criterion really trains."""

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_wine

from tests.conftest import run_dirs


def _results(tmp_path):
    (run,) = run_dirs(tmp_path)
    return run, yaml.safe_load((run / "results.yaml").read_text())


def test_regression_on_diabetes(trainer, tmp_path):
    result = trainer(
        "dataset=Diabetes",
        "model=FFNN",
        "criterion=MSE",
        "iterations=15",
        "learning_rate=0.003",
        "progress_bar=false",
    )
    assert result.code == 0, result.err
    # the losses in standardised units, the metrics in the original ones
    assert "loss(std) " in result.out and "| dev(std) " in result.out
    run, results = _results(tmp_path)
    assert results["tracking_metric"] == "ccc"
    assert set(results["test"]) == {"loss", "ccc", "mae", "mse", "pcc"}
    assert results["test"]["ccc"] > 0.4  # learned something real
    # reported in the original units (disease progression ~ 25..346), not standardised
    assert 30 < results["test"]["mae"] < 80
    outputs = pd.read_csv(run / "outputs/test.csv")
    assert list(outputs.columns) == ["index", "target", "prediction", "loss"]
    assert outputs.target.min() > 20


@pytest.mark.parametrize("dataset", ["Wine", "BreastCancer"])
def test_small_classification_datasets(trainer, tmp_path, dataset):
    result = trainer(
        f"dataset={dataset}", "iterations=10", "learning_rate=0.01", "progress_bar=false"
    )
    assert result.code == 0, result.err
    _, results = _results(tmp_path)
    assert results["test"]["accuracy"] > 0.85


def test_cnn_on_digits_images(trainer, tmp_path):
    result = trainer("model=CNN", "iterations=3", "learning_rate=0.01", "progress_bar=false")
    assert result.code == 0, result.err
    _, results = _results(tmp_path)
    assert results["test"]["accuracy"] > 0.8


@pytest.mark.parametrize("optimizer", ["AdamW", "SGD"])
@pytest.mark.parametrize("scheduler", ["StepLR", "CosineAnnealingLR", "LinearWarmup"])
def test_optimizers_and_schedulers(trainer, tmp_path, optimizer, scheduler):
    result = trainer(
        f"optimizer={optimizer}",
        f"scheduler={scheduler}",
        "iterations=3",
        "progress_bar=false",
        "dataset=Wine",
    )
    assert result.code == 0, result.err
    (run,) = run_dirs(tmp_path)
    rates = pd.read_csv(run / "metrics.csv").learning_rate
    if scheduler != "StepLR":  # StepLR only changes after 10 iterations
        assert rates.nunique() == 3


def test_balanced_class_weights(trainer, tmp_path):
    result = trainer(
        "dataset=BreastCancer",
        "criterion.class_weights=balanced",
        "iterations=2",
        "progress_bar=false",
    )
    assert result.code == 0, result.err


def _write_wine_tables(root, string_labels=True):
    wine = load_wine(as_frame=True)
    frame = wine.frame.rename(columns={"target": "cultivar"})
    if string_labels:
        frame["cultivar"] = frame.cultivar.map({0: "barolo", 1: "grignolino", 2: "barbera"})
    order = np.random.default_rng(0).permutation(len(frame))
    (root / "data").mkdir()
    for name, part in zip(("train", "dev", "test"), np.split(order, [120, 150]), strict=True):
        frame.iloc[part].to_csv(root / "data" / f"{name}.csv", index=False)


def test_table_classification_with_string_labels(trainer, tmp_path):
    _write_wine_tables(tmp_path)
    result = trainer(
        "dataset=Table",
        "dataset.target=cultivar",
        "iterations=10",
        "learning_rate=0.01",
        "progress_bar=false",
    )
    assert result.code == 0, result.err
    run, results = _results(tmp_path)
    assert results["test"]["accuracy"] > 0.85
    outputs = pd.read_csv(run / "outputs/test.csv")
    assert set(outputs.target) <= {"barolo", "grignolino", "barbera"}
    assert {"score_barbera", "score_barolo", "score_grignolino"} <= set(outputs.columns)


def test_table_regression_with_parquet(trainer, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = x @ np.array([1.0, -2.0, 0.5, 0.0]) * 10 + 100
    frame = pd.DataFrame(x, columns=list("abcd")).assign(y=y)
    (tmp_path / "data").mkdir()
    parts = {"train": frame.iloc[:200], "dev": frame.iloc[200:250], "test": frame.iloc[250:]}
    for name, part in parts.items():
        part.to_parquet(tmp_path / "data" / f"{name}.parquet")
    result = trainer(
        "dataset=Table",
        "dataset.task=regression",
        "dataset.target=y",
        "dataset.scale_target=true",
        "dataset.train=data/train.parquet",
        "dataset.dev=data/dev.parquet",
        "dataset.test=data/test.parquet",
        "dataset.metrics=[ccc,mae]",
        "dataset.tracking_metric=ccc",
        "criterion=MSE",
        "iterations=20",
        "learning_rate=0.01",
        "progress_bar=false",
    )
    assert result.code == 0, result.err
    _, results = _results(tmp_path)
    assert results["test"]["ccc"] > 0.9
