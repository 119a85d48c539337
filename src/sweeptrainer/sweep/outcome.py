"""What a command's runs came to: each run's outcome, the sweep's tally, the exit code.

A launcher's jobs may run in other processes or on other nodes and report nothing to the
command: a basic sweep's outcomes are read from the run folders (what this process saw
itself wins); a search's from the runs of its study's trials.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from sweeptrainer.config.compose import RunComposer, basic_sweeper
from sweeptrainer.run.outcome import BY_ANOTHER, RunOutcome, folder_outcome


def sweep_outcomes(
    multirun: bool,
    configs: list[tuple[list[str], DictConfig]],
    composer: RunComposer,
    outcomes: list[RunOutcome],
    started: str,
    command: str | None = None,
    search: bool = False,
) -> list[RunOutcome]:
    """A sweep's outcomes, from the run folders of its runs (``configs``: a basic sweep's
    planned runs, or the trials of a search's study): jobs of a parallel launcher report
    nothing to this process. What this process saw itself wins. Another search sweeper (a
    user's) picks its runs as it goes: its outcomes are the ones its jobs returned here."""
    if not (multirun and configs):
        return outcomes
    if not search and not all(basic_sweeper(c.hydra) for c in composer.compositions()):
        return outcomes
    seen = {o.name: o for o in outcomes}
    found = [folder_outcome(cfg, overrides, started, command) for overrides, cfg in configs]
    invalid = [o for o in outcomes if o.state == "invalid"]
    found = [_merged(seen.get(o.name), o) for o in found if o.state != "not started" or not invalid]
    return found + invalid


def _merged(seen: RunOutcome | None, found: RunOutcome) -> RunOutcome:
    """What this process saw of a run wins over its folder, but for a run it skipped that
    the folder says another command of the sweep finished meanwhile (not "finished
    before"), or that another node still trains."""
    if seen is None or (seen.state == "skipped" and found.state == "running"):
        return found
    if seen.state == "skipped" and found.error == BY_ANOTHER:
        seen.error = BY_ANOTHER
    return seen


def summarize(outcomes: list[RunOutcome], multirun: bool, seconds: float | None = None) -> int:
    """Print a sweep's tally and failed runs; 2 if any input was bad, 1 if any run failed."""
    from sweeptrainer.monitor import duration

    if multirun and outcomes:
        states = ("finished", "skipped", "failed", "pruned", "interrupted", "invalid",
                  "damaged", "not started", "running")  # fmt: skip
        counts = {s: sum(o.state == s for o in outcomes) for s in states}
        others = sum(o.state == "skipped" and o.error == BY_ANOTHER for o in outcomes)
        extra = ", ".join(f"{counts[s]} {s}" for s in states[3:] if counts[s])
        print(
            f"sweep: {len(outcomes)} runs: {counts['finished']} trained, "
            + (f"{others} {BY_ANOTHER}, " if others else "")
            + f"{counts['skipped'] - others} skipped (finished before), {counts['failed']} failed"
            + (f", {extra}" if extra else "")
            + (f"; took {duration(seconds)}" if seconds is not None else "")
        )
        for o in outcomes:
            if o.state == "failed":
                print(f"  failed: {o.name}: {o.error} (see {o.path}/train.log)")
            elif o.state in ("damaged", "running"):  # running: on another node (its lease)
                print(f"  {o.state}: {o.name}: {o.error}")
    return max((o.exit_code for o in outcomes), default=0)


def postprocess(configs: list[DictConfig]) -> None:
    """After a sweep: the tables, plots and report of each experiment it trained in."""
    from sweeptrainer.postprocess import run_postprocess

    experiments = {Path(c.results_dir) / c.experiment_id for c in configs if c.postprocess}
    for experiment in sorted(experiments):
        if experiment.is_dir():
            run_postprocess(experiment, ["seed"], plots=True)
