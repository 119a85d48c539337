"""`trainer list GROUP` and `trainer show GROUP NAME`: the options of the config groups."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from sweeptrainer.config.compose import packaged_conf_dir
from sweeptrainer.config.schema import GROUPS as SCHEMA_GROUPS
from sweeptrainer.config.schema import KEYED_DICTS
from sweeptrainer.errors import ConfigError
from sweeptrainer.io.atomic import read_yaml

GROUPS = (*SCHEMA_GROUPS, *KEYED_DICTS)  # callbacks and loggers: added with +GROUP=NAME


@dataclass(frozen=True)
class Option:
    group: str
    name: str
    path: Path
    source: str  # packaged | yours

    def target(self) -> str:
        data = read_yaml(self.path)
        if not isinstance(data, dict):
            return "?"
        if "_target_" not in data and data.get("defaults"):  # extends another option
            base = next((d for d in data["defaults"] if isinstance(d, str) and d != "_self_"), "?")
            return f"(as {base})"
        return str(data.get("_target_"))


def _check_group(group: str) -> None:
    if group not in GROUPS:
        raise ConfigError(f"GROUP: no config group {group!r}; the groups are: {', '.join(GROUPS)}")


def options(group: str, user_dir: Path | None) -> list[Option]:
    """The group's options: the user's (which shadow packaged ones of the same name) first."""
    _check_group(group)
    found: dict[str, Option] = {}
    folders = [
        (user_dir / group if user_dir else None, "yours"),
        (packaged_conf_dir() / group, "packaged"),
    ]
    for folder, source in folders:
        if folder is None or not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml")):
            found.setdefault(path.stem, Option(group, path.stem, path, source))
    return sorted(found.values(), key=lambda o: (o.source != "yours", o.name.lower()))


def find(group: str, name: str, user_dir: Path | None) -> Option:
    for option in options(group, user_dir):
        if option.name == name:
            return option
    names = ", ".join(o.name for o in options(group, user_dir))
    raise ConfigError(f"NAME: no option {name!r} in group {group!r}; the options are: {names}")


def table(group: str, user_dir: Path | None) -> str:
    rows = [(o.name, o.source, o.target()) for o in options(group, user_dir)]
    widths = [max(len(r[i]) for r in [("option", "source", "_target_"), *rows]) for i in range(2)]
    lines = [f"{'option':{widths[0]}}  {'source':{widths[1]}}  _target_"]
    lines += [f"{n:{widths[0]}}  {s:{widths[1]}}  {t}" for n, s, t in rows]
    return "\n".join(lines)


def save(option: Option, user_dir: Path) -> Path:
    """Copy an option into the user's folder for editing (it then replaces the packaged one)."""
    target = user_dir / option.group / option.path.name
    if target.exists():
        raise ConfigError(f"--save: {target} exists already; edit it there")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(option.path, target)
    return target
