"""Parameter groups: two (weights decay, the rest not) only when there is weight decay."""

import copy

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from sweeptrainer.components.models import FFNN
from sweeptrainer.training.builder import _weight_decay
from sweeptrainer.training.step import fit_groups, parameter_groups


class AnyKwargs(torch.optim.SGD):
    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)


@pytest.mark.parametrize(
    ("optimizer", "expected"),
    [
        ({"_target_": "torch.optim.Adam", "lr": 0.1}, 0.0),  # its default
        ({"_target_": "torch.optim.AdamW"}, 0.01),
        ({"_target_": "torch.optim.AdamW", "weight_decay": 0}, 0.0),
        ({"_target_": "torch.optim.Adam", "weight_decay": 0.5}, 0.5),
        ({"_target_": "torch.optim.Adadelta"}, 0.0),
        ({"_target_": f"{__name__}.AnyKwargs"}, None),  # cannot be told: two groups
    ],
)
def test_the_weight_decay_an_optimizer_will_apply(optimizer, expected):
    assert _weight_decay(OmegaConf.create(optimizer)) == expected


def test_one_group_without_weight_decay_in_the_same_order():
    model = FFNN((8,), 3, hidden_sizes=[4], dropout=0.0)
    (one,) = parameter_groups(model, 0.0)
    weights, rest = parameter_groups(model, 0.01)
    assert rest["weight_decay"] == 0.0
    assert [id(p) for p in one["params"]] == [id(p) for p in weights["params"] + rest["params"]]
    assert len(parameter_groups(model)) == 2  # not known


def _steps(model: nn.Module, optimizer: torch.optim.Optimizer, n: int) -> None:
    for i in range(n):
        x = torch.randn(16, 8, generator=torch.Generator().manual_seed(i))
        optimizer.zero_grad()
        model(x).square().mean().backward()
        optimizer.step()


def test_a_state_saved_with_two_groups_resumes_in_one_group_exactly():
    torch.manual_seed(0)
    reference = FFNN((8,), 3, hidden_sizes=[16, 8], dropout=0.0)
    before = {k: v.clone() for k, v in reference.state_dict().items()}
    two = torch.optim.Adam(parameter_groups(reference), lr=0.01)  # the layout of old states
    _steps(reference, two, 3)
    saved_model = {k: v.clone() for k, v in reference.state_dict().items()}
    saved = copy.deepcopy(two.state_dict())  # its tensors are the live ones
    _steps(reference, two, 3)

    resumed = FFNN((8,), 3, hidden_sizes=[16, 8], dropout=0.0)
    resumed.load_state_dict(saved_model)
    one = torch.optim.Adam(parameter_groups(resumed, 0.0), lr=0.01)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        one.load_state_dict(saved)
    one.load_state_dict(fit_groups(saved, one))
    _steps(resumed, one, 3)
    for key, value in reference.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key
        assert not torch.equal(before[key], value)


def test_states_of_other_layouts_are_left_for_load_state_dict_to_judge():
    model = FFNN((8,), 3, hidden_sizes=[4], dropout=0.0)
    one = torch.optim.Adam(parameter_groups(model, 0.0))
    other = FFNN((8,), 3, hidden_sizes=[4, 4], dropout=0.0)
    saved = torch.optim.Adam(parameter_groups(other)).state_dict()
    assert fit_groups(saved, one) is saved
    two = torch.optim.Adam(parameter_groups(model))
    assert fit_groups(two.state_dict(), two)["param_groups"] == two.state_dict()["param_groups"]


def test_groups_that_differ_in_more_than_their_parameters_are_not_merged():
    model = FFNN((8,), 3, hidden_sizes=[4], dropout=0.0)
    one = torch.optim.Adam(parameter_groups(model, 0.0))
    decayed = torch.optim.AdamW(parameter_groups(model), weight_decay=0.1).state_dict()
    assert fit_groups(decayed, one) is decayed  # 0.1 and 0: load_state_dict refuses it
    with pytest.raises(ValueError, match="different number of parameter groups"):
        one.load_state_dict(fit_groups(decayed, one))
    assert fit_groups({"param_groups": ["x", "y"]}, one) == {"param_groups": ["x", "y"]}
