"""`trainer postprocess`: tables, aggregation over seeds, plots and the HTML report."""

from __future__ import annotations

import shutil
import subprocess

import matplotlib.image
import pandas as pd
import pytest
import yaml

from tests.conftest import SUBPROCESS_TIMEOUT, run_dirs

WINE = ("dataset=Wine", "batch_size=50", "iterations=3", "progress_bar=false")
OUT = "results/default/postprocessing"


@pytest.fixture
def sweep(trainer, tmp_path):
    """2 learning rates x 3 seeds, then postprocess."""
    result = trainer("-m", "learning_rate=0.01,0.0003", "seed=1,2,3", *WINE)
    assert result.code == 0, result.err
    return tmp_path


def test_tables_aggregation_and_plots(trainer, sweep):
    result = trainer("postprocess", "results/default")
    assert result.code == 0, result.err
    out = sweep / OUT
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 6
    assert {"run", "status", "learning_rate", "seed", "test_accuracy", "dev_accuracy"} <= set(runs)
    assert "optimizer.lr" not in runs  # a copy of learning_rate
    aggregated = pd.read_csv(out / "aggregated.csv")
    assert len(aggregated) == 2 and "seed" not in aggregated
    assert (aggregated["runs"] == 3).all() and (aggregated["test_accuracy_count"] == 3).all()
    means = runs.groupby("learning_rate")["dev_accuracy"].mean()
    best_lr = means.idxmax() if means.nunique() > 1 else None
    assert aggregated["dev_accuracy_mean"].tolist() == sorted(means, reverse=True)
    if best_lr is not None:
        assert aggregated.loc[0, "learning_rate"] == best_lr
        assert f"best configuration: learning_rate={best_lr:g}" in result.out
    curves = pd.read_csv(out / "curves.csv")
    assert len(curves) == 6 * 3 and {"run", "learning_rate_config", "seed"} <= set(curves)
    for name in ("runs", "curves", "aggregated"):
        parquet, csv = pd.read_parquet(out / f"{name}.parquet"), pd.read_csv(out / f"{name}.csv")
        assert list(parquet.columns) == list(csv.columns) and len(parquet) == len(csv)
        numbers = [c for c in csv.select_dtypes("number") if csv[c].notna().any()]
        pd.testing.assert_frame_equal(parquet[numbers], csv[numbers], check_dtype=False)
    pngs = sorted(p.name for p in out.glob("*.png"))
    # no curves_learning_rate.png: without a scheduler it is a flat line in every run
    expected = ["confusion_matrix.png", "curves_dev_accuracy.png", "curves_dev_f1.png",
                "curves_dev_loss.png", "curves_dev_uar.png", "curves_train_loss.png",
                "test_accuracy_per_config.png"]  # fmt: skip
    assert pngs == expected
    for name in pngs:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
        height, width, _ = matplotlib.image.imread(out / name).shape
        assert 300 < width < 2000 and 300 < height < 2000, name
    report = (out / "report.html").read_text()
    assert report.count("<img") == len(pngs) and "data:image/png;base64," in report
    assert 'id="aggregated"' in report and 'id="runs"' in report and 'class="best"' in report


@pytest.mark.slow  # an 8-run sweep
def test_aggregate_by_seed_and_optimizer(trainer, tmp_path):
    sweep = trainer("-m", "optimizer=Adam,SGD", "learning_rate=0.01,0.001", "seed=1,2", *WINE)
    assert sweep.code == 0, sweep.err
    assert trainer("postprocess", "results/default").code == 0
    by_seed = pd.read_csv(tmp_path / OUT / "aggregated.csv")
    assert len(by_seed) == 4 and (by_seed["runs"] == 2).all()
    both = trainer("postprocess", "results/default", "--aggregate-by", "seed,optimizer")
    assert both.code == 0, both.err
    grouped = pd.read_csv(tmp_path / OUT / "aggregated.csv")
    assert len(grouped) == 2 and (grouped["runs"] == 4).all()
    assert list(grouped.columns[:2]) == ["learning_rate", "runs"]
    bad = trainer("postprocess", "results/default", "--aggregate-by", "sed")
    assert bad.code == 2
    assert (
        "--aggregate-by: 'sed' is not a config key of these runs (did you mean 'seed'?)" in bad.err
    )


def test_failed_and_unfinished_runs_are_listed(trainer, tmp_path):
    assert trainer("-m", "seed=1,2", *WINE).code == 0
    assert trainer("optimizer=SGD", "learning_rate=1e12", *WINE).code == 1
    killed = run_dirs(tmp_path)[0]
    status = yaml.safe_load((killed / "status.yaml").read_text()) | {"state": "running"}
    (killed / "status.yaml").write_text(yaml.safe_dump(status))
    result = trainer("postprocess", "results/default", "--no-plots")
    assert result.code == 0, result.err
    assert "2 run(s) not finished" in result.out
    runs = pd.read_csv(tmp_path / OUT / "runs.csv").set_index("run")
    assert sorted(runs["status"]) == ["failed", "finished", "killed"]
    failed = runs[runs["status"] == "failed"].iloc[0]
    assert "the training loss became nan" in failed["error"]
    aggregated = pd.read_csv(tmp_path / OUT / "aggregated.csv")
    assert aggregated["runs"].sum() == 1  # only the finished run is aggregated
    assert not list((tmp_path / OUT).glob("*.png"))


@pytest.mark.parametrize("folder", ["empty", "missing", "results"])
def test_not_an_experiment_folder(trainer, tmp_path, folder):
    (tmp_path / "empty" / "training").mkdir(parents=True)
    (tmp_path / "results").mkdir()
    result = trainer("postprocess", folder)
    assert result.code == 2
    assert {"empty": "has no runs yet", "missing": "is not a folder",
            "results": "is not an experiment folder"}[folder] in result.err  # fmt: skip


def test_sweep_switch_postprocesses_at_the_end(trainer, tmp_path):
    result = trainer("-m", "seed=1,2", *WINE, "postprocess=true")
    assert result.code == 0, result.err
    assert "postprocessed 2 runs (2 finished)" in result.out
    assert (tmp_path / OUT / "report.html").is_file()


@pytest.mark.slow
def test_report_renders_in_headless_chromium(trainer, sweep):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed (Debian package: chromium)")
    assert trainer("postprocess", "results/default").code == 0
    report = sweep / OUT / "report.html"
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={sweep / 'chromium'}", "--virtual-time-budget=5000",
         "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, check=True,
    ).stdout  # fmt: skip
    images = len(list((sweep / OUT).glob("*.png")))
    assert f'data-images="{images}"' in dom  # every embedded image decoded
    assert '<table id="aggregated">' in dom and '<table id="runs">' in dom
    assert dom.count("<tr") >= 1 + 2 + 1 + 6  # header and rows of both tables


def test_runs_of_different_tasks_are_ranked_apart(trainer, tmp_path):
    assert trainer("dataset=Wine", "iterations=2", "progress_bar=false").code == 0
    assert trainer("dataset=Diabetes", "criterion=MSE", "iterations=2",
                   "progress_bar=false").code == 0  # fmt: skip
    result = trainer("postprocess", "results/default")
    assert result.code == 0, result.err
    assert "runs tracked by different metrics (datasets, tasks) are ranked apart" in result.out
    assert result.out.count("best configuration: ranked_by=") == 2
    table = pd.read_csv(tmp_path / OUT / "aggregated.csv")
    assert set(table.ranked_by) == {"dev_accuracy_mean", "dev_ccc_mean"}
    wine = table[table.ranked_by == "dev_accuracy_mean"]
    assert wine["dev_ccc_mean"].isna().all() and wine["dev_accuracy_mean"].notna().all()
    report = (tmp_path / OUT / "report.html").read_text()
    assert report.count("Best configuration:") == 2
