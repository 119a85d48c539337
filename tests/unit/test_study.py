"""A search's settings (sweeptrainer.study): Hydra's sweep grammar as a search space, the
study's name, the pruners' first decision."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from sweeptrainer.errors import ConfigError
from sweeptrainer.study import SearchSettings, build_pruner, parse_space

optuna = pytest.importorskip("optuna")

TASK = OmegaConf.create(
    {"results_dir": "results", "experiment_id": "exp",
     "dataset": {"tracking_metric": "accuracy", "metrics": ["accuracy"]}}
)  # fmt: skip


def test_hydra_sweep_grammar_becomes_optuna_distributions():
    params, fixed = parse_space(
        ["iterations=3", "a=1,2,3", "b=choice(x,y)", "c=range(1,7,2)", "d=interval(0.1,1)",
         "e=tag(log,interval(1e-4,3))", "f=int(interval(1,64))", "+g=choice([1],[2,3])"]
    )  # fmt: skip
    assert fixed == ["iterations=3"]
    dists = {p.name: p.distribution() for p in params}
    assert dists["a"].choices == (1, 2, 3) and dists["b"].choices == ("x", "y")
    assert dists["c"].choices == (1, 3, 5)
    assert (dists["d"].low, dists["d"].high, dists["d"].log) == (0.1, 1.0, False)
    assert dists["e"].log and isinstance(dists["f"], optuna.distributions.IntDistribution)
    g = next(p for p in params if p.name == "g")
    assert g.override("[2,3]") == "+g=[2,3]"  # a list choice: searched by its text
    e = next(p for p in params if p.name == "e")
    assert e.override(0.0123) == "e=0.0123"


def settings(*overrides: str, **node: object) -> SearchSettings:
    return SearchSettings.parse(dict(node), overrides, TASK, "/tmp")


def test_the_study_name_follows_the_search_not_its_length():
    base = settings("lr=0.1,0.2", "iterations=3", sampler="grid")
    assert base.study_name.startswith("exp-") and base.n_trials == 2
    assert settings("lr=0.1,0.2", "iterations=3", sampler="grid", n_trials=1).study_name == (
        base.study_name
    )
    assert settings("lr=0.1,0.2", "iterations=4", sampler="grid").study_name != base.study_name
    assert settings("lr=0.1,0.3", "iterations=3", sampler="grid").study_name != base.study_name
    assert str(base.storage) == f"/tmp/results/exp/search/{base.study_name}/journal.log"


@pytest.mark.parametrize(
    "node, says",
    [
        ({"sampler": "grid", "n_trials": 5}, "the grid has 2 combinations"),
        ({"n_trials": 2, "storage": "sqlite:///x.db"}, "expected the path of a journal file"),
        ({"n_trials": 2, "study_name": "a/b"}, "is not a file name"),
        (
            {"n_trials": 2, "pruner": {"_target_": "optuna.samplers.TPESampler"}},
            "not an Optuna pruner",
        ),
        ({"n_trials": 2, "pruner": {"_target_": "optuna.pruners.MedianPruner", "x": 1}}, "x"),
        ({"n_trials": True}, "expected a whole number"),
    ],
)
def test_bad_settings_name_the_key(node, says):
    with pytest.raises(ConfigError) as err:
        settings("lr=0.1,0.2", **node)
    assert says in str(err.value)


def test_named_pruners_decide_from_a_tenth_of_the_run_on():
    assert build_pruner("halving", 40)._min_resource == 4
    assert build_pruner("halving", 12)._min_resource == 1
    assert build_pruner("median", 40)._n_warmup_steps == 4
    hyperband = build_pruner("hyperband", 40)
    assert (hyperband._min_resource, hyperband._max_resource) == (4, 40)
    assert isinstance(build_pruner("none", 40), optuna.pruners.NopPruner)
