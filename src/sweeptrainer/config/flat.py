"""Nested configs as dotted keys: the one flattener behind the hyper-parameter tables,
the loggers' parameters and the API's implied overrides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def leaves(data: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optimizer": {"lr": 0.1}}`` -> ``{"optimizer.lr": 0.1}``; every value that is not a
    mapping (lists too) is a leaf, as it is; an empty mapping has none."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= leaves(value, f"{name}.")
        else:
            out[name] = value
    return out
