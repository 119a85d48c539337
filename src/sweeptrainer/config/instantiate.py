"""A typed instantiate: check a ``_target_`` node against its class, then build it.

Options carry bookkeeping keys that are not constructor arguments (``id``; a dataset
option also ``metrics``, ``tracking_metric``, ``stratify`` and ``batch``, a scheduler option
``step_frequency`` and ``monitor``); they are left out here, and only there: a step nested
in an option keeps a ``batch`` or ``monitor`` argument of its own.
Runtime values (input shape, number of classes, the run folder) are passed as
keyword arguments, and only to constructors that declare them by name: a constructor
that takes ``**kwargs`` (``torchvision.models.resnet18``) gets none of them, since it
would hand them on to code that does not expect them. The config is never written to.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from omegaconf import DictConfig, ListConfig, OmegaConf

from sweeptrainer.errors import ConfigError

# keys of every node that are never constructor arguments
RESERVED_KEYS = frozenset({"id", "_target_", "_partial_"})
# keys of one group's option that the trainer reads (not the nested steps inside it)
GROUP_KEYS: dict[str, frozenset[str]] = {
    "dataset": frozenset({"metrics", "tracking_metric", "stratify", "batch"}),
    "scheduler": frozenset({"step_frequency", "monitor"}),
}


def locate(path: str, key: str) -> Any:
    """Import ``a.b.C`` and return ``C``; a ConfigError names ``key`` when it fails."""
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{key}._target_: expected a dotted import path, got {path!r}")
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name is not None and not module_name.startswith(err.name):
                # the module exists but one of *its* imports failed: report that
                raise ConfigError(
                    f"{key}._target_: importing {module_name!r} failed: {err}"
                ) from err
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            raise ConfigError(
                f"{key}._target_: {module_name!r} has no attribute {'.'.join(parts[split:])!r}"
            ) from None
        return obj
    raise ConfigError(f"{key}._target_: cannot import {path!r} (no module {parts[0]!r})")


F = TypeVar("F", bound=Callable[..., Any])
FACTORY_MARK = "__sweeptrainer_builds__"


def builds(kind: type) -> Callable[[F], F]:
    """Mark a class or function as meant to be built from a config, making a ``kind``
    (``@builds(nn.Module)`` on a function that returns a model): a config read from a run
    folder may then name it as a ``_target_`` of that kind. Classes of the expected kind
    and your project's need no mark; sweeptrainer's own classes and functions are taken
    from a run folder only with it (the packaged components carry it: others, a log file
    handler say, have side effects when built), and so are a factory function of your
    project and a class of an installed package used as a dataset or step
    (``@builds(object)``). A mark is the class's own: a subclass is not marked by it."""

    def mark(function: F) -> F:
        setattr(function, FACTORY_MARK, kind)
        return function

    return mark


def build_mark(target: Any) -> type | None:
    """The kind ``target`` is marked to build (:func:`builds`), or None: a class's own mark
    only (one set on a base class does not vouch for what derives from it)."""
    try:
        own = vars(target)  # a class's own attributes, a function's: never inherited
    except TypeError:  # no __dict__ of its own
        return None
    found = own.get(FACTORY_MARK)
    return found if isinstance(found, type) else None


def constructor_kwargs(node: DictConfig, key: str = "") -> dict[str, Any]:
    """The node's keyword arguments as plain Python values (resolved), without the reserved
    keys and, for a group's option (``key`` is the group), the keys the trainer reads."""
    container = OmegaConf.to_container(node, resolve=True)
    assert isinstance(container, dict)
    skip = RESERVED_KEYS | GROUP_KEYS.get(key, frozenset())
    # argument names: str (binding the signature refuses any other key, as it should)
    return cast(dict[str, Any], {k: v for k, v in container.items() if k not in skip})


def declares(signature: inspect.Signature, name: str) -> bool:
    """Whether the signature names ``name`` as a keyword parameter (``**kwargs`` does not count)."""
    param = signature.parameters.get(name)
    return param is not None and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)


def signature_of(target: Any) -> inspect.Signature | None:
    """The constructor's signature; None for a callable that has none to read."""
    try:
        return inspect.signature(target)
    except (TypeError, ValueError):  # some builtins have no introspectable signature
        return None


def check_node(
    node: DictConfig, key: str, n_positional: int = 0, runtime: tuple[str, ...] = ()
) -> Any:
    """Import the node's target and check its kwargs fit the signature, without building.

    Returns the located target. ``runtime`` names keyword arguments the builder will
    add; those the target declares are treated as given. A required parameter that
    neither the config nor the runtime values give is an error naming it.
    """
    target = locate(node.get("_target_"), key)
    signature = signature_of(target)
    if signature is None:
        return target
    kwargs = constructor_kwargs(node, key)
    given = {name: None for name in runtime if declares(signature, name) and name not in kwargs}
    accepted = [
        n
        for n, p in signature.parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ][n_positional:]
    try:
        signature.bind_partial(*([None] * n_positional), **kwargs, **given)
    except TypeError as err:
        raise ConfigError(
            f"{key}: the arguments do not fit {node.get('_target_')}: {err}. "
            f"It accepts: {', '.join(accepted) or '(nothing)'}"
        ) from None
    missing = [
        name
        for name, p in list(signature.parameters.items())[n_positional:]
        if p.default is p.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and name not in kwargs
        and name not in given
    ]
    if missing and not node.get("_partial_"):
        offered = f" (the run gives {', '.join(runtime)} to a constructor that declares them)"
        raise ConfigError(
            f"{key}: {node.get('_target_')} needs {', '.join(map(repr, missing))}, which "
            f"neither the config nor the run gives{offered if runtime else ''}; set "
            f"{'it' if len(missing) == 1 else 'them'} in the config"
        )
    return target


def nested_nodes(node: Any, key: str) -> list[tuple[str, DictConfig]]:
    """Every ``_target_`` node inside ``node`` (not ``node`` itself), with its dotted key:
    ``dataset.transform[0]``, ``augmentation.steps[1]``, ``dataset.loader``."""

    found: list[tuple[str, DictConfig]] = []
    if isinstance(node, DictConfig):
        items = [(f"{key}.{k!s}", v) for k, v in node.items_ex(resolve=False)]
    elif isinstance(node, ListConfig):
        items = [(f"{key}[{i}]", v) for i, v in enumerate(node)]
    else:
        return found
    for child_key, child in items:
        if isinstance(child, DictConfig) and "_target_" in child:
            found.append((child_key, child))
        found += nested_nodes(child, child_key)
    return found


def instantiate(
    node: DictConfig,
    key: str,
    expected: type | tuple[type, ...] | None = None,
    *args: Any,
    **runtime: Any,
) -> Any:
    """Build ``node`` with ``*args`` and the runtime kwargs its constructor declares.

    Raises ConfigError naming ``key`` when the target does not import, the arguments
    do not fit, the constructor fails, or the built object is not ``expected``.
    """
    target = check_node(node, key, len(args), tuple(runtime))
    signature = signature_of(target)
    kwargs = constructor_kwargs(node, key)
    for name, value in runtime.items():
        if name not in kwargs and signature is not None and declares(signature, name):
            kwargs[name] = value
    if node.get("_partial_"):  # Hydra's convention: the callable with its arguments bound
        return functools.partial(target, *args, **kwargs)
    try:
        obj = target(*args, **kwargs)
    except ConfigError:
        raise  # components name their own key (e.g. dataset.train)
    except (Exception, SystemExit) as err:  # a library's sys.exit must not end the command
        from sweeptrainer.usercode import companion_mismatch, user_frame

        mismatch = companion_mismatch(err)
        if mismatch is not None:
            raise ConfigError(f"{key}: {mismatch}") from err
        where = user_frame(err.__traceback__)
        raise ConfigError(
            f"{key}: building {node.get('_target_')} failed: {type(err).__name__}: {err}"
            + (f" (at {where})" if where else "")
            + " (HYDRA_FULL_ERROR=1 shows the traceback)"
        ) from err
    if expected is not None and not isinstance(obj, expected):
        names = expected if isinstance(expected, tuple) else (expected,)
        raise ConfigError(
            f"{key}: {node.get('_target_')} built a {type(obj).__name__}, "
            f"expected a {' or '.join(t.__name__ for t in names)}"
        )
    return obj
