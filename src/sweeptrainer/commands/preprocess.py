"""``trainer preprocess``: build the datasets' preprocessing caches ahead of a sweep.

Without it the first runs of a sweep would each build the same cache; built once here,
every run starts at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sweeptrainer.commands import HYDRA_OPTIONS

VERB = "preprocess"
USAGE = ("trainer preprocess [-m] [OVERRIDES]  build the datasets' preprocessing caches",)

HELP = f"""\
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


def run(args: Sequence[str]) -> int:
    """Build (or find up to date) the preprocessing cache of each distinct dataset."""
    if args[:1] in (["-h"], ["--help"]):
        print(HELP, end="")
        return 0
    from omegaconf import OmegaConf

    from sweeptrainer.config.compose import ConfigSources, RunComposer, sweep_overrides
    from sweeptrainer.config.instantiate import instantiate
    from sweeptrainer.config.schema import Validator
    from sweeptrainer.logs import configure_console
    from sweeptrainer.sweep.args import HydraArgs
    from sweeptrainer.usercode import import_from_cwd

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
