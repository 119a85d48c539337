"""sweeptrainer's SLURM launcher (``hydra/launcher=slurm``): hydra-submitit-launcher's, but
it waits for every job of the sweep. Hydra accepts plugins only from its ``hydra_plugins``
namespace, and does not find one that an editable install maps there:
``sweeptrainer.sweep.launch.register_plugins`` makes it known before a launch.

Hydra's submitit launcher collects the jobs' results in order and stops at the first job
that produced none (killed by the OOM killer or a node failure, cancelled before its run
started): the command then ends while other jobs still train, and its tally, read from
the run folders, counts those wrongly. Here each job is waited for, a job without a result
becomes a failed return (the sweep's exit code says so), and the summary comes once every
job has ended.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

try:
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
        SlurmLauncher as SubmititSlurmLauncher,
    )
except ImportError:  # without the [submitit] extra there is nothing to launch with
    SubmititSlurmLauncher = None

log = logging.getLogger("sweeptrainer")


if SubmititSlurmLauncher is not None:

    class SlurmLauncher(SubmititSlurmLauncher):
        """One SLURM job per run, in a job array; every job waited for."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
            import submitit
            from hydra.core.singleton import Singleton

            assert self.config is not None
            params = dict(self.params)
            folder = params.pop("submitit_folder")
            retries = params.pop("max_num_timeout", 0)
            executor = submitit.AutoExecutor(
                folder=folder, cluster="slurm", slurm_max_num_timeout=retries
            )
            shared = {f.name for f in fields(BaseQueueConf)}  # the rest are slurm_* keys
            executor.update_parameters(
                **{k if k in shared else f"slurm_{k}": v for k, v in params.items()}
            )
            Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
            nums = list(range(initial_job_idx, initial_job_idx + len(job_overrides)))
            state = Singleton.get_state()
            jobs = executor.map_array(
                self,
                [list(o) for o in job_overrides],
                ["hydra.sweep.dir"] * len(nums),
                nums,
                [f"job_id_for_{n}" for n in nums],
                [state] * len(nums),
            )
            return [_result(job, o) for job, o in zip(jobs, job_overrides, strict=True)]

    def _result(job: Any, overrides: Sequence[str]) -> Any:
        """The job's return, or a failed one when it ended without a result."""
        from hydra.core.utils import JobReturn, JobStatus

        try:
            return job.results()[0]
        except Exception as err:  # submitit's UncompletedJobError, a failed job's error
            first = (str(err).strip().splitlines() or [""])[0]
            log.error(f"SLURM job {job.job_id} ended without a result: {first}")
            return JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=err)
