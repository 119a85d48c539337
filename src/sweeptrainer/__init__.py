"""sweeptrainer: a Hydra-based YAML sweep trainer for PyTorch.

Heavy libraries (torch, pandas, hydra) are imported only by the code paths that
need them, so `trainer --help` and `import sweeptrainer` stay fast.
"""

__version__ = "0.1.0"
