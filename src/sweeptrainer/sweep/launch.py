"""Launching a planned command: one route, through Hydra's sweeper and launcher plugins.

A sweep (``-m``) goes to the sweeper its config names (Hydra's basic sweeper, the search)
with the launcher its config names (joblib, SLURM, Ray ...); where that is Hydra's basic
launcher, sweeptrainer's in-process launcher runs the jobs instead, from the planned
configs. A single run goes to the in-process launcher directly (Hydra has no sweeper for
it). Every launcher gets its jobs' configs from :class:`PlannedConfigs`, Hydra's
``ConfigLoader`` interface over the command's plan: what was composed and checked before
is what runs, in this process or in a worker that unpickles it.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from hydra.core.config_loader import ConfigLoader
from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.config_source import ConfigSource
from hydra.types import HydraContext, RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from sweeptrainer.config.compose import compose
from sweeptrainer.study import is_search
from sweeptrainer.sweep.plan import CommandPlan, task_overrides


class PlannedConfigs(ConfigLoader):
    """Hydra's config loader for the launchers of one command: a job's config is the
    planned one (composed once, cached by the plan's composer), with the sweep folder the
    command pinned and the command's ``hydra.*`` overrides, as Hydra's own loader gives a
    job its ``hydra.overrides.hydra``. What only Hydra's own loader knows (its search path
    objects) is not offered: no sweeper or launcher of ours asks for it."""

    def __init__(self, plan: CommandPlan) -> None:
        self.composer = plan.composer
        self.hydra_overrides = list(plan.hydra_overrides)
        self.sweep_dir = str(plan.sweep_dir) if plan.sweep_dir is not None else None
        # a job's overrides as planned (the order typed, hydra.* ones among them), by the
        # task overrides a sweeper hands the launcher: the planned composition is reused
        self.planned = {tuple(task_overrides(o)): list(o) for o, _ in plan.runs}

    def load_configuration(
        self,
        config_name: str | None,
        overrides: list[str],
        run_mode: RunMode,
        from_shell: bool = True,
        validate_sweep_overrides: bool = True,
    ) -> DictConfig:
        cfg = compose(self.composer.sources, overrides)
        with open_dict(cfg):
            cfg.hydra.mode = run_mode
        return cfg

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> Any:
        planned = self.planned.get(tuple(sweep_overrides))
        cfg = self.composer(planned or [*self.hydra_overrides, *sweep_overrides])
        with open_dict(cfg):
            cfg.hydra.mode = master_config.hydra.mode
            if self.sweep_dir is not None:
                cfg.hydra.sweep.dir = self.sweep_dir
            if is_search(master_config.hydra.sweeper):  # the study the search resolved
                cfg.hydra.sweeper = master_config.hydra.sweeper
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)  # ${now:} as the sweep's
        return cfg

    def get_search_path(self) -> ConfigSearchPath:
        raise NotImplementedError("the planned configs have no search path object")

    def get_sources(self) -> list[ConfigSource]:
        raise NotImplementedError("the planned configs have no config sources")

    def list_groups(self, parent_name: str) -> list[str]:
        return self._names(parent_name, lambda p: p.is_dir(), lambda p: p.name)

    def get_group_options(
        self,
        group_name: str,
        results_filter: Any = None,
        config_name: str | None = None,
        overrides: list[str] | None = None,
    ) -> list[str]:
        return self._names(group_name, lambda p: p.suffix == ".yaml", lambda p: p.stem)

    def _names(
        self, folder: str, wanted: Callable[[Path], bool], name: Callable[[Path], str]
    ) -> list[str]:
        """The names of what ``folder`` holds in the user's folder and the library."""
        sources = self.composer.sources
        roots = [r / folder for r in (sources.user_dir, sources.packaged) if r is not None]
        return sorted({name(p) for r in roots if r.is_dir() for p in r.iterdir() if wanted(p)})

    def compute_defaults_list(
        self, config_name: str | None, overrides: list[str], run_mode: RunMode
    ) -> Any:
        raise NotImplementedError("the planned configs have no defaults list object")


class JobCallbacks:
    """Hydra's callbacks (``hydra.callbacks``) of a command, as Hydra's own dispatcher calls
    them: each entry instantiated once, its ``on_*`` method called where it has one."""

    def __init__(self, node: DictConfig | None) -> None:
        from hydra.utils import instantiate

        entries = node.hydra.callbacks if node is not None and "hydra" in node else None
        self.callbacks = [instantiate(c) for c in (entries or {}).values()]

    def _call(self, name: str, reverse: bool = False, **kwargs: Any) -> None:
        """A callback that raises is a warning and the others still run, as in Hydra."""
        for callback in reversed(self.callbacks) if reverse else self.callbacks:
            method = getattr(callback, name, None)
            if method is None:
                continue
            try:
                method(**kwargs)
            except Exception as err:
                warnings.warn(
                    f"Hydra callback {type(callback).__name__}.{name} failed: "
                    f"{type(err).__name__}: {err}",
                    stacklevel=2,
                )

    def on_run_start(self, **kwargs: Any) -> None:
        self._call("on_run_start", **kwargs)

    def on_run_end(self, **kwargs: Any) -> None:
        self._call("on_run_end", reverse=True, **kwargs)

    def on_multirun_start(self, **kwargs: Any) -> None:
        self._call("on_multirun_start", **kwargs)

    def on_multirun_end(self, **kwargs: Any) -> None:
        self._call("on_multirun_end", reverse=True, **kwargs)

    def on_job_start(self, **kwargs: Any) -> None:
        self._call("on_job_start", **kwargs)

    def on_job_end(self, **kwargs: Any) -> None:
        self._call("on_job_end", reverse=True, **kwargs)

    def on_compose_config(self, **kwargs: Any) -> None:
        self._call("on_compose_config", **kwargs)


IN_PROCESS = "hydra_plugins.sweeptrainer_plugins.in_process.InProcessLauncher"


def register_plugins() -> None:
    """Make sweeptrainer's launchers and search sweeper known to Hydra: it looks for plugins in the
    ``hydra_plugins`` namespace, and does not find one that an editable install maps
    there."""
    from hydra.core.plugins import Plugins

    from hydra_plugins.sweeptrainer_plugins import in_process, launchers, search

    Plugins.instance().register(in_process.InProcessLauncher)
    Plugins.instance().register(search.SearchSweeper)
    if launchers.SubmititSlurmLauncher is not None:
        Plugins.instance().register(launchers.SlurmLauncher)


def launch(plan: CommandPlan, task: Any) -> int:
    """Run the command's jobs; 1 when a launcher failed (its jobs' outcomes are then read
    from their run folders), else 0: the runs' own outcomes make the exit code."""
    from sweeptrainer.errors import Interrupted

    shown = os.environ.get("HYDRA_FULL_ERROR") == "1"
    try:
        if plan.base is None:
            _launch_one(plan, task)
        else:
            _sweep(plan, task)
    except Interrupted:
        return 0  # a search that stopped (see lifecycle._end_search): the stop's code comes after
    except Exception as err:
        if shown or not type(err).__module__.startswith(("submitit", "ray")):
            traceback.print_exc()  # not a launcher's report of a lost job: a bug to see
        first = (str(err).strip().splitlines() or [""])[0]
        print(f"trainer: the launcher failed: {type(err).__name__}: {first}; the runs' own "
              "states follow", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _context(plan: CommandPlan, node: DictConfig) -> HydraContext:
    # Hydra types its callbacks as its private dispatcher class; ours has its methods
    return HydraContext(config_loader=PlannedConfigs(plan), callbacks=cast(Any, JobCallbacks(node)))


def _launch_one(plan: CommandPlan, task: Any) -> None:
    """The single run of ``trainer OVERRIDES``: Hydra's run mode, in this process."""
    from hydra_plugins.sweeptrainer_plugins.in_process import InProcessLauncher

    overrides = task_overrides(plan.runs[0][0])
    cfg = plan.composer(plan.runs[0][0])  # as planned: Hydra's node included
    context = _context(plan, cfg)
    name = plan.sources.config_name
    context.callbacks.on_run_start(config=cfg, config_name=name)
    # Hydra's job machinery (.hydra/ files, its logging, a change of folder) only when the
    # command asks for some of it: a project's config.yaml without our hydra: block would
    # otherwise get Hydra's defaults (outputs/DATE/TIME/.hydra, log lines twice)
    launcher = InProcessLauncher(job_machinery=None if plan.hydra_overrides else False)
    launcher.setup(hydra_context=context, task_function=task, config=cfg)
    launcher.launch([overrides], initial_job_idx=0)
    context.callbacks.on_run_end(config=cfg, config_name=name)


def _sweep(plan: CommandPlan, task: Any) -> None:
    """A ``-m`` command: the sweeper and launcher its config names (Hydra's basic launcher
    replaced by the in-process one, which runs the same jobs from the planned configs)."""
    from hydra.core.plugins import Plugins

    assert plan.base is not None
    register_plugins()
    base = plan.base
    with open_dict(base):
        base.hydra.mode = RunMode.MULTIRUN
        if plan.sweep_dir is not None:
            base.hydra.sweep.dir = str(plan.sweep_dir)
        if "BasicLauncher" in str(OmegaConf.select(base, "hydra.launcher._target_")):
            base.hydra.launcher = OmegaConf.create({"_target_": IN_PROCESS})
    context, name = _context(plan, base), plan.sources.config_name
    context.callbacks.on_multirun_start(config=base, config_name=name)
    sweeper = Plugins.instance().instantiate_sweeper(
        config=base, hydra_context=context, task_function=task
    )
    sweeper.sweep(arguments=task_overrides(plan.hargs.overrides))
    context.callbacks.on_multirun_end(config=base, config_name=name)
