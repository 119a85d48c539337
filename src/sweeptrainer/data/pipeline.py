"""Pipelines: lists of ``_target_`` steps from YAML, built once and applied in order.

A step is any callable: a class built with its keyword arguments (``_target_:
torchvision.transforms.v2.RandomCrop``, ``size: 28``), or a function with arguments
bound (``_target_: torch.flatten``, ``_partial_: true``, ``start_dim: 0``). Runtime
values given to :meth:`Pipeline.build` (an augmentation's ``num_classes``...) reach the
constructors that declare them, as for models. A null entry is left out, so an override can
switch one step off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from sweeptrainer.config.instantiate import instantiate
from sweeptrainer.errors import ConfigError, ParamError


class StepError(RuntimeError):
    """A pipeline step failed on a sample; the message names the step's config key."""


def as_specs(specs: Any, key: str) -> list[dict[str, Any]]:
    """A list of step configs as plain dicts (null entries left out); a ConfigError when
    ``specs`` is not a list of ``{_target_: ...}`` mappings."""
    if specs is None:
        return []
    if isinstance(specs, DictConfig | ListConfig):
        specs = OmegaConf.to_container(specs, resolve=True)
    if not isinstance(specs, list | tuple):
        raise ConfigError(f"{key}: expected a list of {{_target_: ...}} steps, got {specs!r}")
    out = []
    for i, spec in enumerate(specs):
        if spec is None:
            continue
        if not isinstance(spec, dict) or "_target_" not in spec:
            raise ConfigError(f"{key}[{i}]: expected a mapping with a _target_, got {spec!r}")
        out.append(dict(spec))
    return out


def fingerprint(*parts: Any) -> str:
    """A stable text of configs (sorted YAML): what a cache key is made of."""
    return yaml.safe_dump(list(parts), sort_keys=True, default_flow_style=True)


class Pipeline:
    """Callables applied in order; an exception names the failing step's config key."""

    def __init__(self, steps: Sequence[Callable[[Any], Any]], labels: Sequence[str] = ()):
        self.steps = list(steps)
        self.labels = list(labels) or [repr(s) for s in self.steps]

    @classmethod
    def build(cls, specs: Any, key: str, **runtime: Any) -> Pipeline:
        """Build the steps of ``specs`` (config key ``key``); each must be callable."""
        steps, labels = [], []
        for i, spec in enumerate(as_specs(specs, key)):
            label = f"{key}[{i}]"
            try:
                step = instantiate(OmegaConf.create(spec), label, None, **runtime)
            except ParamError as err:  # the argument's own override path
                raise ConfigError(
                    f"{key}.{i}.{err.param}: {err.detail} ({spec['_target_']})"
                ) from None
            if not callable(step):
                raise ConfigError(
                    f"{label}: {spec['_target_']} built a {type(step).__name__}, which cannot be "
                    "called on a sample; expected a transform (a callable)"
                )
            steps.append(step)
            labels.append(f"{label} ({spec['_target_']})")
        return cls(steps, labels)

    def __len__(self) -> int:
        return len(self.steps)

    def __call__(self, x: Any) -> Any:
        """One sample through every step."""
        return self._run(x, unpack=False)

    def on_batch(self, inputs: Any, targets: Any) -> tuple[Any, Any]:
        """A batch through every step, each called as ``step(inputs, targets)`` (MixUp)."""
        return self._run((inputs, targets), unpack=True)

    def _run(self, value: Any, unpack: bool) -> Any:
        for step, label in zip(self.steps, self.labels, strict=True):
            try:
                value = step(*value) if unpack else step(value)
            except StepError:
                raise
            except Exception as err:
                raise StepError(f"{label} failed: {type(err).__name__}: {err}") from err
        return value

    def __repr__(self) -> str:
        return f"Pipeline({self.labels})"
