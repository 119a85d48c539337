"""The hook table: every ``cb_on_*`` event and the arguments a method may declare.

The table lives in :mod:`sweeptrainer.config.hooks`, where the config check reads it
before anything is built; it is importable from here too.
"""

from sweeptrainer.config.hooks import HOOKS, PREFIX

__all__ = ["HOOKS", "PREFIX"]
