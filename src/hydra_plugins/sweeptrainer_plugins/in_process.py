"""sweeptrainer's in-process launcher: the jobs of a command, one after another in this
process, each from the config the command planned (composed and checked once, before
anything trained).

It stands in for Hydra's basic launcher (the command swaps it in where a config names
that one) and launches the single run of ``trainer`` without ``-m`` too, so every command
goes through Hydra's sweeper and launcher interfaces. Hydra's job machinery (changing
folder, ``env_set``, Hydra callbacks, ``.hydra/`` files) is run, through Hydra's public
``run_job``, only for a config that asks for one of them: sweeptrainer writes its own run
folders, and skipping it keeps a job's start-up at what planning already paid.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, run_job
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, RunMode, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from sweeptrainer.config.compose import task_config


class InProcessLauncher(Launcher):
    """Runs each job in this process from its planned config."""

    def __init__(self, job_machinery: bool | None = None, **_: Any) -> None:
        """``job_machinery``: False never runs Hydra's ``run_job``; None runs it for a job
        whose Hydra node asks for it (:func:`job_machinery`)."""
        self.machinery = job_machinery
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None
        assert self.task_function is not None
        multirun = self.config.hydra.mode == RunMode.MULTIRUN
        folder = "hydra.sweep.dir" if multirun else "hydra.run.dir"
        subfolder = "hydra.sweep.subdir" if multirun else None
        if multirun:
            Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        returns = []
        for number, overrides in enumerate(job_overrides, start=initial_job_idx):
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            if multirun:  # a single run has no job number (as in Hydra's run mode)
                with open_dict(cfg):
                    cfg.hydra.job.id = cfg.hydra.job.num = number
            if self.machinery is not False and job_machinery(cfg.hydra):
                returns.append(
                    run_job(
                        hydra_context=self.hydra_context,
                        task_function=self.task_function,
                        config=cfg,
                        job_dir_key=folder,
                        job_subdir_key=subfolder,
                    )
                )
                continue
            returns.append(self._run(cfg, list(overrides), folder, subfolder))
        return returns

    def _run(
        self, cfg: DictConfig, overrides: list[str], folder: str, subfolder: str | None
    ) -> JobReturn:
        """The job as Hydra's ``run_job`` runs it, less what ``job_machinery`` covers:
        Hydra's node set (``${hydra:...}`` resolves), the task given the rest."""
        assert self.task_function is not None
        output = Path(str(OmegaConf.select(cfg, folder)))
        if subfolder is not None:
            output = output / str(OmegaConf.select(cfg, subfolder))
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(output.absolute())
        HydraConfig.instance().set_config(cfg)
        task = task_config(cfg)
        value = self.task_function(task)
        return JobReturn(
            overrides=overrides,
            cfg=task,
            hydra_cfg=cfg,
            status=JobStatus.COMPLETED,
            _return_value=value,
        )


def job_machinery(node: DictConfig) -> bool:
    """Whether a job's Hydra node asks for what only Hydra's ``run_job`` does: Hydra
    callbacks, environment variables, a change of folder, ``.hydra/`` config files."""
    return bool(node.callbacks or node.job.env_set or node.job.chdir or node.output_subdir)
