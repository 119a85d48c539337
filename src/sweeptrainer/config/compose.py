"""Composing the config: the packaged library, the user's ./conf, and the overrides.

Search order: the user's config folder (``./conf`` or ``--config-dir``) first, so
its ``config.yaml`` replaces the packaged one and its group options add to ours;
then the packaged library (``sweeptrainer.conf``). The training command composes
every run of a sweep here *before* Hydra launches anything, so a bad option in
run 7 of 8 fails before run 1 trains.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import pickle
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeptrainer.errors import ConfigError, did_you_mean

CONFIG_NAME = "config"
SHIPPED_COMPOSITIONS = 4  # at most this many travel with a pickled RunComposer
NULLED = re.compile(r"[+~]*([\w/]+)=(?:null|None|~)?")  # `loggers=null`: (the key)


def packaged_conf_dir() -> Path:
    """The folder of the packaged config library (works installed and editable)."""
    spec = importlib.util.find_spec("sweeptrainer.conf")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass
class ConfigSources:
    """Where configs are searched: the user's folder first (if any), then the library.

    The user's folder (``./conf`` or ``--config-dir``) shadows the library: its
    ``config.yaml`` replaces ours, its group options add to ours or replace the ones
    of the same name (the search path plugin of
    :mod:`hydra_plugins.sweeptrainer_plugins.searchpath` puts it before the library). Use
    as a context manager: it removes a frozen copy in a temp folder.

    :meth:`freeze` replaces the user's folder by a copy for the rest of a command, so
    editing ``conf/`` while a sweep runs never changes the runs that start later.
    """

    user_dir: Path | None = None
    config_name: str = CONFIG_NAME
    packaged: Path = field(default_factory=packaged_conf_dir)
    live_dir: Path | None = None  # the user's own folder, once ``user_dir`` is a frozen copy
    _frozen_temp: Path | None = None  # a frozen copy in a temp folder: removed on exit

    @classmethod
    def find(cls, config_dir: str | None, config_name: str | None, cwd: Path) -> ConfigSources:
        """``--config-dir`` when given, else ``./conf`` when the current folder has one."""
        user: Path | None = None
        if config_dir is not None:
            user = (cwd / config_dir).resolve()
            if not user.is_dir():
                raise ConfigError(f"--config-dir: folder {config_dir!r} does not exist")
        elif (cwd / "conf").is_dir():
            user = (cwd / "conf").resolve()
        return cls(user_dir=user, config_name=config_name or CONFIG_NAME)

    def is_group(self, key: str) -> bool:
        """Whether ``key`` names a config group folder in the sources (``a.b`` never does)."""
        if "." in key:
            return False
        return any(
            root is not None and (root / key).is_dir() for root in (self.user_dir, self.packaged)
        )

    def __enter__(self) -> ConfigSources:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._frozen_temp is not None:
            shutil.rmtree(self._frozen_temp, ignore_errors=True)
        self._frozen_temp = None

    def freeze(self, folder: Path | None = None) -> ConfigSources:
        """Compose from a copy of the user's folder from now on; return ``self``.

        The copy goes into ``folder`` (new or empty) or, when None, into a temp folder
        removed on exit. When the user's folder has no main config, the packaged one is
        copied in beside their files, so the copy alone records what the command composed
        from (the packaged library does not change while a command runs). Freezing
        frozen sources again copies the frozen copy (e.g. from a temp folder to a sweep
        folder, once the sweep folder is known). The packaged library does not change
        while a command runs: it is not copied. Without a user folder there is nothing
        to freeze.
        """
        if self.user_dir is None:
            return self
        name = f"{self.config_name}.yaml"
        if not self.user_has_main and not (self.packaged / name).is_file():
            raise ConfigError(f"--config-name: no config {self.config_name!r} in {self.user_dir}")
        if folder is None:
            if self._frozen_temp is not None:
                return self
            folder = self._frozen_temp = Path(tempfile.mkdtemp(prefix="sweeptrainer-conf-"))
        copy_config_tree(self.user_dir, folder)
        if not self.user_has_main:
            shutil.copyfile(self.packaged / name, folder / name)
        self.live_dir = self.live_dir or self.user_dir
        self.user_dir = folder.resolve()
        return self

    @property
    def kept_copy(self) -> Path | None:
        """The frozen copy composed from, when it outlives the command (a sweep's)."""
        temp = self._frozen_temp.resolve() if self._frozen_temp is not None else None
        return self.user_dir if self.live_dir is not None and self.user_dir != temp else None

    @property
    def user_has_main(self) -> bool:
        return self.user_dir is not None and (self.user_dir / f"{self.config_name}.yaml").is_file()


def compose(sources: ConfigSources, overrides: Sequence[str]) -> DictConfig:
    """Compose one config (hydra node included) or raise a readable ConfigError: the
    packaged library is Hydra's primary folder, the user's folder goes before it
    (:mod:`hydra_plugins.sweeptrainer_plugins.searchpath`)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from hydra_plugins.sweeptrainer_plugins.searchpath import user_folder

    try:
        with (
            user_folder(sources.user_dir),
            initialize_config_dir(config_dir=str(sources.packaged), version_base="1.3"),
        ):
            return hydra_compose(
                sources.config_name, overrides=list(overrides), return_hydra_config=True
            )
    except Exception as err:
        nulled = [o for o in overrides if (m := NULLED.fullmatch(o)) and sources.is_group(m[1])]
        raise ConfigError(composition_message(err, nulled)) from None


def copy_config_tree(source: Path, target: Path) -> list[Path]:
    """Copy the YAML files under ``source`` into ``target`` (keeping sub-folders); return them.

    Only what Hydra reads (``*.yaml``/``*.yml``): no caches, no hidden folders, and, for a
    config folder that holds results (``--config-dir .``), not ``target`` itself, nor run
    folders (``status.yaml``) or sweep folders (``multirun.yaml``).
    """
    target.mkdir(parents=True, exist_ok=True)
    skip = target.resolve()

    def wanted(folder: Path) -> bool:
        return not (
            folder.name.startswith(".")
            or folder.name == "__pycache__"
            or (folder / "status.yaml").is_file()
            or (folder / "multirun.yaml").is_file()
            or folder.resolve() == skip
        )

    copied = []
    for folder, subfolders, files in os.walk(source):
        here = Path(folder)
        subfolders[:] = sorted(d for d in subfolders if wanted(here / d))
        for name in sorted(files):
            if name.endswith((".yaml", ".yml")) and not name.startswith("."):
                destination = target / (here / name).relative_to(source)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(here / name, destination)
                copied.append(destination)
    return copied


def base_config(sources: ConfigSources, overrides: Sequence[str]) -> DictConfig:
    """The config a ``-m`` command composes before expanding its sweep: every override
    but the sweeps (``key=a,b``). Hydra's ``hydra.sweep.dir`` comes from it."""
    parsed = parse_overrides(overrides)
    return compose(sources, [str(o.input_line) for o in parsed if not o.is_sweep_override()])


def parse_overrides(overrides: Sequence[str]) -> list[Any]:
    """Hydra's parsed overrides; a ConfigError naming the one that cannot be parsed, with
    the first line of the parser's message."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    parsed = []
    for line in overrides:
        try:
            parsed += parser.parse_overrides([line])
        except Exception as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ConfigError(f"{line}: cannot be parsed ({first})") from None
    return parsed


def task_config(cfg: DictConfig) -> DictConfig:
    """The config a run sees: the composed one without the ``hydra`` node (``cfg`` itself
    when it has none)."""
    if "hydra" not in cfg:
        return cfg
    return OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k != "hydra"])


def basic_sweeper(hydra_node: Any) -> bool:
    """Whether a config's ``hydra`` node sweeps with Hydra's basic sweeper (a grid: every run
    known before launch), not a search that picks its runs as it goes."""
    return "BasicSweeper" in str(OmegaConf.select(hydra_node, "sweeper._target_"))


def composition_message(err: BaseException, nulled_groups: Sequence[str] = ()) -> str:
    """Hydra's message without the search-path dump, plus the root cause when useful.
    ``nulled_groups``: the overrides that set a config group to null (``loggers=null``),
    which Hydra's message does not name."""
    text = str(err).split("\nConfig search path:")[0].strip()
    if text.startswith("Config group override must be") and nulled_groups:
        override = nulled_groups[0]
        key = NULLED.fullmatch(override)[1]  # type: ignore[index]  # chosen by this pattern
        text = (
            f"{override}: {key!r} is a config group, which takes the name of one of its "
            f"options ({key}=NAME; `trainer list {key}` shows them)"
        )
        if key in ("loggers", "callbacks"):  # name -> entry: entries are turned off
            text += f". To turn an entry off: '~{key}.NAME' or {key}.NAME=null"
        return text
    cause = err.__cause__ or err.__context__
    if cause is not None:
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        if first and first not in text:
            text = f"{text}\n{first}"
    from sweeptrainer.config.schema import KNOWN_KEYS

    unknown = re.match(r"Could not override '([^']+)'", text)
    if unknown and "struct" in text:
        key = unknown.group(1)
        return (
            f"unknown config key {key!r}{did_you_mean(key, KNOWN_KEYS)}. Check the spelling, "
            f"or add a new key with +{key}=..."
        )
    return text


def ordered_overrides(
    overrides: Sequence[str], declared: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Hydra's parsed overrides by key, as a sweeper takes them: the declared
    ``hydra.sweeper.params`` first, a key given on the command line replacing the declared
    one in its place, then the other keys as given; a ConfigError names an override that
    cannot be parsed."""
    lines = [f"{k}={v}" for k, v in (declared or {}).items()] + list(overrides)
    return {o.get_key_element(): o for o in parse_overrides(lines)}


def _sweep_values(
    overrides: Sequence[str], declared: dict[str, str], search: bool = False
) -> list[list[str]]:
    """For each override key, the list of single-value overrides it expands to, keys in
    the order Hydra's basic sweeper takes them: the declared ``hydra.sweeper.params``
    first (a value given on the command line replaces the declared one in its place),
    then the other keys as given.

    An ``interval(...)`` is a range to search: left out for a search sweeper (``search``),
    an error for the basic sweeper, which enumerates values."""
    options = []
    for key, override in ordered_overrides(overrides, declared).items():
        if override.is_interval_sweep():
            if not search:
                raise ConfigError(
                    f"{override.input_line}: interval(...) is a range to search, which needs a "
                    "search sweeper: add hydra/sweeper=search (pip install "
                    "'sweeptrainer[search]'; +experiment=optuna_search is an example). The "
                    f"basic sweeper takes values: {key}=0.1,0.01 or range(...)"
                )
        elif override.is_sweep_override():
            options.append([f"{key}={v}" for v in override.sweep_string_iterator()])
            if not options[-1]:
                raise ConfigError(f"{override.input_line}: the sweep is empty (no value to try)")
        else:  # rendered as Hydra's basic sweeper renders it for the job, so names match
            options.append([f"{key}={override.get_value_element_as_str()}"])
    return options


def sample(options: list[list[str]]) -> Iterator[list[str]]:
    """Runs that try each value of each key once: the first combination, then one key
    changed at a time. What a search sweeper's choices are checked by (its runs are picked
    as it goes, and their product can be huge)."""
    first = [values[0] for values in options]
    yield first
    for i, values in enumerate(options):
        for value in values[1:]:
            yield [*first[:i], value, *first[i + 1 :]]


def sweep_overrides(
    sources: ConfigSources,
    overrides: Sequence[str],
    multirun: bool,
    base: DictConfig | None = None,
) -> list[list[str]]:
    """The override lists of every run the command will launch (one without ``-m``), in
    the order Hydra's basic sweeper launches them; for a search sweeper, a sample that
    tries each of its choices once. ``base``: :func:`base_config`, when composed before."""
    try:
        if not multirun:
            return [list(overrides)]
        base = base if base is not None else base_config(sources, overrides)
        params = OmegaConf.select(base, "hydra.sweeper.params") or {}
        declared = {str(k): str(v) for k, v in params.items()}
        search = "BasicSweeper" not in str(OmegaConf.select(base, "hydra.sweeper._target_"))
        options = _sweep_values(overrides, declared, search)
        if search:
            return list(sample(options))
        return [list(c) for c in itertools.product(*options)]
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(composition_message(err)) from None


class RunComposer:
    """Composes the runs of one command, each as Hydra composes it, at a fraction of the cost.

    Hydra composes once per distinct set of *structural* overrides (config group choices
    and ``hydra.*``); a run's other overrides (``seed=2``, ``+model.extra=1``,
    ``~dataset.batch.target``) are applied to a copy of that composition by Hydra's own
    override code, in command-line order as Hydra applies them, and its ``hydra.overrides`` and
    ``override_dirname`` set as Hydra sets them. An 8-seed sweep composes once instead of
    8 times (about 0.1 s each); ``tests/unit/test_compose.py`` checks the copies equal
    Hydra's compositions.
    """

    def __init__(self, sources: ConfigSources) -> None:
        self.sources = sources
        self._composed: dict[tuple[str, ...], DictConfig] = {}
        # copies are made by unpickling (5x faster than copy.deepcopy of a DictConfig)
        self._pickled: dict[tuple[str, ...], bytes] = {}
        self._tasks: dict[tuple[str, ...], bytes] = {}  # the same, without ``hydra``
        self._groups: set[str] = set()  # config group names seen in the compositions
        self._parsed: dict[str, Any] = {}  # override text -> Hydra's parsed Override

    def __getstate__(self) -> dict[str, Any]:
        """What a launcher's worker gets (joblib, SLURM and Ray pickle it with every job):
        the compositions of a small plan, to compose nothing again; none for a big one,
        whose every job would carry every composition (the worker composes its own)."""
        shipped = {}  # as bytes: a composition's structured-config classes are looked up
        # by name again in the worker (pickling the objects themselves fails once Hydra's
        # plugin scan has imported their modules anew)
        if len(self._composed) <= SHIPPED_COMPOSITIONS:
            shipped = {
                k: self._pickled.get(k) or pickle.dumps(v) for k, v in self._composed.items()
            }
        groups = self._groups if shipped else set()
        return dict(self.__dict__, _parsed={}, _tasks={}, _composed={}, _pickled=shipped,
                    _groups=groups)  # fmt: skip

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._composed = {k: pickle.loads(v) for k, v in self._pickled.items()}

    def __call__(self, overrides: Sequence[str]) -> DictConfig:
        """The run's whole config, Hydra's node included (what a job is launched with)."""
        split = self._split(overrides)
        if split is None:
            return compose(self.sources, overrides)  # Hydra's own message
        structural, parsed, values = split
        if structural not in self._pickled:
            self._pickled[structural] = pickle.dumps(self._composed[structural])
        cfg = pickle.loads(self._pickled[structural])
        if not values:
            return cfg
        try:
            return _with_values(cfg, parsed, values)
        except Exception:  # a key that does not exist, a wrong type: Hydra's message,
            pass  # composed outside this block so that our error is not its context
        return compose(self.sources, overrides)

    def task(self, overrides: Sequence[str]) -> DictConfig:
        """The run's config without Hydra's node (:func:`task_config`): what checking,
        naming and planning a run need, at a third of the cost of :meth:`__call__`."""
        split = self._split(overrides)
        if split is None:
            return task_config(compose(self.sources, overrides))
        structural, _, values = split
        if structural not in self._tasks:
            task = task_config(self._composed[structural])
            OmegaConf.set_struct(task, True)
            self._tasks[structural] = pickle.dumps(task)
        cfg = pickle.loads(self._tasks[structural])
        try:
            _apply_values(values, cfg)
            return cfg
        except Exception:  # as in __call__: Hydra's message
            pass
        return task_config(compose(self.sources, overrides))

    def compositions(self) -> list[DictConfig]:
        """The configs Hydra composed (one per distinct set of structural overrides): their
        ``hydra`` node is every run's (values never change it)."""
        return list(self._composed.values())

    def _split(self, overrides: Sequence[str]) -> tuple[tuple[str, ...], list, list] | None:
        """(structural overrides, all parsed, the values), the structural ones composed;
        None when Hydra cannot parse the overrides."""
        from hydra.core.override_parser.overrides_parser import OverridesParser

        try:  # each text parsed once: the runs of a grid share their overrides
            for text in overrides:
                if text not in self._parsed:
                    self._parsed[text] = OverridesParser.create().parse_override(text)
        except Exception:
            return None
        parsed = [self._parsed[text] for text in overrides]
        while True:  # a group is known once a composition has chosen it
            values = [o for o in parsed if self._is_value(o)]
            structural = tuple(o.input_line for o in parsed if o not in values)
            base = self._composed.get(structural)
            if base is None:
                base = self._composed[structural] = compose(self.sources, structural)
                self._groups |= set(base.hydra.runtime.choices)
            if not any(o.key_or_group in self._groups for o in values):
                return structural, parsed, values

    def _is_value(self, override: Any) -> bool:
        """Not a config group choice (``model=CNN``, ``+experiment=x``) nor ``hydra.*``:
        a value Hydra applies to the composed config, in command-line order (``+key=v``,
        ``~key`` and ``++key=v`` included)."""
        key = override.key_or_group
        return (
            not override.is_sweep_override()
            and override.package is None
            and not override.is_hydra_override()
            and key not in self._groups
            and not self.sources.is_group(key)
        )


def _apply_values(values: list, cfg: DictConfig) -> None:
    """Apply value overrides (parsed by Hydra's override parser) to ``cfg`` as Hydra's
    composition applies them, in order: ``key=v`` (an existing key), ``+key=v`` (a new key),
    ``++key=v`` (either), ``~key`` / ``~key=v`` (remove it). Anything unusual raises, and
    :class:`RunComposer` then composes the run with Hydra itself (Hydra's own message)."""
    from omegaconf import open_dict

    for override in values:
        key, value = override.key_or_group, override.value()
        current = OmegaConf.select(cfg, key, throw_on_missing=False)
        if override.is_delete():
            if current is None or (value is not None and value != current):
                raise KeyError(f"{override.input_line}: nothing to remove")
            parent, _, leaf = key.rpartition(".")
            with open_dict(cfg):
                del (OmegaConf.select(cfg, parent) if parent else cfg)[leaf]
        elif override.is_add() and current is not None and not isinstance(value, (dict, list)):
            raise KeyError(f"{override.input_line}: the key exists (++ adds or overrides)")
        else:  # struct mode refuses a key that `key=v` (no +) does not find
            adds = override.is_add() or override.is_force_add()
            OmegaConf.update(cfg, key, value, merge=True, force_add=adds)


def overrides_dirname(lines: Sequence[str], exclude: Sequence[str], item_sep: str, kv: str) -> str:
    """Hydra's ``hydra.job.override_dirname`` of a job: its overrides but the excluded keys,
    sorted, joined by ``item_sep``, each ``=`` as ``kv``."""
    kept = sorted(line for line in lines if line.lstrip("+~").split("=")[0] not in exclude)
    return item_sep.join(kept).replace("=", kv)


def _with_values(cfg: DictConfig, parsed: list, values: list) -> DictConfig:
    """``cfg`` (a copy) with the value overrides applied, and Hydra's record of them."""
    from omegaconf import open_dict

    _apply_values(values, cfg)
    task = [o.input_line for o in parsed if not o.is_hydra_override()]
    naming = cfg.hydra.job.config.override_dirname
    with open_dict(cfg.hydra):
        cfg.hydra.overrides.task = task
        cfg.hydra.job.override_dirname = overrides_dirname(
            task, list(naming.exclude_keys), naming.item_sep, naming.kv_sep
        )
    return cfg
