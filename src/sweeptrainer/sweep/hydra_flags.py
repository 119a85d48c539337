"""Hydra's own flags of ``trainer`` that train nothing: ``--cfg``, ``--info``,
``--hydra-help``, ``--shell-completion``.

Hydra answers them from its ``main``, which reads the process's command line. Rather than
rewrite this process's ``sys.argv``, the command starts a short child process whose own
command line carries them, with the config sources as Hydra flags and overrides. The
child runs the file ``trainer`` beside this module, so that the completion script Hydra
writes (``--shell-completion install=bash``) calls ``trainer``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sweeptrainer.config.compose import ConfigSources
    from sweeptrainer.sweep.args import HydraArgs

SCRIPT = Path(__file__).with_name("trainer")
USER_FOLDER_ENV = "SWEEPTRAINER_USER_CONF"  # set for the child process only


def show(sources: ConfigSources, hargs: HydraArgs) -> int:
    """Hydra's answer to the flags, printed here; its exit code."""
    command = [
        sys.executable,
        str(SCRIPT),
        *("--config-path", str(sources.packaged), "--config-name", sources.config_name),
        *hargs.flags,
        *hargs.overrides,
    ]
    # the child's own environment names the user's folder (see hydra_main)
    env = {**os.environ, USER_FOLDER_ENV: str(sources.user_dir or "")}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    print(done.stdout, end="")
    print(done.stderr, end="", file=sys.stderr)
    return done.returncode


def hydra_main() -> None:
    """The child's entry: Hydra's main over a task that never runs (these flags answer
    before any job would), the user's folder before the packaged library as when
    training."""
    import hydra

    from hydra_plugins.sweeptrainer_plugins.searchpath import user_folder

    def never(cfg: object) -> None:
        raise SystemExit("trainer: these Hydra flags train nothing")

    folder = os.environ.get(USER_FOLDER_ENV) or None
    with user_folder(Path(folder) if folder else None):
        hydra.main(config_path=None, config_name=None, version_base="1.3")(never)()
