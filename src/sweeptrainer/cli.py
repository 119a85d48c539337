"""The ``trainer`` command: verbs and dispatch only.

``trainer [OVERRIDES]`` and ``trainer -m [OVERRIDES]`` go to Hydra; other verbs
(added by later issues) are subcommands. Before Hydra launches anything, every
run of the command is composed and checked, so input errors exit with code 2
and one readable message, and no run starts.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sweeptrainer import __version__

HELP = f"""\
usage: trainer [OVERRIDES ...]            train the composed config (one run)
       trainer -m [OVERRIDES ...]         a sweep: key=a,b runs every combination
       trainer validate [-m] [OVERRIDES]  check every run, print the plan; trains nothing
       trainer preprocess [-m] [OVERRIDES]  build the datasets' preprocessing caches
       trainer create [DIR] [--template NAME]   a ready-to-run project (--list: templates)
       trainer list GROUP / show GROUP NAME     the options of a config group / one's YAML
       trainer inference RUN_DIR INPUT OUTPUT   predict with a run's best state
       trainer postprocess EXPERIMENT_DIR tables, seed aggregates, plots, report.html
       trainer status EXPERIMENT_DIR      its runs and their progress (--watch)
       trainer cancel EXPERIMENT_DIR [RUN ...]  stop running runs gracefully (they resume)
       trainer rm-failed EXPERIMENT_DIR   delete failed runs (--yes, --dry-run)
       trainer rm-states EXPERIMENT_DIR   delete states except best.pt and last.pt
       trainer --help | --version

sweeptrainer {__version__}: a YAML sweep trainer for PyTorch.

The config is composed from the packaged library and ./conf (or --config-dir DIR):
groups dataset, model, optimizer, scheduler, criterion; main keys such as
iterations, training_type, learning_rate, batch_size, seed (see docs/configuration.md).

examples:
  trainer                                     Digits + FFNN + Adam, 20 epochs
  trainer model=CNN learning_rate=0.01
  trainer training_type=step iterations=300 eval_frequency=50
  trainer -m learning_rate=0.01,0.001 seed=1,2

Runs land in <results_dir>/<experiment_id>/training/<run_name>/. Running the same
command again finishes it: finished runs are skipped, interrupted or killed runs
resume from states/last.pt, failed runs are retried (max_retries), new runs train.
Ctrl-C / SIGTERM / SIGUSR1 save the state after the current step and stop.
Exit codes: 0 ok, 1 a run failed, 2 bad input, 128+N stopped by signal N.
Hydra's own options: trainer --hydra-help.
"""

VALIDATE_HELP = """\
usage: trainer validate [-m] [OVERRIDES ...]

Compose every run the same command would train, check each config (keys, types,
ranges, that every _target_ imports and its arguments fit), and print a table:
run name and plan (new, skip (finished), resume (interrupted|killed),
retry (attempt N), continue from RUN). Trains nothing, writes nothing.
Exit code 2 when any config is invalid.
"""

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


def import_from_cwd() -> None:
    """Like ``python -m``: modules in the current folder (a user's model, dataset,
    callbacks) are importable by every verb that builds or checks components."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def _error(message: str, code: int = 2) -> int:
    print(f"trainer: error: {message}", file=sys.stderr)
    return code


def preflight(sources, hargs: HydraArgs) -> list:
    """Compose and validate every run of the command; raise ConfigError on the first bad one.

    Returns (overrides, composed config) for every run.
    """
    from sweeptrainer.config.compose import compose, sweep_overrides
    from sweeptrainer.config.schema import validate
    from sweeptrainer.errors import ConfigError

    runs = sweep_overrides(sources, hargs.overrides, hargs.multirun)
    configs = []
    for overrides in runs:
        try:
            configs.append((overrides, compose(sources, overrides)))
            validate(configs[-1][1])
        except ConfigError as err:
            where = f"in the run with {' '.join(overrides)}: " if len(runs) > 1 else ""
            raise ConfigError(f"{where}{err}") from None
    return configs


def run_hydra(args: Sequence[str]) -> int:
    """Compose, check, then hand the command to Hydra; the exit code from the outcomes."""
    from sweeptrainer.config.compose import ConfigSources
    from sweeptrainer.errors import ConfigError
    from sweeptrainer.logs import configure_console

    configure_console()
    import_from_cwd()
    hargs = HydraArgs.parse(args)
    try:
        sources = ConfigSources.find(hargs.config_dir, hargs.config_name, Path.cwd())
    except ConfigError as err:
        return _error(str(err))
    with sources:
        return _compose_and_launch(sources, hargs, shlex.join(["trainer", *args]))


def move_to_sweep(sources, hargs: HydraArgs) -> list[str]:
    """Move a sweep's frozen config sources (see ``ConfigSources.freeze``) from their temp
    folder to ``<sweep folder>/conf``; return the Hydra override that pins that folder.

    The sweep folder is known only once the config is composed (its path holds
    ``results_dir``, ``experiment_id`` and the time), and the copy goes there only once
    every run is valid (bad input leaves the results folder as it was). Launcher workers,
    on other machines too (SLURM), compose their job from it, and it stays as the record
    of what the sweep was composed from. Pinned, because Hydra would take the time again.
    """
    from sweeptrainer.config.compose import base_config

    if sources.live_dir is None or not hargs.multirun:  # nothing frozen, or no sweep folder
        return []
    base = base_config(sources, hargs.overrides)
    try:
        sweep_dir = str(base.hydra.sweep.dir)
    except Exception:  # an interpolation only a Hydra job resolves: keep the temp copy
        return []
    sources.freeze(claim_folder(Path(sweep_dir), "conf"))
    quoted = sweep_dir.replace("'", "\\'")
    return [f"hydra.sweep.dir='{quoted}'"]


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


def complete_verbs() -> bool:
    """Shell completion (``-sc query=...``) of the first word: the verbs, besides Hydra's own
    config completions; after a verb nothing (the shell completes file names). Returns True
    when the query is answered here."""
    words = os.environ.get("COMP_LINE", "").split()
    if os.environ.get("COMP_LINE", "").endswith(" "):
        words.append("")
    if len(words) >= 3 and words[1] in VERBS:
        return True  # a verb's arguments are folders and files
    if len(words) == 2:  # the first word: a verb, or Hydra's overrides (printed after)
        print(" ".join(v for v in VERBS if v.startswith(words[1])), end=" ")
    return False


def _compose_and_launch(sources, hargs: HydraArgs, command: str) -> int:
    from sweeptrainer.errors import ConfigError

    configs, pinned = [], []
    try:
        check_flags(hargs)
        if any(o.startswith("query=") for o in hargs.overrides) and complete_verbs():
            return 0
        if hargs.trains:
            sources.freeze()  # a copy, at once: every run of the command composes from it
            configs = preflight(sources, hargs)
            pinned = move_to_sweep(sources, hargs)
    except ConfigError as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            traceback.print_exc()
        return _error(str(err))

    import hydra
    from omegaconf import OmegaConf

    from sweeptrainer.app import RunOutcome, make_task
    from sweeptrainer.snapshot import Provenance
    from sweeptrainer.training.signals import StopSignals

    outcomes: list[RunOutcome] = []
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    provenance = Provenance(command, sources=sources).prepare() if hargs.trains else None
    argv = [sys.argv[0], *hargs.flags, *hargs.overrides, *sources.hydra_overrides(), *pinned]
    saved, sys.argv = sys.argv, argv
    try:
        with StopSignals() as signals:
            task = make_task(outcomes, signals, provenance)
            if _one_plain_run(hargs, configs):
                _run_composed(task, configs[0][1])
            else:
                hydra.main(
                    config_path=str(sources.primary),
                    config_name=sources.config_name,
                    version_base="1.3",
                )(task)()
    except KeyboardInterrupt:
        print(
            "trainer: stopped at once (second Ctrl-C); run the command again to resume",
            file=sys.stderr,
        )
        return 130
    finally:
        sys.argv = saved
        _end_distributed()
    basic = all(
        "BasicSweeper" in str(OmegaConf.select(c, "hydra.sweeper._target_")) for _, c in configs
    )
    if hargs.multirun and configs and basic:
        # from the run folders: jobs of a parallel launcher report nothing to this process
        # (a search sweeper such as Optuna picks its runs as it goes: its outcomes are ours)
        from sweeptrainer.app import folder_outcome

        # what this process saw itself wins (the basic launcher runs jobs in-process)
        seen = {o.name: o for o in outcomes}
        found = [folder_outcome(cfg, overrides, started) for overrides, cfg in configs]
        invalid = [o for o in outcomes if o.state == "invalid"]
        found = [seen.get(o.name, o) for o in found if o.state != "not started" or not invalid]
        outcomes = found + invalid
    code = summarize(outcomes, hargs.multirun)
    if signals.received is not None:
        return 128 + signals.received
    if hargs.multirun and outcomes:
        configs = [cfg for _, cfg in configs]
        experiments = {Path(c.results_dir) / c.experiment_id for c in configs if c.postprocess}
        for experiment in sorted(experiments):
            if experiment.is_dir():
                run_postprocess(experiment, ["seed"], plots=True)
    return code


def _one_plain_run(hargs: HydraArgs, configs: list) -> bool:
    """One run without Hydra flags or ``hydra.*`` overrides: nothing Hydra's own launch would
    change, so the config composed and checked before is trained as it is (Hydra would
    compose it twice more: about 0.3 s a command)."""
    plain = not hargs.flags and not any(o.lstrip("+~").startswith("hydra") for o in hargs.overrides)
    return plain and not hargs.multirun and hargs.trains and len(configs) == 1


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


def summarize(outcomes: list, multirun: bool) -> int:
    """Print a sweep's tally and failed runs; 2 if any input was bad, 1 if any run failed."""
    if multirun and outcomes:
        states = ("finished", "skipped", "failed", "interrupted", "invalid", "not started")
        counts = {s: sum(o.state == s for o in outcomes) for s in states}
        extra = ", ".join(f"{counts[s]} {s}" for s in states[3:] if counts[s])
        print(
            f"sweep: {len(outcomes)} runs: {counts['finished']} trained, {counts['skipped']} "
            f"skipped (finished before), {counts['failed']} failed"
            + (f", {extra}" if extra else "")
        )
        for o in outcomes:
            if o.state == "failed":
                print(f"  failed: {o.name}: {o.error} (see {o.path}/train.log)")
    return max((o.exit_code for o in outcomes), default=0)


def cmd_validate(args: Sequence[str]) -> int:
    """Compose and check every run of the command, print what running it would do."""
    if args[:1] in (["-h"], ["--help"]):
        print(VALIDATE_HELP, end="")
        return 0
    from sweeptrainer.app import plan_run
    from sweeptrainer.config.compose import (
        ConfigSources,
        compose,
        sweep_overrides,
        task_config,
    )  # fmt: skip
    from sweeptrainer.config.naming import run_name
    from sweeptrainer.config.schema import validate
    from sweeptrainer.errors import ConfigError

    import_from_cwd()
    hargs = HydraArgs.parse(args)
    rows, bad = [], 0
    with ConfigSources.find(hargs.config_dir, hargs.config_name, Path.cwd()) as sources:
        for overrides in sweep_overrides(sources, hargs.overrides, hargs.multirun):
            try:
                cfg = task_config(compose(sources, overrides))
                validate(cfg)
                rows.append((run_name(cfg, overrides), plan_run(cfg, overrides).describe()))
            except ConfigError as err:
                bad += 1
                problem = " ".join(str(err).split())  # one line per run in the table
                rows.append((" ".join(overrides) or "(defaults)", f"INVALID: {problem}"))
    width = max(len(name) for name, _ in rows)
    print(f"{'run':{width}}  plan")
    for name, what in rows:
        print(f"{name:{width}}  {what}")
    print(f"{len(rows)} run(s), {bad} invalid")
    return 2 if bad else 0


PREPROCESS_HELP = """\
usage: trainer preprocess [-m] [OVERRIDES ...]

Build the preprocessing cache of every dataset the same command would train on: the
output of dataset.preprocess (resampling, spectrograms, resizing), computed once per
file and step config and stored beside the data (or in dataset.cache_dir), so the runs
of a sweep start at once. A cache that is up to date is left as it is; a run builds what
is missing itself. Trains nothing. Exit code 2 for bad input (a missing or unreadable
file is named).
"""


def cmd_preprocess(args: Sequence[str]) -> int:
    """Build (or find up to date) the preprocessing cache of each distinct dataset."""
    if args[:1] in (["-h"], ["--help"]):
        print(PREPROCESS_HELP, end="")
        return 0
    from omegaconf import OmegaConf

    from sweeptrainer.config.compose import ConfigSources, compose, sweep_overrides, task_config
    from sweeptrainer.config.instantiate import instantiate
    from sweeptrainer.config.schema import validate
    from sweeptrainer.logs import configure_console

    configure_console()
    import_from_cwd()
    hargs = HydraArgs.parse(args)
    done: set[str] = set()
    with ConfigSources.find(hargs.config_dir, hargs.config_name, Path.cwd()) as sources:
        for overrides in sweep_overrides(sources, hargs.overrides, hargs.multirun):
            cfg = task_config(compose(sources, overrides))
            validate(cfg)
            text = OmegaConf.to_yaml(cfg.dataset, resolve=True)
            if text in done:
                continue
            done.add(text)
            if not cfg.dataset.get("preprocess"):
                print(f"{cfg.dataset.id}: nothing to preprocess (no dataset.preprocess steps)")
                continue
            dataset = instantiate(
                cfg.dataset,
                "dataset",
                None,
                num_workers=cfg.num_workers,
                progress_bar=cfg.progress_bar,
            )
            info = getattr(dataset, "cache_info", None)
            if info is None:
                print(f"{cfg.dataset.id}: {cfg.dataset._target_} keeps no preprocessing cache")
            elif not info.built:  # a cache it builds is logged as it is built
                print(
                    f"{cfg.dataset.id}: preprocessing cache up to date ({info.files} files) "
                    f"-> {info.folder}"
                )
    return 0


def _experiment_parser(verb: str, description: str, dry_run: bool = True):
    import argparse

    parser = argparse.ArgumentParser(prog=f"trainer {verb}", description=description)
    parser.add_argument(
        "experiment_dir",
        metavar="EXPERIMENT_DIR",
        help="an experiment folder: <results_dir>/<experiment_id>",
    )
    if dry_run:
        parser.add_argument("--dry-run", action="store_true", help="list what would be removed")
    return parser


def cmd_rm_failed(args: Sequence[str]) -> int:
    from sweeptrainer.maintenance import rm_failed

    parser = _experiment_parser("rm-failed", "Delete the run folders of failed runs.")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask")
    ns = parser.parse_args(args)
    rm_failed(ns.experiment_dir, yes=ns.yes, dry_run=ns.dry_run)
    return 0


def cmd_rm_states(args: Sequence[str]) -> int:
    from sweeptrainer.maintenance import rm_states

    parser = _experiment_parser(
        "rm-states", "Delete state files except states/best.pt and states/last.pt."
    )
    parser.add_argument(
        "--best-only", action="store_true",
        help="keep only best.pt (a run without last.pt cannot be continued)",
    )  # fmt: skip
    ns = parser.parse_args(args)
    rm_states(ns.experiment_dir, best_only=ns.best_only, dry_run=ns.dry_run)
    return 0


def cmd_postprocess(args: Sequence[str]) -> int:
    parser = _experiment_parser(
        "postprocess",
        "Tables, aggregates over seeds, plots and an HTML report for an experiment, "
        "written to EXPERIMENT_DIR/postprocessing/.",
        dry_run=False,
    )
    parser.add_argument("--aggregate-by", default="seed", metavar="KEYS",
                        help="comma-separated config keys (or groups) to average over "
                        "(default: seed)")  # fmt: skip
    parser.add_argument("--no-plots", action="store_true", help="tables and report only")
    ns = parser.parse_args(args)
    return run_postprocess(ns.experiment_dir, ns.aggregate_by.split(","), not ns.no_plots)


def run_postprocess(experiment_dir: str | Path, aggregate_by: Sequence[str], plots: bool) -> int:
    from sweeptrainer.postprocess import postprocess

    summary = postprocess(
        experiment_dir, tuple(k.strip() for k in aggregate_by if k.strip()), plots
    )
    print(f"postprocessed {summary.runs} runs ({summary.finished} finished) -> {summary.folder}")
    if summary.runs > summary.finished:
        print(f"  {summary.runs - summary.finished} run(s) not finished: see status in runs.csv")
    if summary.best is None and len(summary.bests) > 1:
        print("  runs tracked by different metrics (datasets, tasks) are ranked apart:")
    for found in summary.bests:
        best = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in found.items())  # fmt: skip
        print(f"  best configuration: {best}")
    print(f"  report: {summary.folder / 'report.html'}")
    return 0


def cmd_create(args: Sequence[str]) -> int:
    import argparse

    from sweeptrainer.create import TEMPLATES, create

    parser = argparse.ArgumentParser(
        prog="trainer create", description="Write a ready-to-run project: conf/ + example code."
    )
    parser.add_argument(
        "dir",
        nargs="?",
        default=".",
        metavar="DIR",
        help="where to write the project (default: the current folder)",
    )
    parser.add_argument(
        "--template",
        "-t",
        default="quickstart",
        metavar="NAME",
        help="which project (default: quickstart; --list shows all)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--list", action="store_true", help="list the templates")  # fmt: skip
    ns = parser.parse_args(args)
    if ns.list:
        width = max(len(t.name) for t in TEMPLATES)
        for template in TEMPLATES:
            print(f"{template.name:{width}}  {template.summary}")
        return 0
    target = Path(ns.dir)
    written = create(target, ns.template, ns.force)
    print(f"created a {ns.template} project in {target}: {len(written)} files")
    data: dict[str, int] = {}  # data files are counted per folder, not listed
    for path in written:
        rel = path.relative_to(target)
        if rel.parts[0] == "data" and len(rel.parts) > 2:
            data["/".join(rel.parts[:2])] = data.get("/".join(rel.parts[:2]), 0) + 1
        else:
            print(f"  {rel}")
    for folder, count in data.items():
        print(f"  {folder}/: {count} data files")
    where = "" if target.resolve() == Path.cwd().resolve() else f"cd {target} && "
    print(f"next: {where}trainer      (one run)   then   trainer -m   (the declared sweep)")
    return 0


def _user_conf() -> Path | None:
    return Path("conf").resolve() if Path("conf").is_dir() else None


def cmd_list(args: Sequence[str]) -> int:
    import argparse

    from sweeptrainer import catalog

    parser = argparse.ArgumentParser(
        prog="trainer list", description="The options of a config group: packaged and yours."
    )
    parser.add_argument("group", metavar="GROUP", help=", ".join(catalog.GROUPS))
    ns = parser.parse_args(args)
    print(catalog.table(ns.group, _user_conf()))
    return 0


def cmd_show(args: Sequence[str]) -> int:
    import argparse

    from sweeptrainer import catalog

    parser = argparse.ArgumentParser(prog="trainer show", description="Print one option's YAML.")
    parser.add_argument("group", metavar="GROUP", help=", ".join(catalog.GROUPS))
    parser.add_argument("name", metavar="NAME", help="the option (trainer list GROUP shows them)")
    parser.add_argument(
        "--save", action="store_true",
        help="copy it into ./conf/GROUP/ for editing (it then replaces ours)",
    )  # fmt: skip
    ns = parser.parse_args(args)
    option = catalog.find(ns.group, ns.name, _user_conf())
    print(f"# {option.path} ({option.source})")
    print(option.path.read_text(encoding="utf-8"), end="")
    if ns.save:
        print(f"saved to {catalog.save(option, Path('conf').resolve())}")
    return 0


def cmd_inference(args: Sequence[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="trainer inference",
        description="Predict with a run's best state. INPUT: a CSV/Parquet file with the "
        "dataset's feature columns, or NAME:SPLIT (e.g. Digits:test).",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder")
    parser.add_argument("input", metavar="INPUT", help="features file, or NAME:SPLIT")
    parser.add_argument("output", metavar="OUTPUT", help="predictions file (.csv or .parquet)")
    ns = parser.parse_args(args)
    import_from_cwd()  # a run's own model class, as when it trained
    from sweeptrainer.inference import predict

    frame = predict(ns.run_dir, ns.input, ns.output)
    print(f"wrote {len(frame)} predictions to {ns.output}")
    return 0


def cmd_status(args: Sequence[str]) -> int:
    from sweeptrainer.monitor import status_table, watch

    parser = _experiment_parser(
        "status", "A table of an experiment's runs and their progress.", dry_run=False
    )
    parser.add_argument("--watch", nargs="?", const=5.0, type=float, metavar="SECONDS",
                        help="refresh every SECONDS (default 5) until Ctrl-C")  # fmt: skip
    ns = parser.parse_args(args)
    if ns.watch:
        try:
            watch(ns.experiment_dir, ns.watch)
        except KeyboardInterrupt:
            return 0
    print(status_table(ns.experiment_dir))
    return 0


def cmd_cancel(args: Sequence[str]) -> int:
    from sweeptrainer.monitor import cancel

    parser = _experiment_parser(
        "cancel",
        "Ask running runs on this host to stop: they save states/last.pt, are "
        "marked interrupted, and resume when the command runs again.",
        dry_run=False,
    )
    parser.add_argument("runs", nargs="*", metavar="RUN", help="run names (default: all)")
    ns = parser.parse_args(args)
    signalled, missed = cancel(ns.experiment_dir, ns.runs)
    for name in signalled:
        print(f"asked {name} to stop (SIGTERM)")
    for line in missed:
        print(f"could not stop {line}")
    if not signalled and not missed:
        print("no running runs")
    return 1 if missed else 0


VERBS = {
    "status": cmd_status,
    "cancel": cmd_cancel,
    "create": cmd_create,
    "list": cmd_list,
    "show": cmd_show,
    "inference": cmd_inference,
    "validate": cmd_validate,
    "preprocess": cmd_preprocess,
    "rm-failed": cmd_rm_failed,
    "rm-states": cmd_rm_states,
    "postprocess": cmd_postprocess,
}


def main(argv: Sequence[str] | None = None) -> None:
    """The ``trainer`` entry point: a verb, or overrides for Hydra."""
    from sweeptrainer.errors import ConfigError

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"], ["help"]):
        print(HELP, end="")
        sys.exit(0)
    if args[:1] == ["--version"]:
        print(f"sweeptrainer {__version__}")
        sys.exit(0)
    if args and args[0] in VERBS:
        try:
            sys.exit(VERBS[args[0]](args[1:]))
        except ConfigError as err:
            sys.exit(_error(str(err)))
    sys.exit(run_hydra(args))
