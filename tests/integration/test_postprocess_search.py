"""`trainer postprocess` on a search (issue 31): pruned runs listed as such and kept out of
the seed aggregates, and per study an optimisation-history figure and each trial's curve in
report.html; a study folder it must not read (a link, garbage) never fails it."""

from __future__ import annotations

import re
import shutil
import sys

import pandas as pd
import pytest
import yaml

from tests.conftest import run_dirs

optuna = pytest.importorskip("optuna")

OUT = "results/default/postprocessing"
# a grid of 2 learning rates x 2 seeds: the diverging rate falls below 0.5 at iteration 1
SEARCH = ("-m", "hydra/sweeper=search", "hydra.sweeper.sampler=grid",
          "hydra.sweeper.pruner={_target_: optuna.pruners.ThresholdPruner, lower: 0.5}",
          "learning_rate=0.003,20", "seed=1,2", "iterations=3", "progress_bar=false")  # fmt: skip


def prune(run, at):
    """Leave a finished run as the trainer leaves a run the search pruned at ``at``."""
    metrics = pd.read_csv(run / "metrics.csv")
    metrics[metrics["iteration"] <= at].to_csv(run / "metrics.csv", index=False)
    value = metrics.loc[metrics["iteration"] == at, "dev_accuracy"].item()
    status = yaml.safe_load((run / "status.yaml").read_text())
    status |= {"state": "pruned", "pruned_at": at,
               "reason": f"pruned at iteration {at}: dev accuracy {value:.4g}"}  # fmt: skip
    (run / "status.yaml").write_text(yaml.safe_dump(status))
    (run / "results.yaml").unlink()
    shutil.rmtree(run / "outputs")


def make_journal(folder, name):
    """A study of two trials written by Optuna itself: one complete, one pruned."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    folder.mkdir(parents=True)
    storage = JournalStorage(JournalFileBackend(str(folder / "journal.log")))
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    for values, state in (((0.5, 0.7), TrialState.COMPLETE), ((0.2,), TrialState.PRUNED)):
        trial = study.ask()
        for step, value in enumerate(values, start=1):
            trial.report(value, step)
        study.tell(trial, values[-1] if state == TrialState.COMPLETE else None, state=state)


def test_pruned_runs_are_marked_kept_out_of_aggregates_and_the_search_is_drawn(trainer, tmp_path):
    assert trainer(*SEARCH).code == 0
    runs = {r.name: r for r in run_dirs(tmp_path)}
    # beside the search's 2 pruned runs, one pruned in a configuration with a finished run
    (half,) = [r for n, r in runs.items() if "_0.003_" in n and n.endswith("_2")]
    prune(half, 2)
    result = trainer("postprocess", "results/default")
    assert result.code == 0, result.err
    assert "postprocessed 4 runs (1 finished, 3 pruned)" in result.out
    assert "not finished" not in result.out and not result.err
    out = tmp_path / OUT

    table = pd.read_csv(out / "runs.csv").set_index("run")
    pruned = table[table["status"] == "pruned"]
    assert sorted(pruned["learning_rate"]) == [0.003, 20, 20]
    for name, row in pruned.iterrows():  # the best dev value up to where it was pruned
        metrics = pd.read_csv(runs[name] / "metrics.csv")
        status = yaml.safe_load((runs[name] / "status.yaml").read_text())
        best = metrics.loc[metrics["dev_accuracy"].idxmax()]
        assert row["pruned_at"] == status["pruned_at"] == metrics["iteration"].max()
        assert row["reason"] == status["reason"]
        assert row["best_iteration"] == best["iteration"]
        assert row["dev_accuracy"] == pytest.approx(best["dev_accuracy"])
        assert pd.isna(row["test_accuracy"])
    assert table.loc[half.name, "pruned_at"] == 2

    # the aggregates: the finished run alone; learning rate 20 (every run pruned) not at all
    finished = table[table["status"] == "finished"]
    aggregated = pd.read_csv(out / "aggregated.csv")
    assert aggregated["learning_rate"].tolist() == [0.003]
    row = aggregated.iloc[0]
    assert row["runs"] == 1 and row["dev_accuracy_count"] == 1
    assert row["dev_accuracy_mean"] == pytest.approx(finished["dev_accuracy"].item())

    report = (out / "report.html").read_text()
    assert report.count('<tr class="pruned">') == 3
    for reason in pruned["reason"]:
        assert f'<span class="why">{reason.replace(".", ".<wbr>")}</span>' in report
    assert "3 run(s) pruned by a search are left out of the aggregates" in report

    # the search: its two figures, in the report's Search section
    (study,) = (tmp_path / "results/default/search").iterdir()
    figures = [f"search_{study.name}_history.png", f"search_{study.name}_trials.png"]
    for name in figures:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    section = re.search(r'<h2 id="search">.*?(?=<h2 )', report, re.S)[0]
    assert '<a href="#search">Search</a>' in report
    assert f"<h3>Study {study.name}</h3>" in section
    assert "4 trials of 4 (2 complete, 2 pruned); maximize dev accuracy." in section
    assert section.count("<img") == 2 and "pruned trials" in section


def test_the_search_figures_draw_pruned_trials_apart(trainer, tmp_path):
    """What the figures draw, from a journal Optuna wrote: the pruned trial at its last
    reported value, a cross in the history and a dashed grey curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sweeptrainer.postprocess.collect import collect
    from sweeptrainer.postprocess.search import read_searches, search_figures

    assert trainer("dataset=Wine", "batch_size=50", "iterations=1", "progress_bar=false").code == 0
    root = tmp_path / "results/default"
    make_journal(root / "search" / "study-1", "study-1")
    experiment = collect(root)
    searches = read_searches(experiment)
    assert searches.notes == []
    (study,) = searches.studies
    assert [(t.number, t.state, t.value) for t in study.trials] == [
        (1, "complete", 0.7), (2, "pruned", 0.2)]  # fmt: skip
    history, trials = search_figures(searches, experiment, tmp_path)
    assert history.path.name == "search_study-1_history.png" and history.section == "search"

    ax = history.make(plt).axes[0]
    points = {c.get_label(): c.get_offsets().tolist() for c in ax.collections}
    assert points["complete trial"] == [[1, 0.7]]
    assert points["pruned trial (last value)"] == [[2, 0.2]]
    assert ax.lines[0].get_label() == "best so far"

    ax = trials.make(plt).axes[0]
    dashed = [c for c in ax.collections if c.get_linestyle()[0][1] is not None]
    assert [s.tolist() for c in dashed for s in c.get_segments()] == [[[1, 0.2]]]
    solid = ax.collections[0].get_segments()
    assert [s.tolist() for s in solid] == [[[1, 0.5], [2, 0.7]]]
    plt.close("all")


def test_links_garbage_and_no_optuna_never_fail_postprocess(trainer, tmp_path, monkeypatch):
    """Study folders are untrusted: a study folder or journal that is a symbolic link is not
    read, a damaged journal is skipped, each with a one-line warning; the good study beside
    them is drawn. Without Optuna, the studies are named, not drawn."""
    assert trainer("dataset=Wine", "batch_size=50", "iterations=1", "progress_bar=false").code == 0
    root = tmp_path / "results/default"
    search, outside = root / "search", tmp_path / "outside"
    make_journal(search / "good", "good")
    make_journal(outside / "linked", "linked")
    make_journal(outside / "filelink", "filelink")
    (search / "linked").symlink_to(outside / "linked")
    (search / "filelink").mkdir()
    (search / "filelink" / "journal.log").symlink_to(outside / "filelink" / "journal.log")
    (search / "garbage").mkdir()
    (search / "garbage" / "journal.log").write_bytes(b'{"op_code": 0}\nnot json\n\xff\x00]}\n')
    (search / "empty").mkdir()  # a study not started yet: no journal, nothing said

    result = trainer("postprocess", "results/default")
    assert result.code == 0, result.err
    warnings = sorted(result.err.strip().splitlines())
    assert len(warnings) == 3 and all(w.startswith("warning: ") for w in warnings)
    filelink, garbage, linked = warnings
    assert filelink.endswith("search/filelink/journal.log: a symbolic link, not read")
    assert linked.endswith("search/linked/journal.log: a symbolic link, not read")
    assert "search/garbage/journal.log: not a readable study journal" in garbage
    out = tmp_path / OUT
    assert sorted(p.name for p in out.glob("search_*.png")) == [
        "search_good_history.png", "search_good_trials.png"]  # fmt: skip
    report = (out / "report.html").read_text()
    assert "<h3>Study good</h3>" in report and "Study linked" not in report
    assert report.count("a symbolic link, not read") == 2

    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` fails
    result = trainer("postprocess", "results/default", "--no-plots")
    assert result.code == 0, result.err
    assert result.err.count("\n") == 3 and "Optuna is not installed" in result.err
    assert not list(out.glob("search_*.png"))
    assert "Optuna is not installed" in (out / "report.html").read_text()
