"""The optimizer state as saved: per-parameter tensors packed by kind, unpacked exactly."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from sweeptrainer.training.state import pack_optimizer_state, unpack_optimizer_state


def _trained(make_optimizer, steps: int = 3) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.LayerNorm(7), nn.Linear(7, 3))
    optimizer = make_optimizer(model.parameters())
    for _ in range(steps):
        model(torch.randn(4, 5)).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    return model, optimizer


def _saved_and_loaded(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


OPTIMIZERS = {
    "Adam": lambda p: torch.optim.Adam(p, lr=0.01),
    "AdamW": lambda p: torch.optim.AdamW(p, lr=0.01, amsgrad=True),
    "SGD momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    "SGD": lambda p: torch.optim.SGD(p, lr=0.1),  # momentum_buffer None: nothing to pack
    "Adagrad": lambda p: torch.optim.Adagrad(p, lr=0.1),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_packed_state_comes_back_as_torch_saved_it(name):
    _, optimizer = _trained(OPTIMIZERS[name])
    original = optimizer.state_dict()
    back = unpack_optimizer_state(_saved_and_loaded(pack_optimizer_state(original)))
    assert back["param_groups"] == original["param_groups"]
    assert back["state"].keys() == original["state"].keys()
    for i, entries in original["state"].items():
        assert back["state"][i].keys() == entries.keys()
        for kind, value in entries.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(back["state"][i][kind], value), (i, kind)
                assert back["state"][i][kind].shape == value.shape
            else:
                assert back["state"][i][kind] == value


def test_adam_saves_three_tensors_instead_of_one_per_parameter_and_kind():
    model, optimizer = _trained(OPTIMIZERS["Adam"])
    packed = pack_optimizer_state(optimizer.state_dict())
    assert sorted(packed["packed"]) == ["exp_avg", "exp_avg_sq", "step"]
    assert all(entries == {} for entries in packed["state"].values())
    assert packed["packed"]["exp_avg"].numel() == sum(p.numel() for p in model.parameters())


def test_training_goes_on_exactly_from_an_unpacked_state():
    model, optimizer = _trained(OPTIMIZERS["Adam"])
    saved = _saved_and_loaded(
        {"model": model.state_dict(), "optimizer": pack_optimizer_state(optimizer.state_dict())}
    )
    twin, twin_optimizer = _trained(OPTIMIZERS["Adam"], steps=0)
    twin.load_state_dict(saved["model"])
    twin_optimizer.load_state_dict(unpack_optimizer_state(saved["optimizer"]))
    for net, opt in ((model, optimizer), (twin, twin_optimizer)):
        torch.manual_seed(1)
        for _ in range(3):
            net(torch.randn(4, 5)).square().mean().backward()
            opt.step()
            opt.zero_grad()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)


def test_states_without_packing_load_as_they_are():
    _, optimizer = _trained(OPTIMIZERS["Adam"])
    plain = optimizer.state_dict()
    assert unpack_optimizer_state(plain) is plain  # a state saved before packing
    fresh = torch.optim.Adam(nn.Linear(2, 2).parameters()).state_dict()
    assert pack_optimizer_state(fresh) is fresh  # no step taken yet: nothing to pack


def test_a_damaged_layout_is_a_value_error_naming_it():
    _, optimizer = _trained(OPTIMIZERS["Adam"])
    packed = pack_optimizer_state(optimizer.state_dict())
    short = {**packed, "packed": {**packed["packed"], "exp_avg": packed["packed"]["exp_avg"][:5]}}
    for damaged in ({**packed, "packed_layout": "{not json"}, short):
        with pytest.raises(ValueError, match="do not fit its layout"):
            unpack_optimizer_state(damaged)


def test_a_large_state_is_not_copied_to_be_packed():
    _, optimizer = _trained(OPTIMIZERS["Adam"])
    state = optimizer.state_dict()
    assert pack_optimizer_state(state, max_bytes=100) is state
    assert "packed" in pack_optimizer_state(state)
