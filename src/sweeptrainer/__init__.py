"""sweeptrainer: a Hydra-based YAML sweep trainer for PyTorch.

Heavy libraries (torch, pandas, hydra) are imported only by the code paths that
need them, so `trainer --help` and `import sweeptrainer` stay fast: the Python API
(``compose``, ``train``, ``load_run``; see ``sweeptrainer.api``) is imported on first use.
"""

from sweeptrainer.version import __version__

_API = ("compose", "train", "load_run", "RunResult", "LoadedRun")
__all__ = ["__version__", "builds", *_API]


def __getattr__(name: str) -> object:
    if name == "builds":  # marks a factory function a run folder's config may name
        from sweeptrainer.config.instantiate import builds

        return builds
    if name in _API:
        from sweeptrainer import api

        return getattr(api, name)
    raise AttributeError(f"module 'sweeptrainer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "builds", *_API})
