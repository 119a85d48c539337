"""Which packages the wheel holds, found from the folders (pyproject.toml holds the rest):
every folder under src/ (the package, its quickstart templates and their config folders,
the Hydra plugins) and every config group under conf/ (shipped as sweeptrainer.conf). A new
folder needs no edit anywhere, and setuptools has no data folder to warn about."""

from pathlib import Path

from setuptools import find_namespace_packages, setup

CONF = Path(__file__).resolve().parent / "conf"
groups = sorted(d for d in CONF.rglob("*") if d.is_dir() and d.name != "__pycache__")
setup(
    packages=[
        *find_namespace_packages(
            where="src", include=["sweeptrainer*", "hydra_plugins*"], exclude=["*__pycache__*"]
        ),
        "sweeptrainer.conf",
        *("sweeptrainer.conf." + ".".join(d.relative_to(CONF).parts) for d in groups),
    ]
)
