"""The hook table: every ``cb_on_*`` event and the arguments a method may declare.

This is the contract of docs/callbacks.md and PRODUCT.md, kept in one place.
``iteration`` is the epoch (epoch training) or the optimizer step (step
training), counted from 1; ``metrics`` is a dict of floats keyed like the
columns of ``metrics.csv``; ``loss`` is a detached 0-dim tensor (calling
``.item()`` on it waits for the device).

It lives in the config layer with :func:`check_class`, the check of a class's ``cb_on_*``
methods against it: the config check runs that before anything is built, and the
callbacks' dispatcher (:mod:`sweeptrainer.callbacks.dispatcher`) the same per object.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable

from sweeptrainer.errors import ConfigError, did_you_mean

PREFIX = "cb_on_"

HOOKS: dict[str, tuple[str, ...]] = {
    "cb_on_train_begin": ("trainer",),
    "cb_on_iteration_begin": ("trainer", "iteration"),
    "cb_on_step_begin": ("trainer", "iteration", "batch_idx"),
    # the batch's gradients are complete (accumulated over the group, unscaled from fp16),
    # before clipping and the optimizer step: gradient norms, custom clipping
    "cb_on_before_optimizer_step": ("trainer", "iteration", "batch_idx", "optimizer"),
    # after the batch: its backward and, when it ends an accumulation group, the optimizer
    # step (gradients cleared, parameters updated)
    "cb_on_step_end": ("trainer", "iteration", "batch_idx", "loss"),
    "cb_on_loader_exhausted": ("trainer", "iteration"),
    "cb_on_dev_begin": ("trainer", "iteration"),
    "cb_on_dev_step_begin": ("trainer", "batch_idx"),
    "cb_on_dev_step_end": ("trainer", "batch_idx", "loss"),
    "cb_on_dev_end": ("trainer", "iteration", "metrics"),
    "cb_on_iteration_end": ("trainer", "iteration", "metrics"),
    "cb_on_test_begin": ("trainer",),
    "cb_on_test_step_begin": ("trainer", "batch_idx"),
    "cb_on_test_step_end": ("trainer", "batch_idx", "loss"),
    "cb_on_test_end": ("trainer", "metrics"),
    "cb_on_train_end": ("trainer",),
    # once at the very end, after results.yaml (finished) or the stop/failure is recorded
    "cb_on_run_end": ("trainer", "status", "results", "error"),
}


def declared_arguments(
    hook: str, params: Iterable[inspect.Parameter], where: str
) -> tuple[str, ...] | None:
    """Check a hook method's parameters; return the names it declares, None for **kwargs."""
    if hook not in HOOKS:
        raise ConfigError(
            f"{where}: unknown hook {hook!r}{did_you_mean(hook, HOOKS)}; "
            f"valid hooks: {', '.join(HOOKS)}"
        )
    allowed = HOOKS[hook]
    names: list[str] = []
    wants_all = False
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            wants_all = True
        elif p.kind is p.VAR_POSITIONAL:
            raise ConfigError(f"{where}: *{p.name} is not supported; declare arguments by name")
        elif p.name not in allowed:
            raise ConfigError(
                f"{where}: parameter {p.name!r} is not provided by {hook}"
                f"{did_you_mean(p.name, allowed)}; it provides: {', '.join(allowed)}"
            )
        else:
            names.append(p.name)
    return None if wants_all else tuple(names)


def hook_names(cls: type) -> list[str]:
    """The ``cb_on_*`` attributes of a class, sorted."""
    return sorted(name for name in dir(cls) if name.startswith(PREFIX))


def check_class(cls: type, label: str) -> None:
    """Check the ``cb_on_*`` methods a class defines, without building it."""
    for name in hook_names(cls):
        where = f"{label} ({cls.__qualname__}.{name})"
        static = inspect.getattr_static(cls, name)
        if isinstance(static, staticmethod | classmethod):
            params = list(inspect.signature(getattr(cls, name)).parameters.values())
        elif callable(static):
            params = list(inspect.signature(static).parameters.values())[1:]  # drop self
        else:
            raise ConfigError(f"{where}: {name} must be a method")
        declared_arguments(name, params, where)
