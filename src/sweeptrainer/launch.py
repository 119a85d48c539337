"""The training command, ``trainer [-m] [OVERRIDES]``: compose and check every run once,
launch them, tally what happened.

Every run of the command is composed and checked before anything trains, so input
errors exit with code 2 and one readable message, and no run starts. The configs
composed then are the ones trained: a single run and a sweep of Hydra's basic sweeper
and launcher run here, in this process, from them (Hydra would compose each run twice
more); other sweepers and launchers (Optuna, joblib, SLURM) get the command through
Hydra, with the config sources frozen and the sweep folder pinned.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeptrainer.usercode import import_from_cwd

# Hydra options that take a value, and those after which nothing is trained.
VALUE_FLAGS = {
    "--config-dir",
    "-cd",
    "--config-name",
    "-cn",
    "--config-path",
    "-cp",
    "--cfg",
    "-c",
    "--package",
    "-p",
    "--experimental-rerun",
}
INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
NO_TRAIN_FLAGS = {
    "--cfg",
    "-c",
    "--info",
    "-i",
    "--hydra-help",
    "--shell-completion",
    "-sc",
    "--experimental-rerun",
}


@dataclass
class HydraArgs:
    """The command line split into Hydra's flags and the config overrides."""

    overrides: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    config_dir: str | None = None
    config_name: str | None = None
    multirun: bool = False
    trains: bool = True

    @classmethod
    def parse(cls, args: Sequence[str]) -> HydraArgs:
        out = cls()
        tokens = list(args)
        while tokens:
            token = tokens.pop(0)
            name, eq, value = token.partition("=")
            if not token.startswith("-"):
                out.overrides.append(token)
                continue
            if name in VALUE_FLAGS and not eq:
                value = tokens.pop(0) if tokens else ""
            elif name in ("--info", "-i") and tokens and tokens[0] in INFO_CHOICES:
                value = tokens.pop(0)
            if name in ("--config-dir", "-cd"):
                out.config_dir = value
                continue
            if name in ("--config-name", "-cn"):
                out.config_name = value
                continue
            out.multirun |= name in ("-m", "--multirun")
            out.trains &= name not in NO_TRAIN_FLAGS
            out.flags += [name, value] if value and not eq else [token]
        return out


def error(message: str, code: int = 2) -> int:
    print(f"trainer: error: {message}", file=sys.stderr)
    return code


def compose_runs(
    sources, hargs: HydraArgs, check: Callable[[Any], None], base=None
) -> tuple[Any, list]:
    """Compose and check every run of the command; raise ConfigError on the first bad one.

    Returns the :class:`~sweeptrainer.config.compose.RunComposer` (which gives a run's
    whole config when it is launched) and (overrides, config without Hydra's node) for
    every run, in launch order. ``check`` validates one config (a
    :class:`~sweeptrainer.config.schema.Validator`: each distinct group option is checked
    once); ``base``: a sweep's :func:`base_config`.
    """
    from sweeptrainer.config.compose import RunComposer, sweep_overrides
    from sweeptrainer.errors import ConfigError

    runs = sweep_overrides(sources, hargs.overrides, hargs.multirun, base)
    composer = RunComposer(sources)
    configs = []
    for overrides, cfg in each_run(composer, runs, check):
        if isinstance(cfg, ConfigError):
            where = f"in the run with {' '.join(overrides)}: " if len(runs) > 1 else ""
            raise ConfigError(f"{where}{cfg}") from None
        configs.append((overrides, cfg))
    check_plugins(composer)
    return composer, configs


EXTRAS = {"joblib": "joblib", "submitit": "submitit", "ray": "ray", "optuna": "optuna",
          "hydra_plugins.sweeptrainer_plugins": "submitit"}  # fmt: skip


def check_plugins(composer) -> None:
    """The launcher and sweeper the command names are installed, or a ConfigError saying
    which extra brings them (Hydra would fail at launch: "Unknown plugin class")."""
    import importlib.util

    from omegaconf import OmegaConf

    from sweeptrainer.errors import ConfigError

    for cfg in composer.compositions():
        for group in ("launcher", "sweeper"):
            target = str(OmegaConf.select(cfg, f"hydra.{group}._target_") or "")
            module = target.rpartition(".")[0]
            try:
                found = not module or importlib.util.find_spec(module) is not None
                if found and module.startswith("hydra_plugins.sweeptrainer_plugins"):  # ours: always
                    # there, its class only with the launcher it builds on installed
                    found = hasattr(importlib.import_module(module), target.rpartition(".")[2])
            except ImportError:
                found = False
            if not found:
                extra = next((e for k, e in EXTRAS.items() if k in module), None)
                how = f"pip install 'sweeptrainer[{extra}]'" if extra else f"install {module}"
                raise ConfigError(
                    f"hydra/{group}: {target} is not installed in this environment; {how}"
                )


def each_run(
    composer, runs: Sequence[list[str]], check: Callable[[Any], None]
) -> Iterator[tuple[list[str], Any]]:
    """(overrides, config without Hydra's node) of each run, composed and checked, and its
    results folder checked once per distinct folder; the config is the ConfigError when
    the run is bad (the training command stops at the first, ``trainer validate`` lists
    them all)."""
    from sweeptrainer.errors import ConfigError
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


def train_command(args: Sequence[str], verbs: Sequence[str] = ()) -> int:
    """``trainer [-m] OVERRIDES``: compose, check, launch; the exit code from the outcomes.

    ``verbs``: the command's other verbs, for shell completion of the first word."""
    from sweeptrainer.config.compose import ConfigSources
    from sweeptrainer.errors import ConfigError
    from sweeptrainer.logs import configure_console

    configure_console()
    import_from_cwd()
    hargs = HydraArgs.parse(args)
    try:
        sources = ConfigSources.find(hargs.config_dir, hargs.config_name, Path.cwd())
    except ConfigError as err:
        return error(str(err))
    with sources:
        return _compose_and_launch(sources, hargs, shlex.join(["trainer", *args]), verbs)


def move_to_sweep(sources, base) -> tuple[Path | None, list[str]]:
    """Move a sweep's frozen config sources (see ``ConfigSources.freeze``) from their temp
    folder to ``<sweep folder>/conf``; return the sweep folder and the Hydra override
    that pins it.

    The sweep folder is known only once the config is composed (its path holds
    ``results_dir``, ``experiment_id`` and the time), and the copy goes there only once
    every run is valid (bad input leaves the results folder as it was). Launcher workers,
    on other machines too (SLURM), compose their job from it, and it stays as the record
    of what the sweep was composed from. Pinned, because Hydra would take the time again.
    """
    if base is None:  # not a sweep
        return None, []
    try:  # absolute: a job on a Ray or SLURM node may start in another folder
        sweep_dir = Path(str(base.hydra.sweep.dir)).absolute()
    except Exception:  # an interpolation only a Hydra job resolves: keep the temp copy
        return None, []
    if sources.live_dir is not None:  # else nothing was frozen
        sources.freeze(claim_folder(sweep_dir, "conf"))
    quoted = str(sweep_dir).replace("'", "\\'")
    return sweep_dir, [f"hydra.sweep.dir='{quoted}'"]


def record_sweep(sweep_dir: Path | None, hargs: HydraArgs, base, composer, configs: list) -> None:
    """Write the sweep's ``runs.yaml`` (see ``io/sweep_record.py``): its swept keys and, for
    the basic sweeper, which runs it will train in which order (a search sweeper picks its
    runs as it goes: none are listed). Nothing when the command is not a sweep."""
    from omegaconf import OmegaConf

    if sweep_dir is None:
        return

    from sweeptrainer.app import locate_run
    from sweeptrainer.config.compose import basic_sweeper
    from sweeptrainer.io import sweep_record

    declared = OmegaConf.select(base, "hydra.sweeper.params")
    swept = sweep_record.swept_keys(hargs.overrides, dict(declared) if declared else None)
    runs = []
    if all(basic_sweeper(c.hydra) for c in composer.compositions()):
        runs = [(locate_run(cfg, overrides).name, overrides) for overrides, cfg in configs]
    sweep_dir.mkdir(parents=True, exist_ok=True)
    sweep_record.write(sweep_dir, [k.lstrip("+~") for k in swept], runs)


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


def check_flags(hargs: HydraArgs) -> None:
    """Hydra's own flags that do not combine, said before Hydra says it with a traceback."""
    from sweeptrainer.errors import ConfigError

    shown = [f for f in hargs.flags if f in ("--cfg", "-c", "--info", "-i")]
    if hargs.multirun and shown:
        raise ConfigError(
            f"{shown[0]} shows one composed config and does not combine with -m; to see every "
            "run of a sweep use: trainer validate -m OVERRIDES (or drop -m: trainer "
            f"{shown[0]} job OVERRIDES)"
        )
    completion = any(f in ("--shell-completion", "-sc") for f in hargs.flags)
    actions = ("install=", "uninstall=", "query=")
    if completion and not any(o.startswith(actions) for o in hargs.overrides):
        raise ConfigError(
            "--shell-completion: expected one of install=SHELL, uninstall=SHELL or query=SHELL "
            '(SHELL: bash, zsh or fish), e.g. eval "$(trainer --shell-completion install=bash)"'
        )


def complete_verbs(verbs: Sequence[str]) -> bool:
    """Shell completion (``-sc query=...``) of the first word: the verbs, besides Hydra's own
    config completions; after a verb nothing (the shell completes file names). Returns True
    when the query is answered here."""
    words = os.environ.get("COMP_LINE", "").split()
    if os.environ.get("COMP_LINE", "").endswith(" "):
        words.append("")
    if len(words) >= 3 and words[1] in verbs:
        return True  # a verb's arguments are folders and files
    if len(words) == 2:  # the first word: a verb, or Hydra's overrides (printed after)
        print(" ".join(v for v in verbs if v.startswith(words[1])), end=" ")
    return False


def _compose_and_launch(sources, hargs: HydraArgs, command: str, verbs: Sequence[str]) -> int:
    from sweeptrainer.config.compose import base_config
    from sweeptrainer.config.schema import Validator
    from sweeptrainer.errors import ConfigError

    configs: list = []
    composer, sweep_dir, pinned, base = None, None, [], None
    check = Validator()
    try:
        check_flags(hargs)
        if any(o.startswith("query=") for o in hargs.overrides) and complete_verbs(verbs):
            return 0
        if hargs.trains:
            sources.freeze()  # a copy, at once: every run of the command composes from it
            base = base_config(sources, hargs.overrides) if hargs.multirun else None
            composer, configs = compose_runs(sources, hargs, check, base)
            sweep_dir, pinned = move_to_sweep(sources, base)
            record_sweep(sweep_dir, hargs, base, composer, configs)
    except ConfigError as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            traceback.print_exc()
        return error(str(err))

    from sweeptrainer.app import COMMAND_ENV, RunOutcome, make_task
    from sweeptrainer.snapshot import Provenance
    from sweeptrainer.training.signals import STOP_FILE, StopNow, StopSignals

    outcomes: list[RunOutcome] = []
    launched = 0  # the exit code of Hydra's launch, where it reported a failure itself
    started, clock = time.strftime("%Y-%m-%dT%H:%M:%S"), time.perf_counter()
    provenance = Provenance(command, sources=sources).prepare() if hargs.trains else None
    argv = [sys.argv[0], *hargs.flags, *hargs.overrides, *sources.hydra_overrides(), *pinned]
    saved, sys.argv = sys.argv, argv
    command = os.environ[COMMAND_ENV] = uuid.uuid4().hex[:12]  # for the jobs' status files
    try:
        stop_file = sweep_dir / STOP_FILE if sweep_dir is not None else None
        if stop_file is not None:  # an earlier command's stop of this sweep folder
            stop_file.unlink(missing_ok=True)
        with StopSignals(stop_file) as signals:
            task = make_task(outcomes, signals, provenance, check)
            if _one_plain_run(hargs, configs):
                _run_composed(task, composer(configs[0][0]))
            elif sweep_dir is not None and _in_process_sweep(hargs, composer):
                _sweep_here(task, configs, composer, sweep_dir, base, signals)
            else:
                launched = _launch(task, sources)
    except KeyboardInterrupt as err:
        why = "second Ctrl-C" if isinstance(err, StopNow) else "KeyboardInterrupt"
        print(f"trainer: stopped at once ({why}); run the command again to resume",
              file=sys.stderr)  # fmt: skip
        return 130
    finally:
        sys.argv = saved
        os.environ.pop(COMMAND_ENV, None)
        _end_distributed()
    outcomes = _sweep_outcomes(hargs, configs, composer, outcomes, started, command)
    code = max(summarize(outcomes, hargs.multirun, time.perf_counter() - clock), launched)
    if sweep_dir is not None:
        print_best_trial(sweep_dir)
    if signals.look() is not None:  # this process's, or one of the sweep's other processes'
        return 128 + signals.received
    if hargs.multirun and outcomes:
        _postprocess([cfg for _, cfg in configs])
    return code


def _postprocess(configs: list) -> None:
    """After a sweep: the tables, plots and report of each experiment it trained in."""
    from sweeptrainer.postprocess import run_postprocess

    experiments = {Path(c.results_dir) / c.experiment_id for c in configs if c.postprocess}
    for experiment in sorted(experiments):
        if experiment.is_dir():
            run_postprocess(experiment, ["seed"], plots=True)


def _launch(task, sources) -> int:
    """Hand the command to Hydra (its launcher and sweeper); its exit code. A launcher that
    fails (a SLURM job cancelled under it: submitit's UncompletedJobError) is one line
    here, not Hydra's traceback, and the sweep's summary still comes, from the run folders."""
    import hydra

    from hydra_plugins.sweeptrainer_plugins.launchers import register
    from sweeptrainer.errors import Interrupted

    register()  # hydra/launcher=slurm's launcher, which is ours
    shown = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing and exiting
    try:
        hydra.main(
            config_path=str(sources.primary), config_name=sources.config_name, version_base="1.3"
        )(task)()
    except Interrupted:
        return 0  # a search that stopped (see app._end_search): the stop's code comes after
    except Exception as err:
        if shown or not type(err).__module__.startswith(("submitit", "ray")):
            traceback.print_exc()  # not a launcher's report of a lost job: a bug to see
        first = (str(err).strip().splitlines() or [""])[0]
        print(f"trainer: the launcher failed: {type(err).__name__}: {first}; the runs' own "
              "states follow", file=sys.stderr)  # fmt: skip
        return 1
    finally:
        if not shown:
            os.environ.pop("HYDRA_FULL_ERROR", None)
    return 0


def print_best_trial(sweep_dir: Path) -> None:
    """A search sweeper's best trial (Optuna's ``optimization_results.yaml``), as the last
    line: the values it found and the objective it reached."""
    from sweeptrainer.io.atomic import read_yaml

    found = sweep_dir / "optimization_results.yaml"
    if found.is_symlink() or not found.is_file():
        return
    try:
        best = read_yaml(found)
        params = " ".join(f"{k}={v}" for k, v in dict(best["best_params"]).items())
        print(f"best trial: {params} (objective {float(best['best_value']):.4g}; {found})")
    except Exception as err:  # the study's own file: a problem there is not the sweep's
        print(f"best trial: unreadable {found} ({type(err).__name__})")


def _sweep_outcomes(
    hargs: HydraArgs, configs: list, composer, outcomes: list, started: str, command=None
) -> list:
    """A basic sweep's outcomes, from the run folders: jobs of a parallel launcher report
    nothing to this process (a search sweeper such as Optuna picks its runs as it goes:
    its outcomes are ours). What this process saw itself wins."""
    from sweeptrainer.app import folder_outcome
    from sweeptrainer.config.compose import basic_sweeper

    if not (hargs.multirun and configs):
        return outcomes
    if not all(basic_sweeper(c.hydra) for c in composer.compositions()):
        return outcomes
    seen = {o.name: o for o in outcomes}
    found = [folder_outcome(cfg, overrides, started, command) for overrides, cfg in configs]
    invalid = [o for o in outcomes if o.state == "invalid"]
    found = [_merged(seen.get(o.name), o) for o in found if o.state != "not started" or not invalid]
    return found + invalid


def _merged(seen, found):
    """What this process saw of a run wins over its folder, but for a run it skipped that
    the folder says another command of the sweep finished meanwhile (not "finished
    before")."""
    from sweeptrainer.app import BY_ANOTHER

    if seen is None:
        return found
    if seen.state == "skipped" and found.error == BY_ANOTHER:
        seen.error = BY_ANOTHER
    return seen


def _one_plain_run(hargs: HydraArgs, configs: list) -> bool:
    """One run without Hydra flags or ``hydra.*`` overrides: nothing Hydra's own launch would
    change, so the config composed and checked before is trained as it is (Hydra would
    compose it twice more: about 0.3 s a command)."""
    plain = not hargs.flags and not any(o.lstrip("+~").startswith("hydra") for o in hargs.overrides)
    return plain and not hargs.multirun and hargs.trains and len(configs) == 1


def _in_process_sweep(hargs: HydraArgs, composer) -> bool:
    """A sweep that Hydra's basic sweeper and basic launcher would run, one job after the
    other in this process, and nothing of Hydra's job machinery that sweeptrainer leaves
    out (callbacks, environment variables, changing folder, saving the job's config)."""
    from omegaconf import OmegaConf

    from sweeptrainer.config.compose import basic_sweeper

    if not (hargs.multirun and hargs.trains and composer is not None):
        return False
    if any(f not in ("-m", "--multirun") for f in hargs.flags):
        return False
    for cfg in composer.compositions():  # every run's hydra node is one of theirs
        node = cfg.hydra
        launcher = str(OmegaConf.select(node, "launcher._target_"))
        if not basic_sweeper(node) or "BasicLauncher" not in launcher:
            return False
        if node.callbacks or node.job.env_set or node.job.chdir or node.output_subdir:
            return False
    return True


def _sweep_here(task, configs: list, composer, sweep_dir: Path, base, signals) -> None:
    """Run a basic sweep's jobs in order, as Hydra's basic launcher would: the sweep folder
    with ``multirun.yaml``, each job numbered, ``${hydra:...}`` resolving in its config."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf, open_dict

    from sweeptrainer.config.compose import task_config

    sweep_dir.mkdir(parents=True, exist_ok=True)
    with open_dict(base):
        base.hydra.sweep.dir = str(sweep_dir)
    OmegaConf.save(base, sweep_dir / "multirun.yaml")  # the sweep's config, as Hydra saves it
    for num, (overrides, _) in enumerate(configs):
        if signals.received is not None:
            break  # stopping: leave the remaining runs of the sweep for the next command
        cfg = composer(overrides)  # the config checked before, Hydra's node included
        with open_dict(cfg):
            cfg.hydra.sweep.dir = str(sweep_dir)
            cfg.hydra.job.num = cfg.hydra.job.id = num
            cfg.hydra.mode = RunMode.MULTIRUN
            cfg.hydra.runtime.output_dir = str((sweep_dir / str(cfg.hydra.sweep.subdir)).absolute())
        HydraConfig.instance().set_config(cfg)
        task.run_job(task_config(cfg), cfg.hydra, multirun=True)


def _run_composed(task, cfg) -> None:
    """Run ``task`` on a composed config as Hydra's run mode would: Hydra's node of the
    config is set (``${hydra:...}`` resolves), the task gets the config without it."""
    from hydra.core.hydra_config import HydraConfig

    from sweeptrainer.config.compose import task_config

    HydraConfig.instance().set_config(cfg)
    task.run_job(task_config(cfg), cfg.hydra, multirun=False)


def _end_distributed() -> None:
    """Under torchrun: wait for every process, then leave the process group."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.barrier()  # without it one rank sometimes aborts at exit
        dist.destroy_process_group()


def summarize(outcomes: list, multirun: bool, seconds: float | None = None) -> int:
    """Print a sweep's tally and failed runs; 2 if any input was bad, 1 if any run failed."""
    from sweeptrainer.app import BY_ANOTHER
    from sweeptrainer.monitor import duration

    if multirun and outcomes:
        states = ("finished", "skipped", "failed", "interrupted", "invalid", "damaged",
                  "not started")  # fmt: skip
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
            elif o.state == "damaged":
                print(f"  damaged: {o.name}: {o.error}")
    return max((o.exit_code for o in outcomes), default=0)
