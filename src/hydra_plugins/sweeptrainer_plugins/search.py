"""``hydra/sweeper=search``: sweeptrainer's search sweeper, on Optuna (``optuna>=4``).

A Hydra ``Sweeper``: it asks the study for trials, hands them to whichever launcher the
config names (in-process, joblib, SLURM, Ray) in batches, and leaves the rest to
:mod:`sweeptrainer.sweep.search`. Its keys are in ``conf/hydra/sweeper/search.yaml``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class SearchSweeper(Sweeper):
    """Search with an Optuna sampler, prune with an Optuna pruner, one journal for all."""

    def __init__(self, **keys: Any) -> None:
        self.keys = keys  # checked with the composed config, in sweep()
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def sweep(self, arguments: list[str]) -> Any:
        from hydra.core.plugins import Plugins

        from sweeptrainer.sweep.search import batch_size, resolve_into, search, settings_of, summary

        assert self.config is not None and self.hydra_context is not None
        assert self.task_function is not None
        settings = settings_of(self.config, arguments)
        resolve_into(self.config, settings)  # what every job needs to find the study
        launcher = Plugins.instance().instantiate_launcher(
            config=self.config, hydra_context=self.hydra_context, task_function=self.task_function
        )
        study = search(settings, launcher.launch, batch_size(settings, self.config), self._alive)
        print(summary(study, settings), flush=True)
        return study

    def _alive(self, overrides: Sequence[str]) -> bool:
        """Whether the run of these overrides trains right now in another process or on
        another node (its lock or its fresh lease)."""
        from sweeptrainer.config.compose import task_config
        from sweeptrainer.io.lease import activity
        from sweeptrainer.run.planner import locate_run

        assert self.config is not None and self.hydra_context is not None
        loader = self.hydra_context.config_loader
        cfg = task_config(loader.load_sweep_config(self.config, list(overrides)))
        return activity(locate_run(cfg, overrides).path).running
