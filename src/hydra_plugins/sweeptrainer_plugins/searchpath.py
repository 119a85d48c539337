"""The user's config folder in Hydra's config search path, before the packaged library.

sweeptrainer composes with the packaged library (``sweeptrainer.conf``) as Hydra's primary
config folder; this ``SearchPathPlugin`` puts the user's folder (``./conf``,
``--config-dir``, or a sweep's frozen copy of it) just before it. Hydra looks for the main
config and each group option along the search path, so the user's ``config.yaml``
replaces ours when there is one, and their options add to our groups or replace ours of
the same name.

Hydra makes its plugins itself, without arguments, and applies every search path plugin
to every composition in the process: the folder is given for one composition at a time
(:func:`user_folder`, a context variable), and without one the plugin changes nothing, so
another Hydra application in the same environment never sees it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery
from hydra.plugins.search_path_plugin import SearchPathPlugin

PROVIDER = "sweeptrainer-user"
_FOLDER: ContextVar[Path | None] = ContextVar("sweeptrainer_user_folder", default=None)


class UserConfigFolder(SearchPathPlugin):
    """Puts the folder of the composition in progress before Hydra's primary folder."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        folder = _FOLDER.get()
        if folder is not None:
            main = SearchPathQuery(provider="main")
            search_path.prepend(PROVIDER, f"file://{folder}", anchor=main)


@contextlib.contextmanager
def user_folder(folder: Path | None) -> Iterator[None]:
    """Compose with ``folder`` before the primary folder for the duration (nothing when
    None); makes the plugin known to Hydra, which does not find it in an editable install."""
    from hydra.core.plugins import Plugins

    Plugins.instance().register(UserConfigFolder)  # once: a class registered is kept
    token = _FOLDER.set(folder)
    try:
        yield
    finally:
        _FOLDER.reset(token)
