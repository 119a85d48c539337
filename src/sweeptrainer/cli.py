"""The ``trainer`` command: its verbs and the dispatch.

``trainer [OVERRIDES]`` and ``trainer -m [OVERRIDES]`` train (:mod:`sweeptrainer.launch`);
the other verbs (validate, create, postprocess, ...) are here, each a small function
that parses its arguments and calls the module that does the work.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from sweeptrainer import __version__
from sweeptrainer.launch import HydraArgs, error, train_command
from sweeptrainer.usercode import import_from_cwd

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

HYDRA_OPTIONS = """\
positional arguments:
  OVERRIDES             config overrides, as when training: key=value, group=option,
                        +key=value (a key the config lacks), ~key (remove a key); with -m,
                        key=a,b,c sweeps over the values

options:
  -h, --help            show this help message and exit
  -m, --multirun        every run of the sweep: the comma-separated values of OVERRIDES
                        combined with the sweep the config declares (hydra.sweeper.params);
                        for a search sweeper (Optuna), a sample that tries each choice once
  --config-dir DIR, -cd DIR
                        your config folder, searched before the packaged library
                        (default: ./conf when the current folder has one)
  --config-name NAME, -cn NAME
                        the main config: NAME.yaml (default: config)

Hydra's other flags (--cfg, --info, ...) are accepted and have no effect here.
"""

VALIDATE_HELP = f"""\
usage: trainer validate [-h] [-m] [--config-dir DIR] [--config-name NAME] [OVERRIDES ...]

Compose every run the same command would train (trainer [-m] OVERRIDES), check each
config (keys, types, ranges, that every _target_ imports and its arguments fit), and print
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


def cmd_validate(args: Sequence[str]) -> int:
    """Compose and check every run of the command, print what running it would do."""
    if args[:1] in (["-h"], ["--help"]):
        print(VALIDATE_HELP, end="")
        return 0
    from sweeptrainer.app import plan_run
    from sweeptrainer.config.compose import ConfigSources, RunComposer, sweep_overrides
    from sweeptrainer.config.schema import Validator
    from sweeptrainer.errors import ConfigError
    from sweeptrainer.launch import each_run

    import_from_cwd()
    hargs = HydraArgs.parse(args)
    rows, bad = [], 0
    with ConfigSources.find(hargs.config_dir, hargs.config_name, Path.cwd()) as sources:
        runs = sweep_overrides(sources, hargs.overrides, hargs.multirun)
        for overrides, cfg in each_run(RunComposer(sources), runs, Validator()):
            try:
                if isinstance(cfg, ConfigError):
                    raise cfg
                plan = plan_run(cfg, overrides)
                rows.append((plan.run_dir.name, plan.describe()))
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


PREPROCESS_HELP = f"""\
usage: trainer preprocess [-h] [-m] [--config-dir DIR] [--config-name NAME] [OVERRIDES ...]

Build the preprocessing cache of every dataset the same command would train on: the
output of dataset.preprocess (resampling, spectrograms, resizing), computed once per
file and step config and stored beside the data (or in dataset.cache_dir), so the runs
of a sweep start at once. A cache that is up to date is left as it is; a run builds what
is missing itself. Trains nothing. Exit code 2 for bad input (a missing or unreadable
file is named).

{HYDRA_OPTIONS}
examples (in a project of the audio template: trainer create myaudio --template audio):
  trainer preprocess                                 the dataset of the default run
  trainer preprocess -m                              every dataset of the declared sweep
  trainer preprocess +dataset.cache_dir=/tmp/cache   the cache in another folder
"""


def cmd_preprocess(args: Sequence[str]) -> int:
    """Build (or find up to date) the preprocessing cache of each distinct dataset."""
    if args[:1] in (["-h"], ["--help"]):
        print(PREPROCESS_HELP, end="")
        return 0
    from omegaconf import OmegaConf

    from sweeptrainer.config.compose import ConfigSources, RunComposer, sweep_overrides
    from sweeptrainer.config.instantiate import instantiate
    from sweeptrainer.config.schema import Validator
    from sweeptrainer.logs import configure_console

    configure_console()
    import_from_cwd()
    hargs = HydraArgs.parse(args)
    done: set[str] = set()
    check = Validator()
    with ConfigSources.find(hargs.config_dir, hargs.config_name, Path.cwd()) as sources:
        compose = RunComposer(sources)
        for overrides in sweep_overrides(sources, hargs.overrides, hargs.multirun):
            cfg = compose.task(overrides)
            check(cfg)
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


def _experiment_parser(verb: str, description: str, dry_run: bool = True, epilog: str = ""):
    import argparse

    parser = argparse.ArgumentParser(
        prog=f"trainer {verb}",
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "experiment_dir",
        metavar="EXPERIMENT_DIR",
        help="an experiment folder: <results_dir>/<experiment_id>",
    )
    if dry_run:
        parser.add_argument(
            "--dry-run", action="store_true", help="only list what would be removed"
        )
    return parser


def cmd_rm_failed(args: Sequence[str]) -> int:
    from sweeptrainer.maintenance import rm_failed

    parser = _experiment_parser(
        "rm-failed",
        "Delete the run folders of the experiment's failed runs (status.yaml: failed), after\n"
        "listing them and asking. A run that a process is training right now is kept.",
        epilog="""\
examples:
  trainer rm-failed results/default             list the failed runs, ask, delete them
  trainer rm-failed results/default --dry-run   only list them
  trainer rm-failed results/default --yes       delete without asking
""",
    )
    parser.add_argument("--yes", "-y", action="store_true", help="delete without asking")
    ns = parser.parse_args(args)
    rm_failed(ns.experiment_dir, yes=ns.yes, dry_run=ns.dry_run)
    return 0


def cmd_rm_states(args: Sequence[str]) -> int:
    from sweeptrainer.maintenance import rm_states

    parser = _experiment_parser(
        "rm-states",
        "Delete the state files of the experiment's runs except states/best.pt and\n"
        "states/last.pt, after listing them and asking (with their total size). The states of\n"
        "a run that a process is training right now are kept.",
        epilog="""\
examples:
  trainer rm-states results/default               delete states other than best.pt, last.pt
  trainer rm-states results/default --dry-run     only list them
  trainer rm-states results/default --best-only   keep only best.pt
""",
    )
    parser.add_argument(
        "--best-only", action="store_true",
        help="keep only best.pt (a run without last.pt cannot be resumed or continued)",
    )  # fmt: skip
    parser.add_argument("--yes", "-y", action="store_true", help="delete without asking")
    ns = parser.parse_args(args)
    rm_states(ns.experiment_dir, best_only=ns.best_only, dry_run=ns.dry_run, yes=ns.yes)
    return 0


def cmd_postprocess(args: Sequence[str]) -> int:
    parser = _experiment_parser(
        "postprocess",
        "Tables, aggregates over seeds, plots and an HTML report for an experiment, written\n"
        "to EXPERIMENT_DIR/postprocessing/ (docs/postprocessing.md describes the files).",
        dry_run=False,
        epilog="""\
examples:
  trainer postprocess results/default
  trainer postprocess results/default --aggregate-by seed,optimizer   average over both
  trainer postprocess results/default --no-plots
""",
    )
    parser.add_argument("--aggregate-by", default="seed", metavar="KEYS",
                        help="comma-separated config keys (or groups) to average over "
                        "(default: seed)")  # fmt: skip
    parser.add_argument("--no-plots", action="store_true", help="tables and report only")
    ns = parser.parse_args(args)
    from sweeptrainer.postprocess import run_postprocess

    return run_postprocess(ns.experiment_dir, ns.aggregate_by.split(","), not ns.no_plots)


def cmd_create(args: Sequence[str]) -> int:
    import argparse

    from sweeptrainer.create import TEMPLATES, create

    parser = argparse.ArgumentParser(
        prog="trainer create",
        description="Write a ready-to-run project: conf/ + example code (and data, for some\n"
        "templates). Existing files are not overwritten without --force.",
        epilog="""\
examples:
  trainer create myproject                     the quickstart template into ./myproject
  trainer create myaudio --template audio      a project over audio files
  trainer create --list                        the templates, one line each
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        help="which template (default: quickstart; --list shows all)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument(
        "--list", action="store_true", help="list the templates and exit (writes nothing)"
    )
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
        prog="trainer list",
        description="The options of a config group: the packaged ones and yours (./conf/GROUP/),\n"
        "one line each.",
        epilog="""\
examples:
  trainer list model
  trainer list dataset
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "group", metavar="GROUP", help="a config group: " + ", ".join(catalog.GROUPS)
    )
    ns = parser.parse_args(args)
    print(catalog.table(ns.group, _user_conf()))
    return 0


def cmd_show(args: Sequence[str]) -> int:
    import argparse

    from sweeptrainer import catalog

    parser = argparse.ArgumentParser(
        prog="trainer show",
        description="Print one option's YAML file (yours in ./conf/GROUP/ or the packaged one),\n"
        "after a line naming the file.",
        epilog="""\
examples:
  trainer show model CNN
  trainer show dataset Files          every key of the Files dataset, with a comment each
  trainer show optimizer Adam --save  copy it to ./conf/optimizer/Adam.yaml to edit it
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "group", metavar="GROUP", help="a config group: " + ", ".join(catalog.GROUPS)
    )
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
        description="Predict with a run's best state (states/best.pt) and write a row per sample:\n"
        "the prediction and a score per class.",
        epilog="""\
examples:
  trainer inference results/default/training/RUN Digits:test predictions.csv
  trainer inference results/default/training/RUN features.csv predictions.parquet
  trainer inference results/images/training/RUN data/images/seven predictions.csv
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "run_dir", metavar="RUN_DIR",
        help="a run folder: <results_dir>/<experiment_id>/training/<run_name>",
    )  # fmt: skip
    parser.add_argument(
        "input", metavar="INPUT",
        help="a CSV/Parquet file with the dataset's feature columns, or NAME:SPLIT (a split of "
        "a packaged dataset, e.g. Digits:test); for a run on files (audio, images, arrays): a "
        "folder of new files, or a table listing them",
    )  # fmt: skip
    parser.add_argument(
        "output", metavar="OUTPUT", help="the predictions file to write (.csv or .parquet)"
    )
    ns = parser.parse_args(args)
    import_from_cwd()  # a run's own model class, as when it trained
    from sweeptrainer.inference import predict

    frame = predict(ns.run_dir, ns.input, ns.output)
    print(f"wrote {len(frame)} predictions to {ns.output}")
    return 0


def cmd_status(args: Sequence[str]) -> int:
    from sweeptrainer.monitor import status_table, watch

    parser = _experiment_parser(
        "status",
        "A table of an experiment's runs: state, progress, last dev metric, elapsed time, ETA\n"
        "and host:pid. It reads the run folders only, so it works for any launcher whose jobs\n"
        "share the file system.",
        dry_run=False,
        epilog="""\
examples:
  trainer status results/default
  trainer status results/default --watch      refresh every 5 s
  trainer status results/default --watch 30   refresh every 30 s
""",
    )
    parser.add_argument("--watch", nargs="?", const=5.0, type=float, metavar="SECONDS",
                        help="refresh every SECONDS (default 5) until Ctrl-C")  # fmt: skip
    ns = parser.parse_args(args)
    if ns.watch is not None and not ns.watch > 0:  # 0, negative, nan
        parser.error(f"--watch: expected a positive number of seconds, got {ns.watch:g}")
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
        "Ask running runs on this host to stop (SIGTERM): they save states/last.pt, are\n"
        "marked interrupted, and resume when the command runs again. Exit code 1 when a run\n"
        "could not be asked.",
        dry_run=False,
        epilog="""\
examples:
  trainer cancel results/default             every running run of the experiment
  trainer cancel results/default RUN_NAME    only that run (trainer status lists them)
""",
    )
    parser.add_argument(
        "runs", nargs="*", metavar="RUN", help="run names (default: every running run)"
    )
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
    # our packaged hydra/launcher=ray shares its name with the plugin's own config: Hydra 1.3
    # warns about that on every composition, though our file is complete by itself
    warnings.filterwarnings(
        "ignore", r"\s*'hydra/launcher/ray' is validated against ConfigStore", UserWarning
    )
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
            sys.exit(error(str(err)))
        except OSError as err:
            sys.exit(_refused(args[0], err))
    problem = bare_word(args)
    if problem:
        sys.exit(error(problem))
    sys.exit(train_command(args, list(VERBS)))


def _refused(verb: str, err: OSError) -> int:
    """A verb that writes (postprocess, rm-states, ...) on a read-only, full or foreign
    folder: one line saying which folder and why, exit 1; anything else is a bug: raised."""
    from sweeptrainer.io.atomic import storage_fault

    fault = storage_fault(err, Path(err.filename)) if err.filename else None
    if fault is None:
        raise err
    return error(f"{verb}: {fault.strerror}; stopped there", 1)


def bare_word(args: Sequence[str]) -> str | None:
    """A word that is neither a verb, an override (``key=value``, ``~key``) nor a flag:
    a misspelt verb, or ``key value`` for ``key=value``. Hydra would answer with a parser
    error about a missing '='."""
    from sweeptrainer.errors import did_you_mean
    from sweeptrainer.launch import VALUE_FLAGS

    after_flag = False
    for i, word in enumerate(args):
        if after_flag or word.startswith("-"):
            after_flag = word in VALUE_FLAGS or word in ("--info", "-i")
            continue
        if "=" in word or word.startswith("~"):
            continue
        hint = did_you_mean(word, VERBS)
        if i == 0 and hint:
            return f"unknown command {word!r}{hint}; commands: {', '.join(VERBS)}"
        following = args[i + 1] if i + 1 < len(args) else None
        pair = f" (did you mean {word}={following}?)" if following and "=" not in following else ""
        return (
            f"{word!r} is not a command nor an override: overrides are key=value{pair}; "
            f"commands: {', '.join(VERBS)} (trainer --help)"
        )
    return None
