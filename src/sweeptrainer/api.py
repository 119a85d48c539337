"""The Python API, for notebooks and scripts: ``compose``, ``train``, ``load_run``.

They take the code paths of the ``trainer`` command (composition and validation, the run
plan with skip/resume/retry/continue, the run folder and its lock, the snapshot), but they
never call ``sys.exit`` and leave no global Hydra state behind, so they can be called
again and again in one process. Bad input raises :class:`~sweeptrainer.errors.ConfigError`
with the message the command would print.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from sweeptrainer.config.schema import GROUPS
from sweeptrainer.errors import ConfigError, Interrupted, TrainingError

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from sweeptrainer.config.compose import ConfigSources

# ----------------------------------------------------------------- compose


def _overrides(overrides: Sequence[str] | None) -> list[str]:
    if overrides is None:
        return []
    if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(
            f"overrides: expected a list of strings such as ['seed=2', 'model=CNN'], "
            f"got {overrides!r}"
        )
    return list(overrides)


def _sources(config_dir: str | Path | None) -> ConfigSources:
    """``config_dir`` when given, else ``./conf`` when the current folder has one."""
    from sweeptrainer.config.compose import ConfigSources

    if config_dir is not None and not (Path.cwd() / config_dir).is_dir():
        raise ConfigError(f"config_dir: folder {str(config_dir)!r} does not exist")
    folder = None if config_dir is None else str(config_dir)
    return ConfigSources.find(folder, None, Path.cwd())


def _compose_full(overrides: Sequence[str], config_dir: str | Path | None) -> DictConfig:
    """The composed config with its ``hydra`` node, validated."""
    from sweeptrainer.config.compose import compose as compose_config
    from sweeptrainer.config.schema import validate

    with _sources(config_dir) as sources:
        cfg = compose_config(sources, overrides)
    validate(cfg)
    return cfg


def compose(
    overrides: Sequence[str] | None = None, config_dir: str | Path | None = None
) -> DictConfig:
    """The config ``trainer OVERRIDES`` would train, composed and checked like the command.

    ``config_dir``: your config folder (default: ``./conf`` when there is one); it shadows
    the packaged library as with ``--config-dir``. Returns the run's config without Hydra's
    own ``hydra`` node; change values on it before :func:`train` if you like (new keys need
    ``omegaconf.open_dict``, as ``+key=...`` does on the command line).
    Raises ConfigError for an unknown key, a bad value or a missing option.
    """
    from sweeptrainer.config.compose import task_config

    return task_config(_compose_full(_overrides(overrides), config_dir))


# ----------------------------------------------------------------- train


@dataclass
class RunResult:
    """What :func:`train` did to one run.

    ``status``: ``finished`` (trained now), ``skipped`` (finished before, or being trained
    by another process), ``pruned`` (stopped by a search's pruner before: ``error`` holds
    the reason), and with ``check=False`` also ``failed`` or ``interrupted``.
    ``results``: the run's ``results.yaml`` (``test``, ``dev``, ``best_iteration``, ...),
    empty when the run did not finish.
    """

    name: str
    run_dir: Path
    status: str
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def load(self, device: str = "cpu") -> LoadedRun:
        """The run's config, metrics, results and best model: :func:`load_run`."""
        return load_run(self.run_dir, device=device)


def train(
    config: DictConfig | Sequence[str] | None = None,
    *,
    config_dir: str | Path | None = None,
    results_dir: str | Path | None = None,
    check: bool = True,
    handle_signals: bool = True,
) -> RunResult:
    """Train one run in this process, like ``trainer OVERRIDES``; return its outcome.

    ``config``: a list of overrides (composed as :func:`compose` does, the run named like
    the command names it), or a config from :func:`compose` (possibly changed; the run is
    named from the overrides that turn the default config into it). ``results_dir``
    replaces the config's ``results_dir``. As with the command, a finished run is skipped
    (its results are returned), an interrupted one resumes, a failed one is retried.

    Raises ConfigError for bad input (nothing is written), and, with ``check=True``,
    TrainingError when the run fails (recorded in its folder as with the command) and
    Interrupted when a stop signal ended it (its state is saved: call again to resume).
    ``handle_signals``: for the duration of the call, Ctrl-C (a notebook's interrupt) and
    SIGTERM save the state and stop the run; the previous handlers are restored after.
    """
    from sweeptrainer.config.compose import task_config
    from sweeptrainer.logs import configure_console
    from sweeptrainer.run.lifecycle import set_threads, train_run
    from sweeptrainer.snapshot import Provenance
    from sweeptrainer.training.signals import StopSignals
    from sweeptrainer.usercode import import_from_cwd

    configure_console()
    import_from_cwd()  # like the command: modules in this folder import
    choices = None
    if isinstance(config, DictConfig):
        cfg = task_config(config) if "hydra" in config else copy.deepcopy(config)
        overrides = implied_overrides(cfg, config_dir)
        command = "sweeptrainer.train(<a DictConfig>)"
    else:
        overrides = _overrides(config)
        full = _compose_full(overrides, config_dir)
        choices = dict(full.hydra.runtime.choices)
        cfg = task_config(full)
        command = f"sweeptrainer.train({overrides!r})"
    if results_dir is not None:
        cfg.results_dir = str(results_dir)
        overrides = [*overrides, f"results_dir={_quote(str(results_dir))}"]
    set_threads(cfg.num_threads, None)
    with _sources(config_dir) as sources:
        provenance = Provenance(command, sources=sources)
        signals = StopSignals() if handle_signals else contextlib.nullcontext()
        with signals as stop:
            outcome = train_run(cfg, overrides, stop, provenance=provenance, choices=choices)
    run_dir = Path(outcome.path or ".").absolute()  # stays right if the notebook chdirs
    result = RunResult(outcome.name, run_dir, outcome.state, outcome.results, outcome.error)
    if outcome.state == "invalid":
        raise ConfigError(outcome.error or "invalid config")
    if check and outcome.state == "failed":
        raise TrainingError(
            f"run {outcome.name} failed: {outcome.error} (see {result.run_dir / 'train.log'})"
        )
    if check and outcome.state == "interrupted":
        raise Interrupted(outcome.exit_code - 128)
    return result


def implied_overrides(cfg: DictConfig, config_dir: str | Path | None = None) -> list[str]:
    """The overrides that turn the default config into ``cfg``: group options whose ``id``
    differs (``model=CNN``), then every value that differs from that composition.

    They name the run as the command would from the same overrides, so changing a value
    that is not part of the name (``model.dropout``) still gives a run folder of its own.
    """
    default = compose(None, config_dir)
    ids = {g: OmegaConf.select(cfg, f"{g}.id") for g in GROUPS}
    groups = [
        f"{g}={ids[g]}"
        for g in GROUPS
        if ids[g] is not None and ids[g] != OmegaConf.select(default, f"{g}.id")
    ]
    skip: tuple[str, ...] = ()
    if groups:
        try:
            default = compose(groups, config_dir)
        except ConfigError:  # an option whose file name differs from its id
            skip = tuple(f"{o.split('=')[0]}." for o in groups)
    base, mine = _leaves(default), _leaves(cfg)
    changed = [
        f"{key}={_text(value)}" if key in base else f"+{key}={_text(value)}"
        for key, value in mine.items()
        if base.get(key, object()) != value and not key.startswith(skip)
    ]
    removed = [f"~{key}" for key in base if key not in mine and not key.startswith(skip)]
    return groups + changed + removed


def _leaves(cfg: DictConfig) -> dict[str, Any]:
    """Dotted key -> value (interpolations unresolved, lists whole, empty dicts left out)."""
    from sweeptrainer.config.flat import leaves

    data = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(data, dict)  # a DictConfig's
    return leaves(data)


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return _quote(str(value))


def _quote(text: str) -> str:
    """A value as an override accepts it: quoted when it holds characters Hydra parses."""
    if text and all(c.isalnum() or c in "_-./:+@" for c in text):
        return text
    return "'" + text.replace("'", "\\'") + "'"


# ----------------------------------------------------------------- load_run


@dataclass
class LoadedRun:
    """A run folder read back: its config, metrics, results, status and best model.

    ``model``: built from the config with the weights of ``states/best.pt``, in eval mode,
    on ``device`` (None with ``load_run(..., with_model=False)``). ``dataset``: the run's
    dataset, built on first use (it gives the splits the model was trained and tested on).
    """

    path: Path
    config: DictConfig
    metrics: pd.DataFrame
    results: dict[str, Any]
    status: str | None
    info: dict[str, Any]  # status.yaml
    model: nn.Module | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @cached_property
    def dataset(self) -> Any:
        from sweeptrainer.config.instantiate import instantiate

        return instantiate(self.config.dataset, "dataset")

    def outputs(self, split: str = "test") -> pd.DataFrame | None:
        """``outputs/<split>.csv``: one row per sample (target, prediction, loss, scores)."""
        from sweeptrainer.io.run_dir import RunDir

        return RunDir(self.path).read_output(split)


def load_run(run_dir: str | Path, device: str = "cpu", with_model: bool = True) -> LoadedRun:
    """Read a run folder: config, ``metrics.csv`` as a DataFrame, results, status, and the
    model with its best weights (``with_model=False``: all but the model, e.g. for a run
    that failed before saving a state).

    Raises ConfigError for a folder that is not a run, or (with the model) has no state.
    """
    import pandas as pd

    from sweeptrainer.inference import build_model, dataset_info, load_best, load_config
    from sweeptrainer.io.run_dir import RunDir

    path = Path(run_dir)
    config = load_config(path, "run_dir")
    model = None
    if with_model:
        state = load_best(path, config, "run_dir")
        model = build_model(config, dataset_info(config, state), state).to(device)
    run = RunDir(path)
    metrics = run.read_metrics()
    info = run.read_status() or {}
    return LoadedRun(
        path=path,
        config=config,
        metrics=metrics if metrics is not None else pd.DataFrame(),
        results=run.read_results() or {},
        status=info.get("state"),
        info=info,
        model=model,
    )
