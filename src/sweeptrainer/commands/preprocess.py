"""``trainer preprocess``: build the datasets' preprocessing caches ahead of a sweep.

Without it the first runs of a sweep would each build the same cache; built once here,
every run starts at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sweeptrainer.commands import HYDRA_OPTIONS

if TYPE_CHECKING:
    from sweeptrainer.data.cache import CacheInfo

VERB = "preprocess"
USAGE = ("trainer preprocess [-m] [OVERRIDES]  build preprocessing caches (--rebuild, --prune)",)

HELP = f"""\
usage: trainer preprocess [-h] [-m] [--rebuild] [--prune [--yes | --dry-run]]
                          [--config-dir DIR] [--config-name NAME] [OVERRIDES ...]

Build the preprocessing cache of every dataset the same command would train on: the
output of dataset.preprocess (resampling, spectrograms, resizing), computed once per
file and step config and stored beside the data (or in dataset.cache_dir), so the runs
of a sweep start at once. A cache that is up to date is left as it is; after files
changed, only those files are computed again (the others are copied from the earlier
cache). A run builds what is missing itself. Trains nothing. Exit code 2 for bad input
(a missing or unreadable file is named, and so is a damaged cache).

{HYDRA_OPTIONS}
cache options:
  --rebuild             build the caches anew, computing every file (a damaged cache)
  --prune               then remove the caches under the same cache folders that none of
                        the command's datasets uses (older versions, changed steps), after
                        listing them and asking
  --yes, -y             with --prune: remove without asking
  --dry-run             with --prune: only list what would be removed

examples (in a project of the audio template: trainer create myaudio --template audio):
  trainer preprocess                                 the dataset of the default run
  trainer preprocess -m                              every dataset of the declared sweep
  trainer preprocess +dataset.cache_dir=/tmp/cache   the cache in another folder
  trainer preprocess -m --prune                      then remove the caches the sweep does
                                                     not use (asks first)
  trainer preprocess --rebuild                       build the cache anew
"""

# the flags of this verb, taken out before the rest is read as the training command line
FLAGS = ("--rebuild", "--prune", "--yes", "-y", "--dry-run")


def run(args: Sequence[str]) -> int:
    """Build (or find up to date) the preprocessing cache of each distinct dataset; with
    ``--prune``, remove the caches under their cache folders that none of them uses."""
    if args[:1] in (["-h"], ["--help"]):
        print(HELP, end="")
        return 0
    from sweeptrainer.sweep.args import error

    flags = {arg for arg in args if arg in FLAGS}
    rest = [arg for arg in args if arg not in FLAGS]
    if flags & {"--yes", "-y", "--dry-run"} and "--prune" not in flags:
        return error("trainer preprocess: --yes and --dry-run go with --prune")
    if {"--yes", "-y"} & flags and "--dry-run" in flags:
        return error("trainer preprocess: give --yes or --dry-run, not both")
    infos = _preprocess(rest, rebuild="--rebuild" in flags)
    if "--prune" in flags:
        _prune(infos, yes=bool({"--yes", "-y"} & flags), dry_run="--dry-run" in flags)
    return 0


def _preprocess(args: Sequence[str], rebuild: bool) -> list[CacheInfo]:
    """Open (building what is missing) the cache of each distinct dataset; their infos."""
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
    infos: list[CacheInfo] = []
    check = Validator()
    rebuilt: set[Path] | None = set() if rebuild else None  # each cache once
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
                rebuilt_caches=rebuilt,
            )
            info = getattr(dataset, "cache_info", None)
            if info is None:
                print(f"{cfg.dataset.id}: {cfg.dataset._target_} keeps no preprocessing cache")
                continue
            infos.append(info)
            if not info.built:  # a cache it builds is logged as it is built
                print(
                    f"{cfg.dataset.id}: preprocessing cache up to date ({info.files} files) "
                    f"-> {info.folder}"
                )
    return infos


def _prune(infos: Sequence[CacheInfo], yes: bool, dry_run: bool) -> None:
    """List the caches under the datasets' cache folders that none of them uses; ask, then
    remove them (as ``trainer rm-failed`` does its runs)."""
    from sweeptrainer.data.cache import remove_cache, unused_caches
    from sweeptrainer.maintenance import confirm

    roots = sorted({info.folder.parent.parent for info in infos})
    unused = unused_caches(roots, [info.folder for info in infos])
    for cache in unused:
        print(f"unused: {cache.describe()}")
    if not unused:
        where = ", ".join(str(root) for root in roots) or "no cache folder"
        print(f"no unused preprocessing caches ({where})")
        return
    if dry_run:
        print(f"{len(unused)} unused cache(s) would be removed (--dry-run: nothing removed)")
        return
    if not yes and not confirm(
        f"remove {len(unused)} unused preprocessing cache(s)? [y/N] ", input
    ):
        print("nothing removed")
        return
    for cache in unused:
        remove_cache(cache)
    print(f"removed {len(unused)} unused preprocessing cache(s)")
