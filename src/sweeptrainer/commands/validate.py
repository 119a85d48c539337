"""``trainer validate``: what the same training command would do, without training.

Every run is composed and checked as training would, so a bad sweep is found before it
takes a cluster's time; the plan column says which runs would be skipped or resumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sweeptrainer.commands import HYDRA_OPTIONS

VERB = "validate"
USAGE = ("trainer validate [-m] [OVERRIDES]  check every run, print the plan; trains nothing",)

HELP = f"""\
usage: trainer validate [-h] [-m] [--config-dir DIR] [--config-name NAME] [OVERRIDES ...]

Compose every run the same command would train (trainer [-m] OVERRIDES), check each
config (keys, types, ranges, that every _target_ imports and its arguments fit), read the
index tables of the packaged file and table datasets (columns, targets, listed files), and print
a table: run name and plan (new, skip (finished), resume (interrupted|killed),
retry (attempt N), continue from RUN). Trains nothing, writes nothing.
Exit code 2 when any config is invalid (its row says why).

{HYDRA_OPTIONS}
examples:
  trainer validate                                         the default run
  trainer validate model=CNN learning_rate=0.01            one run with two overrides
  trainer validate -m learning_rate=0.01,0.001 seed=1,2    the four runs of a sweep
  trainer validate -m                                      the sweep the config declares
  trainer validate --config-dir myconf model=Wide         with your options in ./myconf
"""


def run(args: Sequence[str]) -> int:
    """Compose and check every run of the command, print what running it would do."""
    if args[:1] in (["-h"], ["--help"]):
        print(HELP, end="")
        return 0
    from sweeptrainer.config.compose import ConfigSources, RunComposer, sweep_overrides
    from sweeptrainer.config.schema import Validator
    from sweeptrainer.errors import ConfigError
    from sweeptrainer.run.planner import plan_run
    from sweeptrainer.sweep.args import HydraArgs
    from sweeptrainer.sweep.plan import each_run
    from sweeptrainer.usercode import import_from_cwd

    import_from_cwd()
    hargs = HydraArgs.parse(args)
    rows, bad = [], 0
    with ConfigSources.find(hargs.config_dir, hargs.config_name, Path.cwd()) as sources:
        runs = sweep_overrides(sources, hargs.overrides, hargs.multirun)
        opened: dict[str, ConfigError | None] = {}  # each distinct dataset, opened once
        for overrides, cfg in each_run(RunComposer(sources), runs, Validator()):
            try:
                if isinstance(cfg, ConfigError):
                    raise cfg
                open_tables(cfg, opened)
                plan = plan_run(cfg, overrides)
                rows.append((plan.run_dir.name, plan.describe()))
            except ConfigError as err:
                bad += 1
                problem = " ".join(str(err).split())  # one line per run in the table
                rows.append((" ".join(overrides) or "(defaults)", f"INVALID: {problem}"))
        runs_seen = len(rows)
        if hargs.multirun:
            search, problem = _search(sources, hargs.overrides)
            bad += bool(problem)
            rows += [("(search)", problem or search)] if search or problem else []
    width = max(len(name) for name, _ in rows)
    print(f"{'run':{width}}  plan")
    for name, what in rows:
        print(f"{name:{width}}  {what}")
    print(f"{runs_seen} run(s), {bad} invalid")
    return 2 if bad else 0


TABLE_DATASETS = (
    "sweeptrainer.components.datasets.Files",
    "sweeptrainer.data.files.Files",
    "sweeptrainer.components.datasets.Table",
)


def open_tables(cfg: Any, opened: dict[str, Any]) -> None:
    """Read the index tables of a run's dataset, as training would (columns, targets, every
    listed file there and, with ``check_files``, its header), so a missing column or file is
    INVALID here; ConfigError naming it. The packaged table datasets only (a dataset class
    of yours is not built: it could do anything), without building a preprocessing cache
    (``trainer validate`` writes nothing). ``opened``: what each distinct dataset gave."""
    from omegaconf import DictConfig, OmegaConf

    from sweeptrainer.config.instantiate import instantiate
    from sweeptrainer.errors import ConfigError

    node = cfg.dataset
    if str(node.get("_target_")) not in TABLE_DATASETS:
        return
    key = OmegaConf.to_yaml(node, resolve=True)
    if key not in opened:
        reading = OmegaConf.create(OmegaConf.to_container(node, resolve=True))
        assert isinstance(reading, DictConfig)  # a mapping's copy
        if "preprocess" in reading:
            reading.preprocess = []  # the cache is built by training (or trainer preprocess)
        try:
            instantiate(reading, "dataset", None)
            opened[key] = None
        except ConfigError as err:
            opened[key] = err
    if opened[key] is not None:
        raise opened[key]


def _search(sources: object, overrides: Sequence[str]) -> tuple[str, str]:
    """A search's study as the command would open it (``hydra/sweeper=search``), or what is
    wrong with its settings; ("", "") for another sweeper."""
    from sweeptrainer.config.compose import base_config
    from sweeptrainer.errors import ConfigError
    from sweeptrainer.study import is_search
    from sweeptrainer.sweep.plan import task_overrides
    from sweeptrainer.sweep.search import settings_of

    try:
        base = base_config(sources, overrides)  # type: ignore[arg-type]
        if not is_search(base.hydra.sweeper):
            return "", ""
        s = settings_of(base, task_overrides(overrides))
    except ConfigError as err:
        return "", "INVALID: " + " ".join(str(err).split())
    return (
        f"study {s.study_name}: {s.n_trials} trials, sampler {s.sampler}, pruner {s.pruner}, "
        f"{s.direction} dev {s.metric}; journal {s.storage}"
    ), ""
