"""Run names and config hashes: how a run folder is identified.

A run is named from the option ids and the main swept values, e.g.
``Digits_FFNN_Adam_0.001_32_epoch_20_None_1``; overrides of any other key are
appended (``..._model.dropout-0.2``) so different configs get different folders.
``config_hash`` covers the whole resolved config except the keys that do not
change what is trained; it goes into ``status.yaml`` so a folder is never reused
for a different config.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence

import yaml
from omegaconf import DictConfig, OmegaConf

NAME_FIELDS = (
    "dataset.id",
    "model.id",
    "optimizer.id",
    "learning_rate",
    "batch_size",
    "training_type",
    "iterations",
    "scheduler.id",
    "augmentation.id",  # left out of the name while it is None (names from before it existed)
    "seed",
)
# Keys that change where or how visibly a run is kept, not what it trains.
OPERATIONAL_KEYS = frozenset(
    {
        "results_dir",
        "experiment_id",
        "progress_bar",
        "device",
        "max_retries",
        "heartbeat_s",
        "distributed_timeout_s",
        "rerun_on_change",
        "postprocess",
        "num_workers",
        "num_threads",
        "pin_memory",
        "persistent_workers",
        "continue_training",
        "save_train_outputs",
        "save_dev_outputs",
        "save_test_outputs",
        "inference_batch_size",
        "loggers",
        "hydra",
    }
)
GROUP_KEYS = frozenset({"dataset", "model", "optimizer", "scheduler", "criterion", "augmentation"})
MAX_NAME = 150


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "-".join(_format(v) for v in value)
    return str(value)


def _sanitize(text: str) -> str:
    text = re.sub(r"[^A-Za-z0-9.=+-]+", "-", text)
    return re.sub(r"-{2,}", "-", text).strip("-") or "x"


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _extra_overrides(overrides: Sequence[str], legacy: bool = False) -> list[str]:
    """Overrides of keys not already in the base name, as readable name parts, ordered
    by their text without ``+``, ``++``, ``~``: ``+k=v`` and ``k=v`` of one config give
    one name.
    ``legacy``: in the order of the override texts, as names were made before (a ``+``
    sorted first), to find the folders of runs named so."""
    covered = {f.removesuffix(".id") for f in NAME_FIELDS}
    parts = []
    # by the text without +, ++ or ~: overrides without them sort as they always did
    order = None if legacy else (lambda o: o.lstrip("+~"))
    for override in sorted(set(overrides), key=order):
        key = _override_key(override)
        top = key.split(".")[0].split("/")[0]
        if key.startswith("hydra") or key in covered or top in OPERATIONAL_KEYS:
            continue
        value = override.split("=", 1)[1] if "=" in override else "deleted"
        parts.append(_sanitize(f"{key}-{value.strip(chr(39) + chr(34))}"))
    return parts


def _no_augmentation(config: Mapping) -> bool:
    """True while the config has no augmentation (the group's None option, or none at all)."""
    augmentation = config.get("augmentation")
    return augmentation is None or (
        isinstance(augmentation, Mapping) and augmentation.get("_target_") is None
    )


def identity(cfg: DictConfig) -> dict:
    """The resolved config without operational keys: what defines the trained result.

    ``augmentation`` while it is None is left out too, so runs from before the group
    existed keep their hash (and are found, skipped and resumed as before).
    """
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    return {
        k: v
        for k, v in container.items()
        if k not in OPERATIONAL_KEYS and not (k == "augmentation" and _no_augmentation(container))
    }


def config_hash(cfg: DictConfig, ignore: Sequence[str] = ()) -> str:
    """A short hash of :func:`identity` (minus ``ignore``), stable across processes."""
    from omegaconf._utils import get_omega_conf_dumper

    data = {k: v for k, v in identity(cfg).items() if k not in ignore}
    # the text OmegaConf.to_yaml(..., sort_keys=True) gives (hashes of runs trained before
    # stay valid), without building a config from ``data`` first: 4x faster
    text = yaml.dump(data, Dumper=get_omega_conf_dumper(), default_flow_style=False,
                     allow_unicode=True, sort_keys=True)  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_name(cfg: DictConfig, overrides: Sequence[str] = (), legacy: bool = False) -> str:
    """The readable, unique-per-config folder name of a run (``legacy``: as it was named
    before ``+k=v`` and ``k=v`` gave one name; see :func:`_extra_overrides`)."""
    fields = [f for f in NAME_FIELDS if f != "augmentation.id" or not _no_augmentation(cfg)]
    base = [_sanitize(_format(OmegaConf.select(cfg, f))) for f in fields]
    name = "_".join(base + _extra_overrides(overrides, legacy))
    if len(name) > MAX_NAME:
        name = f"{name[: MAX_NAME - 13]}_{config_hash(cfg)}"
    return name
