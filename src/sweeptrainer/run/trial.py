"""A run as a trial of a search (``hydra/sweeper=search``): what it reports to its study and
what it tells the study at the end.

The sweeper gives each job its trial's number as Hydra's job number and writes the
study's name and journal path into the job's ``hydra.sweeper`` (see
:mod:`sweeptrainer.sweep.search`); the job opens the journal by path, so a run reports to
its trial from any process or node: the in-process launcher, a joblib worker, a SLURM job,
a Ray task. At each evaluation the run reports its dev tracking metric, at the iteration
as step, and asks the study's pruner whether to stop; when it ends, it tells the study how
(complete, pruned, failed). An interrupted run tells nothing: its trial stays running, and
the same command resumes it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from sweeptrainer.run.outcome import BY_ANOTHER, RunOutcome
from sweeptrainer.study import RUN_ATTR, journal, open_study

if TYPE_CHECKING:
    import optuna

log = logging.getLogger("sweeptrainer")


@dataclass
class Trial:
    """One trial of a study, as its run's job holds it."""

    study: optuna.Study
    storage: optuna.storages.BaseStorage
    trial_id: int
    number: int
    n_trials: int
    metric: str

    @classmethod
    def of_job(cls, hydra_cfg: DictConfig, metric: str, iterations: int) -> Trial:
        """The trial a search's job is (its job number), in the study its sweeper opened;
        ``iterations``: the run's, which a named pruner's first decision depends on."""
        node = hydra_cfg.sweeper
        pruner = node.get("pruner", "none")
        if OmegaConf.is_config(pruner):
            pruner = OmegaConf.to_container(pruner)
        storage = journal(Path(str(node.storage)))
        study = open_study(storage, str(node.study_name), pruner=pruner, iterations=iterations)
        number = int(hydra_cfg.job.num)
        study_id = storage.get_study_id_from_name(study.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        return cls(study, storage, trial_id, number, int(node.n_trials), metric)

    @property
    def place(self) -> str:
        """``[trial 3/10] ``: what the run's lines start with."""
        return f"[trial {self.number + 1}/{self.n_trials}] "

    def _reported(self) -> dict[int, float]:
        return self.storage.get_trial(self.trial_id).intermediate_values

    def report(self, iteration: int, value: float) -> bool:
        """Report the dev tracking metric at ``iteration``; whether the pruner stops the run.
        A step reported before (a resumed run evaluates again) is not reported twice."""
        import optuna

        if not math.isfinite(value):
            return False  # nothing to report (a pruner cannot rank it); the run goes on
        trial = optuna.Trial(self.study, self.trial_id)
        if iteration not in self._reported():
            trial.report(value, iteration)
        return trial.should_prune()

    def tell(self, outcome: RunOutcome, value: float | None) -> None:
        """Tell the study how the run ended: complete (with ``value``, the best dev tracking
        metric), pruned, failed; nothing when it was interrupted (the trial stays running:
        the same command resumes it) or another process trains it."""
        from optuna.trial import TrialState

        if outcome.state in ("interrupted", "running") or outcome.error == BY_ANOTHER:
            return
        if outcome.state in ("finished", "skipped", "pruned"):
            self._report_history(outcome)
        if outcome.state in ("finished", "skipped") and value is not None:
            state, values = TrialState.COMPLETE, value
        elif outcome.state == "pruned":
            state, values = TrialState.PRUNED, None
        else:  # failed, invalid, damaged, or finished without a value
            state, values = TrialState.FAIL, None
        if outcome.path is not None:
            import optuna

            optuna.Trial(self.study, self.trial_id).set_user_attr(RUN_ATTR, outcome.name)
        self.study.tell(self.number, values, state=state, skip_if_finished=True)

    def _report_history(self, outcome: RunOutcome) -> None:
        """A run that ended before this trial (a re-run that skips it) reports the dev
        metric of its evaluations from ``metrics.csv``, so pruners and plots see them."""
        if outcome.path is None or self._reported():
            return
        import optuna

        from sweeptrainer.io.run_dir import RunDir

        trial = optuna.Trial(self.study, self.trial_id)
        try:
            metrics: Any = RunDir(outcome.path).read_metrics()
        except Exception:  # a damaged file: the trial's value is what counts
            return
        column = f"dev_{self.metric}"
        if metrics is None or column not in metrics:
            return
        for iteration, value in zip(metrics["iteration"], metrics[column], strict=True):
            if math.isfinite(float(value)):
                trial.report(float(value), int(iteration))
