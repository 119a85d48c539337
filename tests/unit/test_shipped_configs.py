"""Every option shipped in conf/ composes and passes validation (or, for an option over an
optional library that is not installed, fails with the install hint)."""

import importlib.util

import pytest

from sweeptrainer.config.compose import ConfigSources, compose, packaged_conf_dir
from sweeptrainer.config.instantiate import locate
from sweeptrainer.config.schema import GROUPS, KEYED_DICTS, validate
from sweeptrainer.errors import ConfigError

OPTIONS = [
    (group, path.stem)
    for group in GROUPS
    for path in sorted((packaged_conf_dir() / group).glob("*.yaml"))
]
# callbacks and loggers: no default, added to the keyed dict with +GROUP=NAME
ADDED = [
    (kind, path.stem)
    for kind in KEYED_DICTS
    for path in sorted((packaged_conf_dir() / kind).glob("*.yaml"))
]


@pytest.mark.parametrize(("group", "option"), OPTIONS)
def test_option_validates(group, option):
    overrides = [f"{group}={option}"]
    if group == "dataset" and option == "Diabetes":
        overrides.append("criterion=MSE")
    cfg = compose(ConfigSources(), overrides)
    target = cfg[group].get("_target_")
    needs = getattr(locate(target, group), "required_packages", {}) if target else {}
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        with pytest.raises(ConfigError, match=f"needs the package '{missing[0]}'.*pip install"):
            validate(cfg)
        return
    validate(cfg)


@pytest.mark.parametrize(("kind", "option"), ADDED)
def test_added_option_validates_and_lands_under_its_name(kind, option):
    cfg = compose(ConfigSources(), [f"+{kind}={option}"])
    validate(cfg)
    assert "_target_" in cfg[kind][option]


def test_every_group_has_options():
    assert {g for g, _ in OPTIONS} == set(GROUPS)
    assert {k for k, _ in ADDED} == set(KEYED_DICTS)
