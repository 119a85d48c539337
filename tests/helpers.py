"""Callback classes the tests list in YAML, as a user would list their own."""

from __future__ import annotations

from pathlib import Path

from sweeptrainer.callbacks.hooks import HOOKS


class Recorder:
    """Writes one line per hook call into ``<run_dir>/hooks.txt``: the hook and its numbers."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "hooks.txt"
        self.lines: list[str] = []

    def _record(self, hook: str, kwargs: dict) -> None:
        parts = [hook.removeprefix("cb_on_")]
        parts += [str(kwargs[k]) for k in ("iteration", "batch_idx") if k in kwargs]
        parts.append(f"trainer={id(kwargs['trainer'])}")
        self.lines.append(" ".join(parts))
        if hook == "cb_on_test_end":
            self.path.write_text("\n".join(self.lines) + "\n")


def _make_hook(hook: str):
    def method(self, **kwargs):
        self._record(hook, kwargs)

    method.__name__ = hook
    return method


for _hook in HOOKS:
    setattr(Recorder, _hook, _make_hook(_hook))


class FailingCallback:
    """Raises in cb_on_iteration_end at ``at``: a bug in a user's callback."""

    def __init__(self, at: int = 2) -> None:
        self.at = at

    def cb_on_iteration_end(self, iteration):
        if iteration == self.at:
            raise RuntimeError(f"callback bug at iteration {iteration}")
