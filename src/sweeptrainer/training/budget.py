"""When to evaluate, save and stop: the only place epoch and step training differ."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """``total`` iterations of ``unit`` (epoch or step); eval/save every N, and at the end."""

    unit: str
    total: int
    eval_every: int
    save_every: int

    @property
    def per_step(self) -> bool:
        """True when an iteration is one optimizer step, False when it is one epoch."""
        return self.unit == "step"

    def next_eval(self, iteration: int) -> int:
        """The iteration at which the period starting after ``iteration`` is evaluated."""
        return min((iteration // self.eval_every + 1) * self.eval_every, self.total)

    def is_save_point(self, iteration: int) -> bool:
        return iteration % self.save_every == 0 or iteration >= self.total

    def done(self, iteration: int) -> bool:
        return iteration >= self.total
