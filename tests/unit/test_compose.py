"""The run composer: a run composed from a shared composition equals Hydra's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sweeptrainer.config.compose import (
    ConfigSources,
    RunComposer,
    compose,
    sweep_overrides,
    task_config,
)
from sweeptrainer.errors import ConfigError

RUNS = [
    ["seed=3"],
    ["model=CNN", "seed=2", "learning_rate=0.1"],
    ["model=CNN", "seed=4", "learning_rate=1e-2", "experiment_id='a b'"],
    ["+model.extra=3", "~model.extra", "batch_size=16"],
    ["seed=1", "+extra_key=2", "++iterations=3"],
    ["~scheduler", "model.hidden_sizes=[8,4]"],
    ["scheduler=StepLR", "scheduler.step_size=3", "dataset.split_seed=null"],
    ["+experiment=optuna_search", "seed=5"],
]


def plain(cfg) -> dict:
    data = OmegaConf.to_container(cfg)
    data["hydra"].pop("runtime")  # the same, but for config_sources objects
    return data


@pytest.fixture
def sources(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with ConfigSources.find(None, None, Path.cwd()) as found:
        yield found


def test_every_run_equals_hydras_composition(sources):
    composer = RunComposer(sources)
    for overrides in RUNS:
        hydras = compose(sources, overrides)
        assert plain(composer(overrides)) == plain(hydras), overrides
        assert composer.task(overrides) == task_config(hydras), overrides
    # the value-only runs shared compositions: one per distinct set of group choices
    assert len(composer._composed) < len(RUNS)


def test_bad_overrides_give_hydras_messages(sources):
    composer = RunComposer(sources)
    composer(["seed=1"])
    for bad in (["sed=1"], ["model.nope=1"], ["~model.nope"], ["model=Nope"]):
        with pytest.raises(ConfigError) as hydras:
            compose(sources, bad)
        for ours in (composer, composer.task):
            with pytest.raises(ConfigError) as error:
                ours(bad)
            assert str(error.value) == str(hydras.value)


def test_runs_in_the_basic_sweepers_order(tmp_path, monkeypatch):
    experiment = tmp_path / "conf" / "experiment"
    experiment.mkdir(parents=True)
    (experiment / "grid.yaml").write_text(
        "# @package _global_\nhydra:\n  sweeper:\n    params:\n      seed: 1,2\n"
        "      batch_size: 8\n"
    )
    monkeypatch.chdir(tmp_path)
    with ConfigSources.find(None, None, tmp_path) as found:
        runs = sweep_overrides(
            found, ["+experiment=grid", "learning_rate=0.1,0.2", "batch_size=4"], True
        )
    # the declared keys first (a value given replaces the declared one in its place)
    assert [r for r in runs] == [
        ["seed=1", "batch_size=4", "+experiment=grid", "learning_rate=0.1"],
        ["seed=1", "batch_size=4", "+experiment=grid", "learning_rate=0.2"],
        ["seed=2", "batch_size=4", "+experiment=grid", "learning_rate=0.1"],
        ["seed=2", "batch_size=4", "+experiment=grid", "learning_rate=0.2"],
    ]
    # ... which is the order Hydra's basic sweeper would launch them in
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    given = [
        "seed=1,2",
        "batch_size=8",
        "+experiment=grid",
        "learning_rate=0.1,0.2",
        "batch_size=4",
    ]
    hydras = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(given), None)
    assert runs == hydras[0]


def test_a_group_set_to_null_names_the_group_and_what_to_do(sources):
    with pytest.raises(ConfigError) as error:
        compose(sources, ["seed=2", "loggers=null"])
    assert str(error.value) == (
        "loggers=null: 'loggers' is a config group, which takes the name of one of its "
        "options (loggers=NAME; `trainer list loggers` shows them). To turn an entry off: "
        "'~loggers.NAME' or loggers.NAME=null"
    )
    with pytest.raises(ConfigError, match=r"^model=null: 'model' is a config group.*shows them\)$"):
        RunComposer(sources)(["model=null"])
    with pytest.raises(ConfigError, match=r"^loggers=null: 'loggers' is a config group"):
        compose(sources, ["seed=null", "loggers=null"])  # seed is a key, not the group


def test_a_pickled_composer_carries_a_small_plan_as_bytes(sources):
    """What a launcher's worker gets: the compositions of a small plan (it composes
    nothing again), none of a big one (every job would carry every composition)."""
    import pickle

    from omegaconf import OmegaConf

    composer = RunComposer(sources)
    first = composer(["seed=2"])
    clone = pickle.loads(pickle.dumps(composer))
    assert clone._composed.keys() == composer._composed.keys()
    assert OmegaConf.to_yaml(clone(["seed=2"])) == OmegaConf.to_yaml(first)
    for scheduler in ("StepLR", "OneCycleLR", "CosineAnnealingLR", "LinearWarmup"):
        composer.task([f"scheduler={scheduler}"])
    assert len(composer._composed) == 5
    assert pickle.loads(pickle.dumps(composer))._composed == {}
