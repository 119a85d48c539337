"""Shared test fixtures: run the `trainer` command in-process in a temp folder."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sweeptrainer.cli import main

# A tiny run: 2 epochs of Digits, no progress bar.
TINY = ("iterations=2", "progress_bar=false")
# Seconds any test waits for a subprocess: generous, since a loaded 2-core machine can be
# ten times slower than an idle one; a test that needs longer is one to make smaller.
SUBPROCESS_TIMEOUT = 900


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``root`` with its size, modification time and SHA-256."""
    return {
        str(p.relative_to(root)): (
            p.stat().st_size,
            p.stat().st_mtime_ns,
            hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def trainer(tmp_path, monkeypatch, capsys):
    """Run ``trainer ARGS`` in ``tmp_path``, as a user would, and return code and output."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))

    def run(*args: str) -> CliResult:
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_dirs(root: Path, experiment: str = "default") -> list[Path]:
    return sorted((root / "results" / experiment / "training").iterdir())


@pytest.fixture(scope="session")
def swept(tmp_path_factory):
    """A finished 2-run sweep (``-m seed=1,2`` of TINY), trained once for the session in a
    folder of its own: tests copy its results folder and never change it."""
    from tests.helpers import train_in

    return train_in(tmp_path_factory.mktemp("swept"), "-m", "seed=1,2", *TINY)
