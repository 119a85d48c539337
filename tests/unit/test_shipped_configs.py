"""Every option shipped in conf/ composes and passes validation."""

import pytest

from sweeptrainer.config.compose import ConfigSources, compose, packaged_conf_dir
from sweeptrainer.config.schema import GROUPS, validate

OPTIONS = [
    (group, path.stem)
    for group in GROUPS
    for path in sorted((packaged_conf_dir() / group).glob("*.yaml"))
]


@pytest.mark.parametrize(("group", "option"), OPTIONS)
def test_option_validates(group, option):
    overrides = [f"{group}={option}"]
    if group == "dataset" and option == "Diabetes":
        overrides.append("criterion=MSE")
    validate(compose(ConfigSources(), overrides))


def test_every_group_has_options():
    assert {g for g, _ in OPTIONS} == set(GROUPS)
