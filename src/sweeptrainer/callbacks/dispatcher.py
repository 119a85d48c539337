"""One dispatcher per trainer: finds ``cb_on_*`` methods once, checks them, calls them.

No registry outside the trainer and no frame inspection: the trainer hands the
built components to :class:`CallbackDispatcher` in a fixed order, and each event
calls the methods found, in that order, with only the arguments each declares.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from sweeptrainer.callbacks.hooks import HOOKS, PREFIX
from sweeptrainer.errors import ConfigError

Handler = tuple[Callable[..., Any], tuple[str, ...] | None]  # None: takes **kwargs, gets all


def _declared(method: Callable[..., Any], hook: str, where: str) -> tuple[str, ...] | None:
    """The argument names ``method`` declares, checked against the hook's; None for **kwargs."""
    allowed = HOOKS[hook]
    params = inspect.signature(method).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        names = tuple(p.name for p in params if p.kind is not p.VAR_KEYWORD)
        wants_all = True
    else:
        names = tuple(p.name for p in params)
        wants_all = False
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            raise ConfigError(f"{where}: *{p.name} is not supported; declare arguments by name")
    unknown = [n for n in names if n not in allowed]
    if unknown:
        hint = difflib.get_close_matches(unknown[0], allowed, n=1)
        raise ConfigError(
            f"{where}: parameter {unknown[0]!r} is not provided by {hook}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; it provides: {', '.join(allowed)}"
        )
    return None if wants_all else names


class CallbackDispatcher:
    """Holds, per hook, the bound methods found on the given components, in order."""

    def __init__(self, components: Sequence[tuple[str, object]]) -> None:
        """``components``: (label, object) pairs in dispatch order; labels appear in errors."""
        self._handlers: dict[str, list[Handler]] = {hook: [] for hook in HOOKS}
        for label, obj in components:
            if obj is None:
                continue
            for attr in sorted(dir(type(obj))):
                if attr.startswith(PREFIX):
                    self._add(label, obj, attr)

    def _add(self, label: str, obj: object, attr: str) -> None:
        where = f"{label} ({type(obj).__qualname__}.{attr})"
        if attr not in HOOKS:
            hint = difflib.get_close_matches(attr, HOOKS, n=1)
            raise ConfigError(
                f"{where}: unknown hook {attr!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; valid hooks: {', '.join(HOOKS)}"
            )
        method = getattr(obj, attr)
        if not callable(method):
            raise ConfigError(f"{where}: {attr} must be a method")
        self._handlers[attr].append((method, _declared(method, attr, where)))

    def handlers(self, hook: str) -> list[Handler]:
        return self._handlers[hook]

    def __call__(self, hook: str, **kwargs: Any) -> None:
        """Call every method registered for ``hook``; exceptions propagate (the run fails)."""
        for method, names in self._handlers[hook]:
            if names is None:
                method(**kwargs)
            else:
                method(**{n: kwargs[n] for n in names})
