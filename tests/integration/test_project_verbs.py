"""`trainer create`, `list`, `show` and `inference`, driven as a new user would."""

from __future__ import annotations

import os
import re

import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_digits

from sweeptrainer.components.datasets import split_indices
from sweeptrainer.create import TEMPLATES
from tests.conftest import run_dirs

# the file templates' data is bigger: one epoch, and a narrower audio CNN
SMALLER = {"images": ("iterations=1",), "audio": ("iterations=1", "model.channels=[8,16]")}


@pytest.mark.parametrize("template", [t.name for t in TEMPLATES])
def test_every_template_trains_at_once(trainer, tmp_path, template, monkeypatch):
    created = trainer("create", "project", "--template", template)
    assert created.code == 0, created.err
    assert "next: cd project && trainer" in created.out
    monkeypatch.chdir(tmp_path / "project")
    result = trainer("progress_bar=false", "iterations=3", *SMALLER.get(template, ()))
    assert result.code == 0, result.err
    (run,) = run_dirs(tmp_path / "project", template.replace("-", "_"))
    assert yaml.safe_load((run / "status.yaml").read_text())["state"] == "finished"
    config = (tmp_path / "project" / "conf" / "config.yaml").read_text()
    assert "sweeper:\n    params:" in config and "# seeds Python, NumPy, torch" in config


def test_templates_declare_a_sweep_that_validates(trainer, tmp_path, monkeypatch):
    assert trainer("create", "p", "--template", "custom-model").code == 0
    monkeypatch.chdir(tmp_path / "p")
    plan = trainer("validate", "-m")
    assert plan.code == 0, plan.out
    assert "4 run(s), 0 invalid" in plan.out and "model.hidden-128" in plan.out


def test_create_lists_and_refuses_to_overwrite(trainer, tmp_path):
    listing = trainer("create", "--list")
    assert listing.code == 0
    assert [line.split()[0] for line in listing.out.splitlines()] == [t.name for t in TEMPLATES]
    assert trainer("create", "p").code == 0
    (tmp_path / "p" / "conf" / "config.yaml").write_text("mine")
    again = trainer("create", "p")
    assert again.code == 2 and "would overwrite conf/config.yaml" in again.err
    assert (tmp_path / "p" / "conf" / "config.yaml").read_text() == "mine"
    assert trainer("create", "p", "--force").code == 0
    assert (tmp_path / "p" / "conf" / "config.yaml").read_text() != "mine"
    bad = trainer("create", "q", "--template", "nope")
    assert bad.code == 2 and "no template 'nope'" in bad.err


def test_create_into_the_current_folder(trainer, tmp_path):
    result = trainer("create")
    assert result.code == 0 and (tmp_path / "conf" / "config.yaml").is_file()
    assert "next: trainer" in result.out


def test_list_and_show(trainer, tmp_path):
    listed = trainer("list", "model")
    assert listed.code == 0
    assert re.search(r"FFNN +packaged +sweeptrainer.components.models.FFNN", listed.out)
    shown = trainer("show", "optimizer", "Adam")
    assert shown.code == 0 and "_target_: torch.optim.Adam" in shown.out
    saved = trainer("show", "model", "FFNN", "--save")
    assert saved.code == 0 and (tmp_path / "conf" / "model" / "FFNN.yaml").is_file()
    assert re.search(r"FFNN +yours", trainer("list", "model").out)
    assert trainer("list", "nope").code == 2
    missing = trainer("show", "model", "Nope")
    assert missing.code == 2 and "no option 'Nope' in group 'model'" in missing.err


@pytest.fixture
def digits_run(trainer, tmp_path):
    assert trainer("iterations=3", "progress_bar=false").code == 0
    (run,) = run_dirs(tmp_path)
    return run


def test_inference_on_a_csv_of_digits_features_matches_the_test_accuracy(
    trainer, tmp_path, digits_run
):
    frame = load_digits(as_frame=True).frame
    _, _, test = split_indices(len(frame), 0, 0.15, 0.15)
    frame.iloc[test].to_csv(tmp_path / "digits.csv", index=False)
    os.chdir(tmp_path / "results")  # works from any folder
    result = trainer("inference", str(digits_run), str(tmp_path / "digits.csv"), "out.csv")
    assert result.code == 0, result.err
    predictions = pd.read_csv(tmp_path / "results" / "out.csv")
    assert len(predictions) == len(test)
    assert [c for c in predictions.columns if c.startswith("score_")] == [
        f"score_{i}" for i in range(10)
    ]
    accuracy = (
        predictions["prediction"].to_numpy() == frame.iloc[test]["target"].to_numpy()
    ).mean()
    results = yaml.safe_load((digits_run / "results.yaml").read_text())
    assert accuracy == pytest.approx(results["test"]["accuracy"])


def test_inference_on_a_dataset_split(trainer, tmp_path, digits_run):
    result = trainer("inference", str(digits_run), "Digits:test", "out.parquet")
    assert result.code == 0, result.err
    outputs = pd.read_csv(digits_run / "outputs" / "test.csv")
    predictions = pd.read_parquet(tmp_path / "out.parquet")
    assert (predictions["prediction"].astype(str) == outputs["prediction"].astype(str)).all()


def test_inference_errors(trainer, tmp_path, digits_run):
    pd.DataFrame({"a": [1.0]}).to_csv(tmp_path / "wrong.csv", index=False)
    wrong = trainer("inference", str(digits_run), "wrong.csv", "out.csv")
    assert wrong.code == 2 and "lacks 64 feature column(s) the model was trained on" in wrong.err
    (digits_run / "states" / "best.pt").unlink()
    stateless = trainer("inference", str(digits_run), "Digits:test", "out.csv")
    assert stateless.code == 2 and "has no states/best.pt" in stateless.err
    not_a_run = trainer("inference", "results", "Digits:test", "out.csv")
    assert not_a_run.code == 2 and "is not a run folder" in not_a_run.err
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.slow
def test_quickstart_declared_sweep_and_postprocess(trainer, tmp_path, monkeypatch):
    assert trainer("create", "project").code == 0
    monkeypatch.chdir(tmp_path / "project")
    sweep = trainer("-m", "progress_bar=false", "iterations=5")  # the declared sweep, shorter
    assert sweep.code == 0, sweep.err
    assert "sweep: 4 runs: 4 trained" in sweep.out
    post = trainer("postprocess", "results/quickstart")
    assert post.code == 0, post.err
    aggregated = pd.read_csv(tmp_path / "project/results/quickstart/postprocessing/aggregated.csv")
    assert sorted(aggregated["learning_rate"]) == [0.001, 0.01] and (aggregated["runs"] == 2).all()
