"""``<sweep folder>/runs.yaml``: what a ``-m`` command set out to train, written before
the first run starts.

It names the swept keys (the overrides with several values, and the sweeper's declared
``params``) and, for Hydra's basic sweeper, every run in launch order. `trainer status`
lists the runs that have not started yet from it, the TensorBoard logger names its runs
after the swept values, and each run's header says ``[run 3/8]``. It is written as JSON,
which YAML reads as it is, one run a line. A sweep folder is untrusted input: the record is
read through :mod:`sweeptrainer.io.untrusted` (bounded, its shape checked); a damaged one
is a DamagedRunError for `trainer status` to say, and reads as None elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECORD = "runs.yaml"


@dataclass(frozen=True)
class SweepRecord:
    swept: list[str]  # keys as written on the command line, without +/~ prefixes
    runs: list[str] = field(
        default_factory=list
    )  # run folder names, in launch order; [] if unknown
    overrides: list[list[str]] = field(default_factory=list)  # each run's overrides

    def number(self, run_name: str) -> int | None:
        """The run's 1-based place in the sweep, or None when it is not listed."""
        return self.runs.index(run_name) + 1 if run_name in self.runs else None


def swept_keys(overrides: list[str], declared: dict[str, Any] | None = None) -> list[str]:
    """The keys an override list sweeps (``lr=0.1,0.01``, ``seed=range(3)``, ...), and those
    of the sweeper's declared ``params``, in that order, each once."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys = [
        o.key_or_group
        for o in OverridesParser.create().parse_overrides(list(overrides))
        if o.is_sweep_override() and not o.key_or_group.startswith("hydra")
    ]
    keys += [str(k) for k in (declared or {})]
    return list(dict.fromkeys(keys))


def write(sweep_dir: Path, swept: list[str], runs: list[tuple[str, list[str]]]) -> None:
    """The record, as JSON (which YAML reads as it is): one run a line, read back with json
    (a 10,000-run record in 30 ms, where YAML takes seconds)."""
    from sweeptrainer.io.atomic import atomic_write_text

    lines = [
        "  " + _json({"name": name, "overrides": [str(o) for o in overrides]})
        for name, overrides in runs
    ]
    text = f'{{"swept": {_json([str(k) for k in swept])},\n "runs": [\n'
    text += ",\n".join(lines) + ("\n" if lines else "") + " ]}\n"
    atomic_write_text(Path(sweep_dir) / RECORD, text)


# characters JSON leaves as they are that YAML reads as line breaks
_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _json(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False).translate(_BREAKS)


def load(sweep_dir: Path) -> SweepRecord | None:
    """The record of a sweep folder, None when there is none; a DamagedRunError naming the
    file and what is wrong when it is damaged or not one we wrote."""
    from sweeptrainer.io.untrusted import read_record

    found = read_record(Path(sweep_dir) / RECORD)
    return None if found is None else SweepRecord(*found)


def read(sweep_dir: Path | None) -> SweepRecord | None:
    """The record of a sweep folder; None when there is none or it is damaged (the sweep
    goes on without it: no ``[run k/n]``, no pending runs)."""
    from sweeptrainer.errors import DamagedRunError

    if sweep_dir is None:
        return None
    try:
        return load(sweep_dir)
    except DamagedRunError:
        return None


def latest(experiment_dir: Path, problems: list[str] | None = None) -> SweepRecord | None:
    """The record of the experiment's newest sweep (the newest record that reads), or None;
    what is wrong with a newer one that does not is added to ``problems``."""
    import os
    import stat

    from sweeptrainer.errors import DamagedRunError

    sweeps = Path(experiment_dir) / "sweeps"
    if sweeps.is_symlink() or not sweeps.is_dir():
        return None
    found = []
    for folder in sweeps.iterdir():
        try:  # the record itself: read as a regular file only, whatever it is
            if not stat.S_ISDIR(os.lstat(folder).st_mode):
                continue
            found.append((os.lstat(folder / RECORD).st_mtime, folder.name, folder))
        except OSError:
            continue
    for _, _, folder in sorted(found, reverse=True):
        try:
            record = load(folder)
        except DamagedRunError as err:
            if problems is not None:
                problems.append(str(err))
            continue
        if record is not None:
            return record
    return None
