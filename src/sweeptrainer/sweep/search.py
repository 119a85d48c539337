"""The search (``hydra/sweeper=search``): ask the study for trials, launch them in batches
through the command's launcher, resume what a killed command left running, write
``best.yaml``.

Each trial is a run: its overrides are the command's fixed overrides plus the sampled
values, its Hydra job number is the trial's number, and its job reports to the study and
tells it how it ended (:mod:`sweeptrainer.run.trial`), from whichever process or node
the launcher runs it in. So the study in the journal file is the one record: the same
command again finds the trials done (not trained again), the trials a killed command
left running (launched again with the same overrides: their runs resume from
``last.pt``), and asks only for the rest, until the study holds ``n_trials`` trials.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf, open_dict

from sweeptrainer.study import (
    OVERRIDES_ATTR,
    SearchSettings,
    best_line,
    journal,
    open_study,
    progress,
    write_progress,
)

if TYPE_CHECKING:
    import optuna

Launch = Callable[[Sequence[Sequence[str]], int], Any]  # Hydra's Launcher.launch


def settings_of(config: DictConfig, overrides: Sequence[str]) -> SearchSettings:
    """The search's settings from a composed config (Hydra's node included) and the
    sweeper's arguments; a ConfigError for bad input."""
    from sweeptrainer.config.compose import task_config

    container = OmegaConf.to_container(config.hydra.sweeper, resolve=True)
    assert isinstance(container, dict)
    node = {str(k): v for k, v in container.items()}
    cwd = OmegaConf.select(config, "hydra.runtime.cwd")
    return SearchSettings.parse(node, overrides, task_config(config), cwd)


def resolve_into(config: DictConfig, settings: SearchSettings) -> None:
    """Write what a job needs to find its study into the config's ``hydra.sweeper``: the
    launchers hand this config to every job (see ``PlannedConfigs.load_sweep_config``)."""
    with open_dict(config):
        for key, value in settings.resolved().items():
            config.hydra.sweeper[key] = value


def batch_size(settings: SearchSettings, config: DictConfig) -> int:
    """Trials launched at once: ``n_jobs``, else the launcher's parallel jobs (joblib's
    ``n_jobs``, SLURM's ``array_parallelism``), else 1. A sampler learns from the trials
    done, so a batch should not be larger than the jobs that truly run side by side."""
    if settings.n_jobs is not None:
        return settings.n_jobs
    launcher = config.hydra.launcher
    for key in ("n_jobs", "array_parallelism"):
        value = OmegaConf.select(launcher, key)
        if isinstance(value, int) and value > 0:
            return value
    if OmegaConf.select(launcher, "n_jobs") == -1:  # joblib: every core
        import os

        return os.cpu_count() or 1
    return 1


def search(
    settings: SearchSettings, launch: Launch, parallel: int, alive: Callable[[list[str]], bool]
) -> optuna.Study:
    """Run the search to ``n_trials`` trials. ``alive(overrides)``: whether the run of a
    trial left running is trained right now by another process (else it is resumed)."""
    from optuna.trial import TrialState

    storage = journal(settings.storage, create=True)
    study = open_study(storage, settings.study_name, settings.direction, create=True)
    distributions = settings.distributions()
    left = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state == TrialState.RUNNING
        and OVERRIDES_ATTR in t.user_attrs
        and not alive(list(t.user_attrs[OVERRIDES_ATTR]))
    ]  # fmt: skip
    if left:
        print(f"search: {len(left)} trial(s) of {settings.study_name} left running by a stopped "
              "command: resumed")  # fmt: skip
    total = settings.n_trials
    while True:
        batch = [(t.number, list(t.user_attrs[OVERRIDES_ATTR])) for t in left[:parallel]]
        left = left[parallel:]
        count = len(study.get_trials(deepcopy=False, states=None))
        for _ in range(min(parallel - len(batch), total - count)):
            study.sampler = settings.make_sampler(count)
            trial = study.ask(distributions)
            overrides = settings.overrides(trial.params)
            trial.set_user_attr(OVERRIDES_ATTR, overrides)
            batch.append((trial.number, overrides))
            count += 1
        if not batch:
            break
        write_progress(settings.folder, progress(study, total, settings.metric))  # running
        for start, group in _consecutive(batch):
            launch([o for _, o in group], start)  # job number = trial number
        _report(study, settings, [n for n, _ in batch])
    return study


def _consecutive(
    batch: list[tuple[int, list[str]]],
) -> list[tuple[int, list[tuple[int, list[str]]]]]:
    """The batch in runs of consecutive trial numbers: a launcher numbers its jobs from a
    start, and a job's number is its trial's (resumed trials may leave gaps)."""
    groups: list[tuple[int, list[tuple[int, list[str]]]]] = []
    for number, overrides in sorted(batch):
        if groups and groups[-1][0] + len(groups[-1][1]) == number:
            groups[-1][1].append((number, overrides))
        else:
            groups.append((number, [(number, overrides)]))
    return groups


def _report(study: optuna.Study, settings: SearchSettings, numbers: list[int]) -> None:
    """A line for each trial of the batch (how it ended), then ``best.yaml``."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    for number in numbers:
        trial = trials.get(number)
        if trial is None:
            continue
        shown = " ".join(trial.user_attrs.get(OVERRIDES_ATTR, [])[len(settings.fixed) :])
        state = trial.state.name.lower()
        if trial.state.name == "COMPLETE":
            state += f": dev {settings.metric} {float(trial.value):.4g}"  # type: ignore[arg-type]
        elif trial.state.name == "PRUNED" and trial.intermediate_values:
            step = max(trial.intermediate_values)
            value = trial.intermediate_values[step]
            state += f" at iteration {step}: dev {settings.metric} {value:.4g}"
        elif trial.state.name == "RUNNING":
            state = "not ended (run the command again to resume it)"
        print(f"[trial {number + 1}/{settings.n_trials}] {state} ({shown})", flush=True)
    write_progress(settings.folder, progress(study, settings.n_trials, settings.metric))


def summary(study: optuna.Study, settings: SearchSettings) -> str:
    """The study's tally and best trial, the command's last lines."""
    data = progress(study, settings.n_trials, settings.metric)
    counts = ", ".join(f"{n} {s}" for s, n in data["trials"].items())
    lines = [f"search: study {settings.study_name}: {counts} (of {settings.n_trials})"]
    lines.append(f"{best_line(data)} -> {settings.folder / 'best.yaml'}")
    best = data.get("best")
    if best and best.get("overrides"):
        lines.append("  overrides: " + " ".join(best["overrides"]))
    return "\n".join(lines)


def trial_runs(
    base: DictConfig, arguments: Sequence[str], compose: Any
) -> list[tuple[list[str], DictConfig]]:
    """(overrides, config) of every trial of the command's study, by trial number, for the
    command's tally (the jobs of a parallel launcher report nothing to this process);
    ``compose``: the plan's composer. None before the study exists."""
    settings = settings_of(base, arguments)
    try:
        study = open_study(journal(settings.storage), settings.study_name)
    except Exception:  # no study yet (the search stopped before it made one)
        return []
    runs = []
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        overrides = trial.user_attrs.get(OVERRIDES_ATTR)
        if isinstance(overrides, list):
            runs.append((list(overrides), compose.task(list(overrides))))
    return runs
