"""The main config keys: what each must hold, checked before anything is built or written.

One function, :func:`validate`, serves the training command's start-up check (and
later ``trainer validate`` and a test over every shipped YAML).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, DictKeyType, OmegaConf

from sweeptrainer.config.hooks import check_class
from sweeptrainer.config.instantiate import check_node, nested_nodes
from sweeptrainer.config.keys import FREQUENCIES, check_batch_config
from sweeptrainer.config.metric_specs import parse_spec, spec_name
from sweeptrainer.errors import ConfigError, did_you_mean

GROUPS = ("dataset", "model", "optimizer", "scheduler", "criterion", "augmentation")
OPTIONAL_GROUPS = ("scheduler", "augmentation")  # their None option has `_target_: null`
KEYED_DICTS = ("callbacks", "loggers")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _positive_int(v: Any) -> bool:
    return _is_int(v) and v > 0


def _non_negative_int(v: Any) -> bool:
    return _is_int(v) and v >= 0


def _positive_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v > 0


NAME_BYTES = 200  # a folder name under the usual file systems' 255 bytes, with room to spare


def _folder_path(v: Any) -> bool:
    """A folder path whose every name a file system takes."""
    return (
        isinstance(v, str)
        and bool(v)
        and all(len(p.encode("utf-8", "surrogateescape")) <= NAME_BYTES for p in v.split("/"))
    )


def _name(v: Any) -> bool:
    """A folder name: no '/', no control characters (a newline, a tab), not . or .., at
    most NAME_BYTES bytes (file systems refuse longer names)."""
    return (
        isinstance(v, str)
        and bool(v)
        and "/" not in v
        and v not in (".", "..")
        and all(ch.isprintable() for ch in v)
        and len(v.encode("utf-8", "surrogateescape")) <= NAME_BYTES
    )


@dataclass(frozen=True)
class Key:
    """One main key: a check and what to say when it fails."""

    name: str
    check: Callable[[Any], bool]
    expected: str


MAIN_KEYS: tuple[Key, ...] = (
    Key("results_dir", _folder_path, "a folder path (each name in it at most 200 bytes)"),
    Key("experiment_id", _name, "a folder name (no '/', no control characters, at most 200 bytes)"),
    Key("training_type", lambda v: v in ("epoch", "step"), "'epoch' or 'step'"),
    Key("iterations", _positive_int, "a positive integer"),
    Key("eval_frequency", _positive_int, "a positive integer"),
    Key("save_frequency", _positive_int, "a positive integer"),
    Key("batch_size", _positive_int, "a positive integer"),
    Key("inference_batch_size", _positive_int, "a positive integer"),
    Key("learning_rate", _positive_number, "a positive number"),
    Key("seed", _non_negative_int, "a non-negative integer"),
    Key(
        "device",
        lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", v) is not None,
        "'auto', 'cpu', 'cuda' or 'cuda:N'",
    ),
    Key("progress_bar", lambda v: isinstance(v, bool), "true or false"),
    Key("save_train_outputs", lambda v: isinstance(v, bool), "true or false"),
    Key("save_dev_outputs", lambda v: isinstance(v, bool), "true or false"),
    Key("save_test_outputs", lambda v: isinstance(v, bool), "true or false"),
    Key("continue_training", lambda v: isinstance(v, bool), "true or false"),
    Key("max_retries", _non_negative_int, "a non-negative integer"),
    Key(
        "rerun_on_change",
        lambda v: v in ("warn", "rerun", "ignore"),
        "'warn', 'rerun' or 'ignore'",
    ),
    Key("postprocess", lambda v: isinstance(v, bool), "true or false"),
    Key(
        "heartbeat_s",  # the lease's refresh period: other nodes read a run as alive by it
        lambda v: _positive_number(v) and v <= 86400,
        "a positive number of seconds (at most 86400)",
    ),
    Key(
        "distributed_timeout_s",  # one run across processes: how long a collective waits
        lambda v: _positive_number(v) and v <= 86400,
        "a positive number of seconds (at most 86400)",
    ),
    Key("accumulation_steps", _positive_int, "a positive integer"),
    Key(
        "gradient_clip_norm",
        lambda v: v is None or _positive_number(v),
        "null or a positive number",
    ),
    Key(
        "gradient_clip_value",
        lambda v: v is None or _positive_number(v),
        "null or a positive number",
    ),
    Key("precision", lambda v: str(v) in ("32", "bf16", "16"), "32, bf16 or 16"),
    Key("reproducible", lambda v: isinstance(v, bool), "true or false"),
    Key("compile", lambda v: isinstance(v, bool), "true or false"),
    Key("num_workers", _non_negative_int, "a non-negative integer"),
    Key("num_threads", lambda v: v is None or _positive_int(v), "null or a positive integer"),
    Key("pin_memory", lambda v: v == "auto" or isinstance(v, bool), "auto, true or false"),
    Key("persistent_workers", lambda v: isinstance(v, bool), "true or false"),
)
KNOWN_KEYS = frozenset(k.name for k in MAIN_KEYS) | {*GROUPS, *KEYED_DICTS, "hydra"}

# Runtime keyword arguments the builder passes to each kind of component (when declared).
RUNTIME_KWARGS: dict[str, tuple[str, ...]] = {
    "dataset": ("num_workers", "progress_bar"),
    # the data's shape and size, under the names library constructors use
    "model": ("input_shape", "output_dim", "num_classes", "in_channels", "in_chans"),
    "augmentation": ("input_shape", "output_dim", "num_classes", "in_channels", "in_chans"),
    "criterion": ("dataset",),
    "optimizer": (),
    "scheduler": ("total_steps",),  # how often it will step over the run (OneCycleLR)
    "callbacks": ("run_dir",),
    "loggers": ("run_dir", "sweep_dir"),  # sweep_dir: the -m sweep's folder, else None
}
POSITIONAL_ARGS = {"optimizer": 1, "scheduler": 1}  # model parameters / the optimizer


# main keys added after projects had their own config.yaml: missing means this value
DEFAULTS: dict[str, Any] = {"heartbeat_s": 30, "distributed_timeout_s": 600}


def _check_main_keys(resolved: Mapping[DictKeyType, Any], problems: list[str]) -> None:
    """The top-level keys, from the resolved config (resolved once: a 1,000-run grid)."""
    for key in MAIN_KEYS:
        if key.name not in resolved and key.name in DEFAULTS:
            continue  # a key added since: a project's own config.yaml may not have it yet
        if key.name not in resolved:
            problems.append(f"{key.name}: missing; expected {key.expected}")
            continue
        value = resolved[key.name]
        if not key.check(value):
            problems.append(f"{key.name}: expected {key.expected}, got {value!r}")
    for name in resolved:
        if name not in KNOWN_KEYS:
            problems.append(f"{name!s}: unknown key{did_you_mean(str(name), KNOWN_KEYS)}")
    if not problems:
        for name in ("eval_frequency", "save_frequency"):
            if resolved[name] > resolved["iterations"]:
                problems.append(
                    f"{name}: {resolved[name]} is larger than iterations "
                    f"({resolved['iterations']}); expected at most {resolved['iterations']}"
                )


def _check_group(cfg: DictConfig, group: str, problems: list[str]) -> None:
    node = cfg.get(group)
    if not isinstance(node, DictConfig):
        problems.append(f"{group}: expected a config group option with id and _target_")
        return
    if "id" not in node:
        problems.append(f"{group}.id: missing; every option needs an id (used in run names)")
    if node.get("_target_") is None:
        if group not in OPTIONAL_GROUPS:
            problems.append(f"{group}._target_: missing; expected a dotted import path")
        return
    try:
        target = check_node(node, group, POSITIONAL_ARGS.get(group, 0), RUNTIME_KWARGS[group])
        if inspect.isclass(target):
            check_class(target, group)
        _check_packages(target, group, problems)
    except ConfigError as err:
        problems.append(str(err))
    # nested steps (a dataset's transform and loader, an augmentation's steps): they import
    # and their arguments fit; the runtime values they get are the augmentation's
    # (num_classes...), a dataset's steps get none
    runtime = RUNTIME_KWARGS["augmentation"] if group == "augmentation" else ()
    for key, nested in nested_nodes(node, group):
        if key.startswith("dataset.metrics["):  # metric specs: checked as metrics, below
            continue
        try:
            check_node(nested, key, 0, runtime)
        except ConfigError as err:
            problems.append(str(err))
    if group == "dataset":
        _check_dataset_metrics(node, problems)
    if group == "scheduler":
        _check_schedule(cfg, node, problems)


def _check_dataset_metrics(node: DictConfig, problems: list[str]) -> None:
    """metrics, tracking_metric, stratify and batch: the dataset keys the trainer reads."""
    specs = node.get("metrics")
    if not specs or not OmegaConf.is_list(specs):
        problems.append("dataset.metrics: missing; expected a list of metric names")
        return
    specs = OmegaConf.to_container(specs, resolve=True)
    assert isinstance(specs, list)  # a ListConfig's
    for i, spec in enumerate(specs):
        try:
            parse_spec(spec, f"dataset.metrics[{i}]")
        except ConfigError as err:
            problems.append(str(err))
    names = [spec_name(spec) for spec in specs]
    batch = node.get("batch")
    problems += check_batch_config(OmegaConf.to_container(batch) if batch is not None else None)
    stratify = node.get("stratify")
    if stratify is not None and (
        not OmegaConf.is_list(stratify) or not all(isinstance(c, str) for c in stratify)
    ):
        problems.append(f"dataset.stratify: expected a list of column names, got {stratify!r}")
    tracking = node.get("tracking_metric")
    if tracking not in [*names, "loss"]:
        problems.append(
            f"dataset.tracking_metric: expected one of dataset.metrics ({', '.join(names)}) "
            f"or loss, got {tracking!r}"
        )


def _check_schedule(cfg: DictConfig, node: DictConfig, problems: list[str]) -> None:
    """step_frequency and monitor: the scheduler keys the trainer reads."""
    frequency = node.get("step_frequency")
    if frequency is not None and frequency not in FREQUENCIES:
        problems.append(
            f"scheduler.step_frequency: expected one of {', '.join(FREQUENCIES)}, got {frequency!r}"
        )
    monitor = node.get("monitor")
    specs = OmegaConf.select(cfg, "dataset.metrics")
    if monitor is not None and OmegaConf.is_list(specs):
        entries = OmegaConf.to_container(specs, resolve=True)
        assert isinstance(entries, list)  # a ListConfig's
        names = [spec_name(s) for s in entries]
        columns = ["train_loss", "dev_loss", *(f"dev_{n}" for n in names)]
        if monitor not in columns:
            problems.append(
                f"scheduler.monitor: {monitor!r} is not a metrics column; expected one of "
                f"{', '.join(columns)}"
            )


def _check_keyed(cfg: DictConfig, kind: str, problems: list[str]) -> None:
    entries = cfg.get(kind)
    if entries is None:
        return
    if not isinstance(entries, DictConfig):
        problems.append(f"{kind}: expected a mapping of name -> {{_target_: ...}}")
        return
    for name, node in entries.items():
        if node is None:  # a null entry disables it
            continue
        key = f"{kind}.{name!s}"
        if not isinstance(node, DictConfig) or "_target_" not in node:
            problems.append(f"{key}: expected a mapping with a _target_ (or null to disable it)")
            continue
        try:
            target = check_node(node, key, 0, RUNTIME_KWARGS[kind])
            if inspect.isclass(target):
                check_class(target, key)
            _check_packages(target, key, problems)
        except ConfigError as err:
            problems.append(str(err))


def _check_packages(target: Any, key: str, problems: list[str]) -> None:
    """A class may list the packages it imports lazily (``required_packages = {module: how to
    install it}``); a missing one stops the command here, before any run starts."""
    for module, install in (getattr(target, "required_packages", None) or {}).items():
        if importlib.util.find_spec(module) is None:
            problems.append(f"{key}: needs the package {module!r}, not installed: {install}")


class Validator:
    """Checks composed configs; what one command has checked before is not checked again.

    Importing a ``_target_`` and fitting its signature cost most of a check, and the runs
    of a sweep share their group options: each distinct option (dataset, model, ...,
    each callback and logger) is checked once per command, its problems remembered for
    every run that uses it. Keyed by the option's resolved content (the scheduler's by the
    dataset's metrics too, which it is checked against).
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], list[str]] = {}

    def __call__(self, cfg: DictConfig) -> None:
        """Raise one ConfigError listing every problem of ``cfg``."""
        problems: list[str] = []
        try:
            resolved = OmegaConf.to_container(cfg, resolve=True)  # once, for every check
            assert isinstance(resolved, dict)
            _check_main_keys(resolved, problems)
            for group in GROUPS:
                problems += self._once(group, resolved, cfg, _check_group, group)
            for kind in KEYED_DICTS:
                problems += self._once(kind, resolved, cfg, _check_keyed, kind)
        except Exception as err:  # interpolation errors and the like
            if isinstance(err, ConfigError):
                raise
            problems.append(f"{type(err).__name__}: {err}")
        if problems:
            raise ConfigError("invalid config:\n  " + "\n  ".join(problems))

    def _once(self, key: str, resolved: dict, cfg: DictConfig, check: Any, *args: Any) -> list[str]:
        content = [resolved.get(key)]
        if key == "scheduler":  # checked against the dataset's metrics
            content.append((resolved.get("dataset") or {}).get("metrics"))
        text = json.dumps(content, sort_keys=True, default=repr)
        if (key, text) not in self._seen:
            found: list[str] = []
            check(cfg, *args, found)
            self._seen[key, text] = found
        return self._seen[key, text]


def validate(cfg: DictConfig) -> None:
    """Check the whole composed config; raise one ConfigError listing every problem."""
    Validator()(cfg)
