"""A search's study (``hydra/sweeper=search``): its settings, its search space, the Optuna
sampler and pruner they name, its storage, and the ``best.yaml`` beside it.

The sweeper (:mod:`sweeptrainer.sweep.search`) asks the study for trials, each run of a
trial reports to it (:mod:`sweeptrainer.run.trial`), and ``trainer status`` reads its
progress: all open the same Optuna journal file by path, from any process or node. Every
check of the settings happens in :meth:`SearchSettings.parse`, before anything is written,
so bad input is one line and exit code 2.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeptrainer.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    import optuna

SEARCH_TARGET = "hydra_plugins.sweeptrainer_plugins.search.SearchSweeper"
KEYS = ("_target_", "sampler", "pruner", "n_trials", "seed", "direction", "study_name",
        "storage", "n_jobs", "params")  # fmt: skip
SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp", "nsga2")
PRUNERS = ("none", "median", "halving", "hyperband")
DIRECTIONS = ("auto", "maximize", "minimize")
SEARCH_DIR = "search"  # <results_dir>/<experiment_id>/search/<study_name>/
JOURNAL = "journal.log"
BEST = "best.yaml"
OVERRIDES_ATTR = "overrides"  # a trial's user attribute: the run's overrides, to resume it
RUN_ATTR = "run"  # a trial's user attribute: its run folder's name


def is_search(sweeper_node: Any) -> bool:
    """Whether a config's ``hydra.sweeper`` is sweeptrainer's search."""
    try:
        return str(sweeper_node.get("_target_", "")) == SEARCH_TARGET
    except AttributeError:
        return False


@dataclass(frozen=True)
class Param:
    """One searched key: its override key (``+key`` kept), the values of a choice (or a
    range, as values), or the bounds of an interval."""

    key: str
    choices: tuple[Any, ...] = ()
    texts: tuple[str, ...] = ()  # each choice as an override renders it
    low: float = 0.0
    high: float = 0.0
    integer: bool = False
    log: bool = False

    @property
    def name(self) -> str:
        """The parameter's name in the study: the key without ``+``/``++``."""
        return self.key.lstrip("+")

    @property
    def discrete(self) -> bool:
        return bool(self.choices)

    def distribution(self) -> Any:
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.discrete:
            return CategoricalDistribution(list(self.choices))
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)

    def override(self, value: Any) -> str:
        """``key=value`` as a run's override."""
        if self.discrete:
            return f"{self.key}={self.texts[self.choices.index(value)]}"
        return f"{self.key}={int(value) if self.integer else repr(float(value))}"

    def describe(self) -> str:
        if self.discrete:
            return f"{self.key}={','.join(self.texts)}"
        kind = "int(interval" if self.integer else "interval"
        inner = f"{kind}({self.low},{self.high}){')' if self.integer else ''}"
        return f"{self.key}=tag(log,{inner})" if self.log else f"{self.key}={inner}"


def parse_space(
    overrides: Sequence[str], declared: Mapping[str, Any] | None = None
) -> tuple[list[Param], list[str]]:
    """The searched keys and the fixed overrides of a search, from the sweeper's arguments
    (the command's overrides without ``hydra.*``) and its declared ``params`` (a key on the
    command line replaces the declared one in its place), in Hydra's sweep grammar."""
    from sweeptrainer.config.compose import ordered_overrides

    params, fixed = [], []
    for key, override in ordered_overrides(overrides, declared).items():
        if override.is_sweep_override():
            params.append(_param(key, override))
        else:
            fixed.append(str(override.input_line))
    if not params:
        raise ConfigError(
            "a search needs a key to search: give values (learning_rate=0.001,0.01), "
            "choice(...), range(...) or interval(lo,hi)"
        )
    return params, fixed


def _param(key: str, override: Any) -> Param:
    """One searched key from Hydra's parsed override; a ConfigError when it is empty."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep

    value, where = override.value(), f"{override.input_line}:"
    if isinstance(value, IntervalSweep):
        low, high = value.start, value.end
        if low is None or high is None or not low < high:
            raise ConfigError(
                f"{where} the interval is empty (its low end must be below its high end)"
            )
        log = "log" in (value.tags or set())
        if log and low <= 0:
            raise ConfigError(f"{where} a log interval needs a low end above 0")
        integer = isinstance(low, int) and isinstance(high, int)
        return Param(key, low=low, high=high, integer=integer, log=log)
    if not isinstance(value, RangeSweep | ChoiceSweep):
        raise ConfigError(f"{where} not a search space (a,b,c, choice, range, interval)")
    values = list(override.sweep_iterator()) if isinstance(value, RangeSweep) else value.list
    if not values:
        raise ConfigError(f"{where} the range is empty (no value to try)")
    texts = [Override._get_value_element_as_str(v) for v in values]
    plain = all(v is None or isinstance(v, bool | int | float | str) for v in values)
    choices = values if plain else texts  # lists and mappings: by their text
    if len(set(map(repr, choices))) < len(choices):
        raise ConfigError(f"{where} a value is given twice")
    return Param(key, tuple(choices), tuple(texts))


@dataclass(frozen=True)
class SearchSettings:
    """``hydra.sweeper`` of ``hydra/sweeper=search``, checked and resolved (defaults filled
    in: the direction from the tracking metric, the study name, the journal's path)."""

    params: list[Param]
    fixed: list[str]
    sampler: str | dict[str, Any]
    pruner: str | dict[str, Any]
    n_trials: int
    seed: int | None
    direction: str
    study_name: str
    storage: Path
    n_jobs: int | None
    metric: str = "loss"

    @property
    def folder(self) -> Path:
        """Where ``best.yaml`` goes: beside the journal."""
        return self.storage.parent

    @classmethod
    def parse(
        cls, node: Mapping[str, Any], overrides: Sequence[str], task_cfg: Any, cwd: str | None
    ) -> SearchSettings:
        """Check and resolve the sweeper's keys against the command's search space and the
        run config (``task_cfg``: the results folder, the tracking metric); a ConfigError
        naming the key otherwise. ``cwd``: where a relative ``storage`` is."""
        for key in node:
            if key not in KEYS:
                raise ConfigError(
                    f"hydra.sweeper.{key}: unknown key of the search sweeper"
                    f"{did_you_mean(str(key), KEYS)}; it takes {', '.join(KEYS[1:])}"
                )
        declared = node.get("params") or {}
        if not isinstance(declared, Mapping):
            raise ConfigError("hydra.sweeper.params: expected a mapping of key -> search space")
        params, fixed = parse_space(overrides, {str(k): v for k, v in declared.items()})
        sampler = _choice(node.get("sampler", "tpe"), SAMPLERS, "sampler")
        pruner = _choice(node.get("pruner", "none"), PRUNERS, "pruner")
        seed = _whole(node.get("seed", 1), "seed", None)
        n_jobs = _whole(node.get("n_jobs"), "n_jobs", 1)
        n_trials = _n_trials(node.get("n_trials"), sampler, params)
        if sampler == "cmaes" and importlib.util.find_spec("cmaes") is None:
            raise ConfigError(
                "hydra.sweeper.sampler=cmaes needs the cmaes package: pip install cmaes"
            )
        metric = str(task_cfg.dataset.get("tracking_metric", "loss"))
        direction = _direction(node.get("direction", "auto"), metric, task_cfg)
        space = {p.name: p.describe() for p in params}
        study_name = node.get("study_name")
        if study_name is None:
            identity = {"space": space, "fixed": fixed, "sampler": sampler, "seed": seed,
                        "direction": direction}  # fmt: skip
            digest = hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode())
            study_name = f"{task_cfg.experiment_id}-{digest.hexdigest()[:8]}"
        study_name = str(study_name)
        if not study_name or "/" in study_name or study_name in (".", ".."):
            raise ConfigError(f"hydra.sweeper.study_name: {study_name!r} is not a file name")
        path = _journal_path(node.get("storage"), task_cfg, study_name, cwd)
        return cls(params, fixed, sampler, pruner, n_trials, seed, direction, study_name,
                   path, n_jobs, metric)  # fmt: skip

    def resolved(self) -> dict[str, Any]:
        """The keys a job needs to find its study, written into its ``hydra.sweeper``."""
        return {"n_trials": self.n_trials, "study_name": self.study_name,
                "storage": str(self.storage), "direction": self.direction}  # fmt: skip

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """A trial's overrides: the fixed ones, then each searched key's value."""
        return [*self.fixed, *(p.override(params[p.name]) for p in self.params)]

    def distributions(self) -> dict[str, Any]:
        return {p.name: p.distribution() for p in self.params}

    def make_sampler(self, trials_so_far: int) -> optuna.samplers.BaseSampler:
        """The sampler for the next trial, seeded with ``seed + trials so far``: a resumed
        search samples what the uninterrupted one would have (the sampler's state is the
        study's history, not a process's random state). The grid sampler keeps ``seed``: it
        shuffles the grid with it, and trial k takes the k-th point."""
        seed = self.seed
        if seed is not None and self.sampler != "grid":
            seed += trials_so_far
        return build_sampler(self.sampler, seed, self.params)


def _n_trials(value: Any, sampler: Any, params: Sequence[Param]) -> int:
    """``n_trials``: given, or with the grid sampler the number of combinations."""
    n_trials = _whole(value, "n_trials", 1)
    if sampler != "grid":
        if n_trials is None:
            raise ConfigError(
                "hydra.sweeper.n_trials: how many trials the search runs (with "
                "hydra.sweeper.sampler=grid: the number of combinations unless given)"
            )
        return n_trials
    continuous = [p.describe() for p in params if not p.discrete]
    if continuous:
        raise ConfigError(
            f"{continuous[0]}: the grid sampler takes values (a,b,c or range(...)), "
            "not an interval: use another sampler (tpe, random ...) to search it"
        )
    combinations = math.prod(len(p.choices) for p in params)
    if n_trials is not None and n_trials > combinations:
        raise ConfigError(
            f"hydra.sweeper.n_trials={n_trials}: the grid has {combinations} combinations"
        )
    return combinations if n_trials is None else n_trials


def _journal_path(storage: Any, task_cfg: Any, study_name: str, cwd: str | None) -> Path:
    """The journal file: ``storage``, else under the experiment's ``search/`` folder."""
    if storage is None:
        base = Path(task_cfg.results_dir) / task_cfg.experiment_id / SEARCH_DIR
        path = base / study_name / JOURNAL
    elif "://" in str(storage):
        raise ConfigError(
            f"hydra.sweeper.storage: {storage}: expected the path of a journal file "
            "(Optuna's JournalStorage, shared by every process through the file system)"
        )
    else:
        path = Path(str(storage)).expanduser()
    return path if path.is_absolute() else Path(cwd or ".").absolute() / path


def _choice(value: Any, names: Sequence[str], key: str) -> str | dict[str, Any]:
    """A sampler or pruner: a known name, or a mapping with ``_target_``."""
    if isinstance(value, Mapping):
        if "_target_" not in value:
            raise ConfigError(
                f"hydra.sweeper.{key}: a mapping needs _target_ (an Optuna {key} class)"
            )
        target = _optuna_class(str(value["_target_"]), key)
        args = {str(k): v for k, v in value.items() if k != "_target_"}
        try:
            inspect.signature(target).bind(**args)
        except TypeError as err:
            raise ConfigError(f"hydra.sweeper.{key}: {value['_target_']}: {err}") from None
        return {"_target_": str(value["_target_"]), **args}
    if value is None:
        value = "none"
    if not isinstance(value, str) or value not in names:
        raise ConfigError(
            f"hydra.sweeper.{key}={value}: unknown {key}{did_you_mean(str(value), names)}; "
            f"known: {', '.join(names)}, or {{_target_: optuna.{key}s.SomeClass, ...}}"
        )
    return value


def _optuna_class(path: str, key: str) -> Any:
    """The Optuna sampler or pruner class a ``_target_`` names, checked to be one before it
    is ever called (a config is input: it never runs other code)."""
    import optuna

    base = optuna.samplers.BaseSampler if key == "sampler" else optuna.pruners.BasePruner
    module, _, name = path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name) if module else None
    except Exception:
        found = None
    if not (inspect.isclass(found) and issubclass(found, base)):
        raise ConfigError(
            f"hydra.sweeper.{key}._target_={path}: not an Optuna {key} class "
            f"(a subclass of {base.__module__}.{base.__name__})"
        )
    return found


def _whole(value: Any, key: str, least: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"hydra.sweeper.{key}: expected a whole number, got {value!r}")
    if least is not None and value < least:
        raise ConfigError(f"hydra.sweeper.{key}={value}: expected at least {least}")
    return value


def _direction(value: Any, metric: str, task_cfg: Any) -> str:
    """``maximize`` or ``minimize``: from the tracking metric, or as given when it agrees."""
    if value not in DIRECTIONS:
        raise ConfigError(
            f"hydra.sweeper.direction={value}: expected one of {', '.join(DIRECTIONS)}"
        )
    higher = tracking_higher(metric, list(task_cfg.dataset.get("metrics") or []))
    wanted = "maximize" if higher else "minimize"
    if value != "auto" and value != wanted:
        better = "higher" if higher else "lower"
        raise ConfigError(
            f"hydra.sweeper.direction={value} contradicts the tracking metric: dev {metric} "
            f"is better {better}, so the search must {wanted} it (or leave direction auto)"
        )
    return wanted


def tracking_higher(metric: str, specs: list[Any]) -> bool:
    """Whether the tracking metric (``dataset.tracking_metric``) is better higher."""
    from sweeptrainer.components.metrics import from_spec, higher_is_better
    from sweeptrainer.config.metric_specs import spec_name

    if metric == "loss":
        return False
    for spec in specs:
        if spec_name(spec) == metric:
            return from_spec(spec).higher_is_better
    return higher_is_better(metric)


def build_sampler(
    spec: str | Mapping[str, Any], seed: int | None, params: Sequence[Param]
) -> optuna.samplers.BaseSampler:
    import optuna

    if isinstance(spec, Mapping):
        args = {k: v for k, v in spec.items() if k != "_target_"}
        cls = _optuna_class(str(spec["_target_"]), "sampler")
        if "seed" in inspect.signature(cls).parameters and "seed" not in args:
            args["seed"] = seed
        return cls(**args)
    samplers = optuna.samplers
    if spec == "grid":
        return samplers.GridSampler({p.name: list(p.choices) for p in params}, seed=seed)
    if spec == "random":
        return samplers.RandomSampler(seed=seed)
    if spec == "cmaes":
        return samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if spec == "gp":
        return samplers.GPSampler(seed=seed, warn_independent_sampling=False)
    if spec == "nsga2":
        return samplers.NSGAIISampler(seed=seed)
    return samplers.TPESampler(seed=seed)


def build_pruner(spec: Any, iterations: int | None = None) -> optuna.pruners.BasePruner:
    """The pruner ``spec`` names. The named ones make no decision before a tenth of the run
    (``iterations``): a run reports once per evaluation, not per step as Optuna's defaults
    assume (its successive halving would rank runs after their first epoch, when a slower
    learning rate that ends best still trails)."""
    import optuna

    if isinstance(spec, Mapping):
        args = {str(k): v for k, v in spec.items() if k != "_target_"}
        return _optuna_class(str(spec["_target_"]), "pruner")(**args)
    grace = max(1, (iterations or 0) // 10)
    pruners = optuna.pruners
    if spec == "median":
        return pruners.MedianPruner(n_warmup_steps=grace)
    if spec == "halving":
        return pruners.SuccessiveHalvingPruner(min_resource=grace)
    if spec == "hyperband":
        return pruners.HyperbandPruner(
            min_resource=grace, max_resource=iterations if iterations else "auto"
        )
    return pruners.NopPruner()


def journal(path: Path, create: bool = False) -> optuna.storages.JournalStorage:
    """The Optuna journal storage in the file ``path`` (made with ``create``; else it must be
    a file, not a link: a results folder is untrusted input)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif path.is_symlink() or not path.is_file():
        raise FileNotFoundError(f"{path}: no study journal there")
    return JournalStorage(JournalFileBackend(str(path)))


def open_study(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    direction: str | None = None,
    pruner: Any = "none",
    create: bool = False,
    iterations: int | None = None,
) -> optuna.Study:
    """The study as every process opens it: created (or loaded) by the sweeper with
    ``create``, loaded by a run and by ``trainer status``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our lines say what happens
    if create:
        return optuna.create_study(
            storage=storage, study_name=study_name, direction=direction,  # type: ignore[arg-type]
            pruner=build_pruner(pruner), load_if_exists=True,
        )  # fmt: skip
    return optuna.load_study(
        study_name=study_name, storage=storage, pruner=build_pruner(pruner, iterations)
    )


# -- best.yaml: the study's progress, for the user and for `trainer status` ---------------
def progress(study: optuna.Study, n_trials: int, metric: str) -> dict[str, Any]:
    """The study's progress and best trial so far, as ``best.yaml`` holds them."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    data: dict[str, Any] = {
        "study_name": study.study_name,
        "direction": study.direction.name.lower(),
        "metric": f"dev {metric}",
        "n_trials": n_trials,
        "trials": {k: v for k, v in counts.items() if v or k in ("complete", "pruned")},
    }
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if complete:
        pick = max if study.direction.name == "MAXIMIZE" else min
        best = pick(complete, key=lambda t: float(t.value))  # type: ignore[arg-type]
        data["best"] = {
            "trial": best.number + 1,
            "value": float(best.value),  # type: ignore[arg-type]
            "params": dict(best.params),
            "overrides": list(best.user_attrs.get(OVERRIDES_ATTR, [])),
            "run": best.user_attrs.get(RUN_ATTR),
        }
    return data


def write_progress(folder: Path, data: Mapping[str, Any]) -> None:
    from sweeptrainer.io.atomic import atomic_write_yaml

    atomic_write_yaml(folder / BEST, dict(data))


def read_progress(folder: Path) -> dict[str, Any] | None:
    """A study folder's ``best.yaml`` (untrusted: None when missing, a link or damaged)."""
    from sweeptrainer.io.atomic import read_yaml

    path = folder / BEST
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = read_yaml(path)
    except (OSError, ConfigError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("n_trials"), int) else None


def best_line(data: Mapping[str, Any]) -> str:
    """``best trial 4/10: learning_rate=0.01 seed=1 (dev accuracy 0.9611)``."""
    best = data.get("best")
    if not isinstance(best, Mapping):
        return "no complete trial yet"
    shown = " ".join(f"{k}={v}" for k, v in dict(best.get("params") or {}).items())
    return (
        f"best trial {best.get('trial')}/{data.get('n_trials')}: {shown} "
        f"({data.get('metric', 'objective')} {float(best.get('value', math.nan)):.4g})"
    )


def study_lines(experiment: Path) -> list[str]:
    """``trainer status``'s lines for the experiment's studies: trials done of N, the best
    so far (from each study's ``best.yaml``, which the sweeper rewrites as trials start and
    end)."""
    folder = Path(experiment) / SEARCH_DIR
    if folder.is_symlink() or not folder.is_dir():
        return []
    lines = []
    for study in sorted(folder.iterdir()):
        data = None if study.is_symlink() or not study.is_dir() else read_progress(study)
        if data is None:
            continue
        trials = {
            str(k): v for k, v in dict(data.get("trials") or {}).items() if isinstance(v, int)
        }
        done = sum(v for k, v in trials.items() if k in ("complete", "pruned", "fail"))
        counts = ", ".join(f"{v} {k}" for k, v in trials.items())
        lines.append(
            f"search {study.name}: {done}/{data['n_trials']} trials done ({counts}); "
            f"{best_line(data)}"
        )
    return lines
