import pytest
from omegaconf import OmegaConf
from torch import nn

from sweeptrainer.config.instantiate import check_node, instantiate, locate
from sweeptrainer.errors import ConfigError


def test_locate_names_the_key():
    assert locate("torch.nn.Linear", "model") is nn.Linear
    with pytest.raises(ConfigError, match=r"model\._target_: cannot import 'nope\.X'"):
        locate("nope.X", "model")
    with pytest.raises(ConfigError, match="has no attribute 'Nope'"):
        locate("torch.nn.Nope", "model")


def test_kwargs_are_checked_against_the_signature():
    node = OmegaConf.create({"id": "L", "_target_": "torch.nn.Linear", "in_feature": 3})
    with pytest.raises(ConfigError, match=r"model: the arguments do not fit torch\.nn\.Linear"):
        check_node(node, "model")


def test_runtime_kwargs_go_only_to_constructors_that_declare_them():
    node = OmegaConf.create({"id": "L", "_target_": "torch.nn.Linear", "in_features": 3})
    layer = instantiate(node, "model", nn.Module, out_features=2, input_shape=(3,))
    assert isinstance(layer, nn.Linear) and layer.out_features == 2


def test_wrong_kind_is_reported():
    node = OmegaConf.create({"id": "x", "_target_": "collections.OrderedDict"})
    with pytest.raises(ConfigError, match="built a OrderedDict, expected a Module"):
        instantiate(node, "model", nn.Module)
