"""One dispatcher per trainer: finds ``cb_on_*`` methods once, checks them, calls them.

No registry outside the trainer and no frame inspection: the trainer hands the
built components to :class:`CallbackDispatcher` in a fixed order, and each event
calls the methods found, in that order, with only the arguments each declares.
:func:`~sweeptrainer.config.hooks.check_class` (with the hook table, in the config layer)
runs the same checks on a class before anything is built, so the training command rejects
a typo'd hook before the first run of a sweep.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from sweeptrainer.config.hooks import HOOKS, check_class, declared_arguments, hook_names
from sweeptrainer.errors import ConfigError

__all__ = ["CallbackDispatcher", "Handler", "check_class", "declared_arguments"]

Handler = tuple[Callable[..., Any], tuple[str, ...] | None]  # None: takes **kwargs, gets all


class CallbackDispatcher:
    """Holds, per hook, the bound methods found on the given components, in order."""

    def __init__(self, components: Sequence[tuple[str, object]]) -> None:
        """``components``: (label, object) pairs in dispatch order; labels appear in errors."""
        self._handlers: dict[str, list[Handler]] = {hook: [] for hook in HOOKS}
        for label, obj in components:
            if obj is None:
                continue
            for name in hook_names(type(obj)):
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
