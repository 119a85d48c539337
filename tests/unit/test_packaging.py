"""The wheel (issue 33): every folder of the package, its templates and the config library
is in it, found from the folders (setup.py), and building it prints no setuptools warning."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_wheel_holds_every_config_folder_and_builds_without_warnings(tmp_path):
    # built as pip builds it for a user: in an isolated environment with the setuptools
    # pyproject.toml asks for (from the package index)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(ROOT), "-w",
         str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    said = built.stdout + built.stderr
    # setuptools' own warnings (a pip notice about an index location is not the build's)
    warnings = ("BuildBackendWarning", "SetuptoolsWarning", "SetuptoolsDeprecationWarning",
                "is absent from")  # fmt: skip
    assert not any(w in said for w in warnings), said
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    conf = {
        "sweeptrainer/conf/" + p.relative_to(ROOT / "conf").as_posix()
        for p in (ROOT / "conf").rglob("*.yaml")
    }
    assert conf <= names and "sweeptrainer/conf/hydra/sweeper/search.yaml" in names
    templates = ROOT / "src/sweeptrainer/templates"
    shipped = {
        "sweeptrainer/templates/" + p.relative_to(templates).as_posix()
        for p in templates.rglob("*")
        if p.suffix in (".md", ".py", ".yaml") and "__pycache__" not in p.parts
    }
    assert shipped <= names
