"""One dispatcher per trainer: finds ``cb_on_*`` methods once, checks them, calls them.

No registry outside the trainer and no frame inspection: the trainer hands the
built components to :class:`CallbackDispatcher` in a fixed order, and each event
calls the methods found, in that order, with only the arguments each declares.
:func:`check_class` runs the same checks on a class before anything is built,
so the training command rejects a typo'd hook before the first run of a sweep.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sweeptrainer.callbacks.hooks import HOOKS, PREFIX
from sweeptrainer.errors import ConfigError, did_you_mean

Handler = tuple[Callable[..., Any], tuple[str, ...] | None]  # None: takes **kwargs, gets all


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
    names, wants_all = [], False
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


def _hook_names(cls: type) -> list[str]:
    return sorted(name for name in dir(cls) if name.startswith(PREFIX))


def check_class(cls: type, label: str) -> None:
    """Check the ``cb_on_*`` methods a class defines, without building it."""
    for name in _hook_names(cls):
        where = f"{label} ({cls.__qualname__}.{name})"
        static = inspect.getattr_static(cls, name)
        if isinstance(static, staticmethod | classmethod):
            params = list(inspect.signature(getattr(cls, name)).parameters.values())
        elif callable(static):
            params = list(inspect.signature(static).parameters.values())[1:]  # drop self
        else:
            raise ConfigError(f"{where}: {name} must be a method")
        declared_arguments(name, params, where)


class CallbackDispatcher:
    """Holds, per hook, the bound methods found on the given components, in order."""

    def __init__(self, components: Sequence[tuple[str, object]]) -> None:
        """``components``: (label, object) pairs in dispatch order; labels appear in errors."""
        self._handlers: dict[str, list[Handler]] = {hook: [] for hook in HOOKS}
        for label, obj in components:
            if obj is None:
                continue
            for name in _hook_names(type(obj)):
                where = f"{label} ({type(obj).__qualname__}.{name})"
                method = getattr(obj, name)
                if not callable(method):
                    raise ConfigError(f"{where}: {name} must be a method")
                params = inspect.signature(method).parameters.values()
                self._handlers[name].append((method, declared_arguments(name, params, where)))

    def handlers(self, hook: str) -> list[Handler]:
        """The (method, declared argument names) pairs registered for ``hook``, in order."""
        return self._handlers[hook]

    def __contains__(self, hook: str) -> bool:
        """Whether any component implements ``hook``: the step loop skips hooks nobody wants."""
        return bool(self._handlers[hook])

    def __call__(self, hook: str, **kwargs: Any) -> None:
        """Call every method registered for ``hook``; exceptions propagate (the run fails)."""
        for method, names in self._handlers[hook]:
            if names is None:
                method(**kwargs)
            else:
                method(**{n: kwargs[n] for n in names})
