"""`trainer postprocess`: tables, aggregation over seeds, plots and the HTML report."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote, unquote

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
    curves = [p for p in pngs if p.startswith("curves_")]
    assert sorted(set(pngs) - set(curves)) == [
        "confusion_matrix.png", "dev_accuracy_parallel_coordinates.png",
        "dev_accuracy_vs_hyperparameters.png", "test_accuracy_per_config.png"]  # fmt: skip
    # metrics that move together are panels of one figure (the losses always are); no
    # learning_rate: without a scheduler it is a flat line in every run
    assert "curves_train_loss+dev_loss.png" in curves
    panels = [m for p in curves for m in p.removeprefix("curves_").removesuffix(".png").split("+")]
    assert sorted(panels) == ["dev_accuracy", "dev_f1", "dev_loss", "dev_uar", "train_loss"]
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


def chromium() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed (Debian package: chromium)")
    return browser


def rendered(browser: str, report: Path, width: int, clicks: list[str], profile: Path) -> dict:
    """The report rendered by headless Chromium at ``width`` px, with the page's self-check
    (``#test=``: clicks on those headers, then overflow): the data attributes of <body>."""
    fragment = ",".join(quote(click, safe=":") for click in clicks)
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", f"--window-size={width},800",
         "--hide-scrollbars", "--virtual-time-budget=5000", "--dump-dom",
         f"{report.as_uri()}#test={fragment}"],
        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, check=True,
    ).stdout  # fmt: skip
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:2000]
    return {k: html.unescape(v) for k, v in re.findall(r'data-([a-z-]+)="([^"]*)"', body[1])}


@pytest.mark.slow  # headless Chromium renders the report (about 6 s)
def test_report_in_headless_chromium(trainer, tmp_path):
    """A 2x2 sweep's report, moved with its experiment: both tables sort by a click on a
    header, every image loads, nothing sticks out of the window at 1000 and 1600 px, and
    the links reach each run's folder and train.log."""
    browser = chromium()
    sweep = trainer("-m", "learning_rate=0.01,0.0003", "seed=1,2", *WINE[:2], "iterations=2",
                    "progress_bar=false")  # fmt: skip
    assert sweep.code == 0, sweep.err
    assert trainer("postprocess", "results/default").code == 0
    moved = tmp_path / "elsewhere" / "experiment"
    moved.parent.mkdir()
    shutil.move(tmp_path / "results" / "default", moved)  # relative links survive a move
    out = moved / "postprocessing"
    report, runs = out / "report.html", pd.read_csv(out / "runs.csv")
    clicks = ["runs:dev_accuracy", "runs:dev_accuracy", "aggregated:learning_rate",
              "aggregated:learning_rate", "runs:run", "aggregated:runs"]  # fmt: skip
    for width in (1000, 1600):
        page = rendered(browser, report, width, clicks, tmp_path / "chromium")
        assert int(page["width"]) == width and page["scroll-width"] == page["width"]
        assert json.loads(page["overflow"]) == [], (width, page["overflow"])
        pngs = len(list(out.glob("*.png")))
        assert page["images"] == page["images-total"] == str(pngs) and pngs >= 6
        # each cell's sort key: exact numbers, the run's name without its train.log link
        low, high, by_lr, by_lr_down, by_name, by_runs = json.loads(page["sorted"])
        assert (low["order"], high["order"]) == ("ascending", "descending")
        assert float(low["first"]["dev_accuracy"]) == pytest.approx(runs["dev_accuracy"].min())
        assert float(high["first"]["dev_accuracy"]) == pytest.approx(runs["dev_accuracy"].max())
        assert (by_lr["first"]["learning_rate"], by_lr_down["first"]["learning_rate"]) == (
            "0.0003", "0.01")  # fmt: skip
        assert by_name["first"]["run"] == sorted(runs["run"])[0]
        assert by_runs["first"]["runs"] == "2" and "dev_accuracy" in by_runs["first"]
    # the tables: swept keys first, one `runs` column instead of a `_count` per metric
    text = report.read_text()
    heads = {t: re.search(rf'<table id="{t}".*?</thead>', text, re.S)[0] for t in ("aggregated",
             "runs")}  # fmt: skip
    headers = {t: re.findall(r'<th data-key="([^"]+)"', head) for t, head in heads.items()}
    assert headers["aggregated"][:3] == ["learning_rate", "runs", "dev_loss"]
    assert not [h for h in headers["aggregated"] if h.endswith(("_count", "_mean", "_std"))]
    assert headers["runs"][:4] == ["learning_rate", "seed", "run", "status"]
    assert "±" in text and "n = 2 seeds" in text
    for fact in ("Wine", "FFNN", "2 epochs", "dev accuracy (higher is better)"):
        assert f"<dd>{fact}</dd>" in text
    assert 'id="classes"' in text and text.count("<tfoot>") == 1  # per class, best run
    runs_table = re.search(r'<table id="runs".*?</table>', text, re.S)[0]
    links = re.findall(r'<a (?:class="log" )?href="([^"]+)"', runs_table)
    assert len(links) == 2 * 4 and all(link.startswith("../training/") for link in links)
    for link in links:
        target = (out / unquote(link)).resolve()
        assert target.is_relative_to(moved) and target.exists(), link
        assert target.is_dir() if link.endswith("/") else target.name == "train.log"


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


def test_report_escapes_run_folders_and_stays_inside(trainer, tmp_path):
    """Run folders are untrusted: a name with markup is escaped and its link quoted; a
    symbolic link out of the experiment (train.log, test outputs, metrics) is neither read
    nor linked."""
    assert trainer("-m", "seed=1,2", *WINE[:2], "iterations=1", "progress_bar=false").code == 0
    first, second = run_dirs(tmp_path)
    hostile = first.with_name('x"><img src=x onerror=alert(1)> #?&')
    first.rename(hostile)
    outside = tmp_path / "outside"
    outside.mkdir()
    for i, run in enumerate((hostile, second)):  # good classification outputs, but outside
        (outside / f"test{i}.csv").write_bytes((run / "outputs" / "test.csv").read_bytes())
        (run / "outputs" / "test.csv").unlink()
        (run / "outputs" / "test.csv").symlink_to(outside / f"test{i}.csv")
    for name in ("train.log", "metrics.csv"):
        (outside / name).write_bytes((second / name).read_bytes())
        (second / name).unlink()
        (second / name).symlink_to(outside / name)
    result = trainer("postprocess", "results/default")
    assert result.code == 0, result.err
    out = tmp_path / OUT
    text = (out / "report.html").read_text()
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    folder = f"../training/{quote(hostile.name, safe='')}/"
    assert f'<a href="{folder}">' in text and f'<a class="log" href="{folder}train.log">' in text
    assert f"{second.name}/train.log" not in text  # a link out of the experiment: not linked
    assert 'id="classes"' not in text  # the test outputs are outside: no per-class section
    assert set(pd.read_csv(out / "curves.csv")["run"]) == {hostile.name}


@pytest.mark.parametrize("task", ["multilabel", "regression"])
def test_report_per_class_only_for_single_label_outputs(trainer, tmp_path, task):
    assert trainer(*WINE[:2], "iterations=2", "progress_bar=false").code == 0
    (run,) = run_dirs(tmp_path)
    outputs = pd.read_csv(run / "outputs" / "test.csv")
    if task == "multilabel":  # a 0/1 per label, scores per label
        outputs["target"] = "0 1 0"
        outputs["prediction"] = "1 1 0"
    else:  # numbers, no scores
        outputs = outputs.drop(columns=[c for c in outputs if c.startswith("score_")])
        outputs["target"], outputs["prediction"] = 1.5, 2.5
    outputs.to_csv(run / "outputs" / "test.csv", index=False)
    assert trainer("postprocess", "results/default").code == 0
    text = (tmp_path / OUT / "report.html").read_text()
    assert 'id="classes"' not in text and "Best run per class" not in text
    assert not (tmp_path / OUT / "confusion_matrix.png").exists()
    assert 'id="curves"' in text and 'id="runs"' in text
