"""``hydra/sweeper=search`` (issue 31): a search on Optuna whose runs report at every
evaluation and are pruned there, one journal for every launcher, resumed by running the
command again. Driven through the CLI on Digits, as a user would."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest
import yaml

from tests.conftest import run_dirs, snapshot

optuna = pytest.importorskip("optuna")

SEARCH = ("-m", "hydra/sweeper=search")
# the grid: 5 learning rates (two of them diverge at once) x 2 seeds, 12 epochs
GRID = (*SEARCH, "hydra.sweeper.sampler=grid", "hydra.sweeper.pruner=halving",
        "learning_rate=0.001,0.003,0.01,5,20", "seed=1,2", "iterations=12",
        "progress_bar=false")  # fmt: skip


def studies(root, experiment="default"):
    return sorted((root / "results" / experiment / "search").iterdir())


def load(folder):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(folder / "journal.log")))
    return optuna.load_study(study_name=folder.name, storage=storage)


def states(root, experiment="default"):
    return {
        r.name: yaml.safe_load((r / "status.yaml").read_text()) for r in run_dirs(root, experiment)
    }


def test_a_grid_prunes_its_diverging_runs_and_a_second_command_trains_nothing(trainer, tmp_path):
    first = trainer(*GRID)
    assert first.code == 0, first.err
    (folder,) = studies(tmp_path)
    study = load(folder)  # a plain Optuna journal: optuna.load_study reads it
    trials = study.get_trials()
    assert len(trials) == 10 and sorted(t.number for t in trials) == list(range(10))
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 10  # the whole grid
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned and all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    assert any(t.params["learning_rate"] in (5, 20) for t in pruned)
    # each trial's run reported its dev accuracy at each evaluation, iteration as step
    assert all(t.intermediate_values for t in trials)

    runs = states(tmp_path)
    assert len(runs) == 10
    assert sum(s["state"] == "pruned" for s in runs.values()) == len(pruned)
    for name, status in runs.items():
        if status["state"] == "pruned":
            reason = f"pruned at iteration {status['pruned_at']}: dev accuracy "
            assert status["reason"].startswith(reason)
            assert (tmp_path / "results/default/training" / name / "states/last.pt").is_file()
    evaluations = sum(len(pd.read_csv(r / "metrics.csv")) for r in run_dirs(tmp_path))
    assert evaluations < 10 * 12
    assert "[trial 1/10]" in first.out and "[trial 10/10]" in first.out
    assert f"pruned at iteration {pruned[0].last_step}" in first.out

    best = yaml.safe_load((folder / "best.yaml").read_text())
    assert best["best"]["value"] == study.best_value
    assert best["best"]["params"] == study.best_params
    assert f"best trial {study.best_trial.number + 1}/10: " in first.out

    before = snapshot(tmp_path / "results" / "default" / "training")
    again = trainer(*GRID)
    assert again.code == 0, again.err
    assert " train " not in again.out and "sweep: 10 runs: 0 trained" in again.out
    assert len(load(folder).get_trials()) == 10
    assert snapshot(tmp_path / "results" / "default" / "training") == before

    status = trainer("status", "results/default")
    assert status.out.count(" pruned ") == len(pruned)
    assert f"search {folder.name}: 10/10 trials done" in status.out


def test_a_tpe_search_with_the_median_pruner_runs_its_trials_and_prints_the_best(trainer, tmp_path):
    result = trainer(*SEARCH, "hydra.sweeper.sampler=tpe", "hydra.sweeper.pruner=median",
                     "hydra.sweeper.n_trials=8", "learning_rate=tag(log,interval(1e-4,3))",
                     "iterations=3", "progress_bar=false")  # fmt: skip
    assert result.code == 0, result.err
    (folder,) = studies(tmp_path)
    study = load(folder)
    assert len(study.get_trials()) == 8
    rates = [t.params["learning_rate"] for t in study.get_trials()]
    assert all(1e-4 <= r <= 3 for r in rates) and len(set(rates)) == 8
    assert f"learning_rate={study.best_params['learning_rate']}" in result.out
    assert "best trial " in result.out


def test_a_pruned_run_is_final_and_a_longer_run_continues_from_it(trainer, tmp_path):
    """A pruned run is skipped by the same command; `continue_training` picks it up when a
    longer run of its config is asked for."""
    args = (*SEARCH, "hydra.sweeper.sampler=grid", "learning_rate=0.003,0.01",
            "hydra.sweeper.pruner={_target_: optuna.pruners.ThresholdPruner, lower: 0.99}",
            "iterations=3", "progress_bar=false")  # fmt: skip
    assert trainer(*args).code == 0
    runs = states(tmp_path)
    assert [s["state"] for s in runs.values()] == ["pruned", "pruned"]
    assert {s["pruned_at"] for s in runs.values()} == {1}
    again = trainer(*args)
    assert again.code == 0 and "sweep: 2 runs: 0 trained" in again.out and "2 pruned" in again.out

    longer = trainer("learning_rate=0.003", "iterations=4", "progress_bar=false")
    assert longer.code == 0, longer.err
    (source,) = [n for n in runs if "_0.003_" in n]
    assert f"continue from {source} at iteration 1" in longer.out + longer.err
    (continued,) = [r for r in run_dirs(tmp_path) if r.name not in runs]
    results = yaml.safe_load((continued / "results.yaml").read_text())
    assert results["continued_from"] == {"run": source, "iteration": 1}


@pytest.mark.parametrize(
    "bad, says",
    [
        (("hydra.sweeper.direction=minimize",), "contradicts the tracking metric"),
        (("learning_rate=range(5,1)",), "range(5,1): the sweep is empty"),
        (("hydra.sweeper.sampler=tpx",), "unknown sampler (did you mean 'tpe'?)"),
        (("hydra.sweeper.pruner=medain",), "unknown pruner (did you mean 'median'?)"),
        (("hydra.sweeper.n_trials=0",), "n_trials=0: expected at least 1"),
        (("learning_rate=interval(1e-4",), "cannot be parsed"),
        (("learning_rate=interval(3,1)",), "the interval is empty"),
        (
            ("hydra.sweeper.sampler=grid", "learning_rate=interval(0.1,1)"),
            "the grid sampler takes values",
        ),
        (("hydra.sweeper.sampler={_target_: os.system}",), "not an Optuna sampler class"),
        (("+hydra.sweeper.n_trial=3",), "unknown key of the search sweeper"),
    ],
)
def test_bad_search_input_is_one_line_exit_2_and_nothing_written(trainer, tmp_path, bad, says):
    (tmp_path / "results").mkdir()
    before = snapshot(tmp_path)
    result = trainer(*SEARCH, "hydra.sweeper.n_trials=3", "learning_rate=0.1,0.2", *bad)
    assert result.code == 2 and says in result.err, result.err
    assert result.err.strip().count("\n") == 0, result.err  # one line
    assert snapshot(tmp_path) == before


@pytest.mark.slow  # joblib's worker processes (about 5 s)
def test_joblib_jobs_share_one_study(trainer, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    result = trainer(*SEARCH, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                     "hydra.sweeper.sampler=random", "hydra.sweeper.n_trials=4",
                     "learning_rate=tag(log,interval(1e-3,1e-1))", "dataset=Wine",
                     "iterations=2", "progress_bar=false")  # fmt: skip
    assert result.code == 0, result.err
    (folder,) = studies(tmp_path)
    trials = load(folder).get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert all(t.intermediate_values == {1: t.intermediate_values[1], 2: t.value} or
               max(t.intermediate_values.values()) == t.value for t in trials)  # fmt: skip
    assert len(run_dirs(tmp_path)) == 4
    assert "sweep: 4 runs: 4 trained" in result.out


def test_validate_shows_the_study_a_search_would_open_or_what_is_wrong(trainer, tmp_path):
    good = trainer("validate", *SEARCH, "hydra.sweeper.sampler=grid", "learning_rate=0.1,0.01")
    assert good.code == 0 and "(search)" in good.out and "2 trials, sampler grid" in good.out
    assert "2 run(s), 0 invalid" in good.out
    bad = trainer("validate", *SEARCH, "learning_rate=0.1,0.01")  # tpe: n_trials needed
    assert bad.code == 2 and "INVALID: hydra.sweeper.n_trials" in bad.out
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    "sampler, pruner",
    [("random", "hyperband"), ("nsga2", "median"), ("gp", "halving"), ("cmaes", "none")],
)
def test_every_named_sampler_and_pruner_runs_a_search(trainer, tmp_path, sampler, pruner):
    result = trainer(*SEARCH, f"hydra.sweeper.sampler={sampler}", f"hydra.sweeper.pruner={pruner}",
                     "hydra.sweeper.n_trials=2", "learning_rate=tag(log,interval(1e-3,1e-1))",
                     "dataset=Wine", "iterations=2", "progress_bar=false")  # fmt: skip
    if sampler == "cmaes" and importlib.util.find_spec("cmaes") is None:
        assert result.code == 2 and "pip install cmaes" in result.err
        return
    assert result.code == 0, result.err
    (folder,) = studies(tmp_path)
    assert [t.state.name for t in load(folder).get_trials()] == ["COMPLETE"] * 2


def test_step_training_reports_at_its_evaluations_and_is_pruned_there(trainer, tmp_path):
    result = trainer(*SEARCH, "hydra.sweeper.sampler=grid", "learning_rate=0.003,0.01",
                     "hydra.sweeper.pruner={_target_: optuna.pruners.ThresholdPruner, lower: 0.99}",
                     "training_type=step", "iterations=40", "eval_frequency=10",
                     "progress_bar=false")  # fmt: skip
    assert result.code == 0, result.err
    (folder,) = studies(tmp_path)
    trials = load(folder).get_trials()
    assert [t.state.name for t in trials] == ["PRUNED"] * 2
    assert all(list(t.intermediate_values) == [10] for t in trials)  # the step's iteration
    assert {s["pruned_at"] for s in states(tmp_path).values()} == {10}
