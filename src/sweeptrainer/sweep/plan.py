"""Planning a command: every run it will launch, composed and checked once, before anything
trains.

Every run of ``trainer [-m] OVERRIDES`` is composed (Hydra's public ``compose`` and
override parser, through :class:`~sweeptrainer.config.compose.RunComposer`) and checked
here, so bad input exits with code 2 and one readable message and no run starts. The
configs planned here are the ones the launchers run (see :mod:`sweeptrainer.sweep.launch`):
nothing is composed a second time. ``trainer validate`` is this step alone.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sweeptrainer.config.compose import ConfigSources, RunComposer, base_config, sweep_overrides
from sweeptrainer.errors import ConfigError
from sweeptrainer.study import is_search
from sweeptrainer.sweep.args import HydraArgs

EXTRAS = {"joblib": "joblib", "submitit": "submitit", "ray": "ray", "optuna": "search",
          "hydra_plugins.sweeptrainer_plugins.launchers": "submitit",
          "hydra_plugins.sweeptrainer_plugins.search": "search"}  # fmt: skip
# what a plugin of ours builds on (its module is always there, importable without it)
NEEDS = {"hydra_plugins.sweeptrainer_plugins.search": "optuna"}


@dataclass
class CommandPlan:
    """The runs of one command, each (overrides, config without Hydra's node), in launch
    order; ``base``: a sweep's config before its sweep is expanded (Hydra's ``hydra.sweep``
    comes from it; None without ``-m``); ``sweep_dir`` once :meth:`place` has chosen it."""

    hargs: HydraArgs
    sources: ConfigSources
    composer: RunComposer
    runs: list[tuple[list[str], DictConfig]]
    base: DictConfig | None = None
    sweep_dir: Path | None = None
    hydra_overrides: list[str] = field(default_factory=list)

    @property
    def search(self) -> bool:
        """Whether the command is a search (``hydra/sweeper=search``)."""
        return self.base is not None and is_search(self.base.hydra.sweeper)

    def place(self) -> None:
        """Move a sweep's frozen config sources (``ConfigSources.freeze``) from their temp
        folder to ``<sweep folder>/conf``, and pin the sweep folder in ``base``.

        The sweep folder is known only once the config is composed (its path holds
        ``results_dir``, ``experiment_id`` and the time), and the copy goes there only once
        every run is valid (bad input leaves the results folder as it was). Launcher
        workers, on other machines too (SLURM), compose from it, and it stays as the
        record of what the sweep was composed from. Absolute: a job on a Ray or SLURM node
        may start in another folder.
        """
        if self.base is None:
            return
        try:
            sweep_dir = Path(str(self.base.hydra.sweep.dir)).absolute()
        except Exception:  # an interpolation only a Hydra job resolves: keep the temp copy
            return
        if self.sources.live_dir is not None:  # else nothing was frozen
            self.sources.freeze(claim_folder(sweep_dir, "conf"))
        self.sweep_dir = sweep_dir


def plan_command(
    sources: ConfigSources, hargs: HydraArgs, check: Callable[[DictConfig], None]
) -> CommandPlan:
    """Compose and check every run of the command; raise ConfigError on the first bad one.

    ``check`` validates one config (a :class:`~sweeptrainer.config.schema.Validator`:
    each distinct group option is checked once).
    """

    sources.freeze()  # a copy, at once: every run of the command composes from it
    base = base_config(sources, hargs.overrides) if hargs.multirun else None
    runs = sweep_overrides(sources, hargs.overrides, hargs.multirun, base)
    composer = RunComposer(sources)
    planned = []
    for overrides, cfg in each_run(composer, runs, check):
        if isinstance(cfg, ConfigError):
            where = f"in the run with {' '.join(overrides)}: " if len(runs) > 1 else ""
            raise ConfigError(f"{where}{cfg}") from None
        planned.append((overrides, cfg))
    check_plugins(composer)
    task, hydra = split_overrides(hargs.overrides)
    if base is not None and is_search(base.hydra.sweeper):  # its keys and space, now
        from sweeptrainer.sweep.search import settings_of

        settings_of(base, task)
    return CommandPlan(hargs, sources, composer, planned, base, hydra_overrides=hydra)


def split_overrides(overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the task's overrides, the ``hydra.*`` ones), each in the order typed."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return (
        [str(o.input_line) for o in parsed if not o.is_hydra_override()],
        [str(o.input_line) for o in parsed if o.is_hydra_override()],
    )


def task_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides Hydra hands the sweeper: all but ``hydra.*`` (the jobs get those from
    the loader, as Hydra's own loader adds them)."""
    return split_overrides(overrides)[0]


def each_run(
    composer: RunComposer, runs: Sequence[list[str]], check: Callable[[DictConfig], None]
) -> Iterator[tuple[list[str], DictConfig | ConfigError]]:
    """(overrides, config without Hydra's node) of each run, composed and checked, and its
    results folder checked once per distinct folder; the config is the ConfigError when
    the run is bad (the training command stops at the first, ``trainer validate`` lists
    them all)."""
    from sweeptrainer.io.run_dir import check_results_dir

    folders: set[tuple[str, str]] = set()
    for overrides in runs:
        try:
            cfg = composer.task(overrides)
            check(cfg)
            if (cfg.results_dir, cfg.experiment_id) not in folders:
                check_results_dir(cfg.results_dir, cfg.experiment_id)
                folders.add((cfg.results_dir, cfg.experiment_id))
        except ConfigError as err:
            yield overrides, err
            continue
        yield overrides, cfg


def check_plugins(composer: RunComposer) -> None:
    """The launcher and sweeper the command names are installed, or a ConfigError saying
    which extra brings them (Hydra would fail at launch: "Unknown plugin class")."""
    for cfg in composer.compositions():
        for group in ("launcher", "sweeper"):
            target = str(OmegaConf.select(cfg, f"hydra.{group}._target_") or "")
            module = target.rpartition(".")[0]
            try:
                found = not module or importlib.util.find_spec(module) is not None
                if found and module in NEEDS:
                    found = importlib.util.find_spec(NEEDS[module]) is not None
                elif found and module.startswith("hydra_plugins.sweeptrainer_plugins"):  # ours:
                    # always there, a class only with the launcher it builds on installed
                    found = hasattr(importlib.import_module(module), target.rpartition(".")[2])
            except ImportError:
                found = False
            if not found:
                extra = next((e for k, e in EXTRAS.items() if k in module), None)
                how = f"pip install 'sweeptrainer[{extra}]'" if extra else f"install {module}"
                raise ConfigError(
                    f"hydra/{group}: {target} is not installed in this environment; {how}"
                )


def record_sweep(plan: CommandPlan) -> None:
    """Write the sweep's ``runs.yaml`` (see ``io/sweep_record.py``): its swept keys and, for
    the basic sweeper, which runs it will train in which order (a search sweeper picks its
    runs as it goes: none are listed). Nothing when the command is not a sweep."""
    from sweeptrainer.config.compose import basic_sweeper
    from sweeptrainer.io import sweep_record
    from sweeptrainer.run.planner import locate_run

    if plan.sweep_dir is None or plan.base is None:
        return
    declared = OmegaConf.select(plan.base, "hydra.sweeper.params")
    swept = sweep_record.swept_keys(plan.hargs.overrides, dict(declared) if declared else None)
    runs = []
    if all(basic_sweeper(c.hydra) for c in plan.composer.compositions()):
        runs = [(locate_run(cfg, overrides).name, overrides) for overrides, cfg in plan.runs]
    plan.sweep_dir.mkdir(parents=True, exist_ok=True)
    sweep_record.write(plan.sweep_dir, [k.lstrip("+~") for k in swept], runs)


def claim_folder(parent: Path, name: str) -> Path:
    """A new folder ``parent/name`` (``name-2``, ... when taken: two sweeps in one second)."""
    parent.mkdir(parents=True, exist_ok=True)
    for number in range(1, 1000):
        folder = parent / (name if number == 1 else f"{name}-{number}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"{parent}: no free folder name {name}-N")
