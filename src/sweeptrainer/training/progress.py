"""What a terminal shows while a run trains: progress bars and one line per evaluation.

Bars (tqdm, on stderr) only when ``progress_bar`` is on and stderr is a terminal: one over
the iterations and, in epoch training, one over the batches of the current epoch, both
with the running training loss and the rate. The loss is read from the device at most
twice a second, so the bars cost no synchronisation per step. The evaluation line is
written to the log (terminal and ``train.log``) and fits 100 columns.
"""

from __future__ import annotations

import sys
import time
from typing import Any

LINE_WIDTH = 100
SHORT = {"accuracy": "acc", "learning_rate": "lr"}


class Progress:
    """The bars of one run; create with :meth:`open`, which returns None when they are off."""

    def __init__(self, unit: str, total: int, done: int, batches: int) -> None:
        from tqdm import tqdm

        self.unit, self.batches = unit, batches
        self._tqdm = tqdm
        self.outer = tqdm(total=total, initial=done, unit=unit, leave=False, dynamic_ncols=True)
        self.inner: Any = None
        self._loss_sum: Any = 0.0
        self._loss_n = 0
        self._shown = 0.0

    @classmethod
    def open(cls, enabled: bool, unit: str, total: int, done: int, batches: int) -> Progress | None:
        if not (enabled and sys.stderr.isatty()):  # where tqdm writes
            return None
        return cls(unit, total, done, batches)

    def batch(self, loss: Any, batch_in_epoch: int, epoch: int) -> None:
        """After a training batch: ``batch_in_epoch`` batches of epoch ``epoch`` (0-based) done."""
        self._loss_sum = self._loss_sum + loss  # stays on the device
        self._loss_n += 1
        if self.unit == "epoch":
            if self.inner is None:
                self.inner = self._tqdm(
                    total=self.batches, initial=batch_in_epoch - 1, unit="batch",
                    desc=f"epoch {epoch + 1}", leave=False, position=1, dynamic_ncols=True,
                )  # fmt: skip
            self.inner.update(1)
        now = time.monotonic()
        if now - self._shown >= 0.5 or self._shown == 0.0:
            bar = self.inner if self.inner is not None else self.outer
            bar.set_postfix_str(f"loss {float(self._loss_sum) / self._loss_n:.4f}", refresh=False)
            self._loss_sum, self._loss_n, self._shown = 0.0, 0, now
        if self.inner is not None and batch_in_epoch >= self.batches:
            self.inner.close()
            self.inner = None

    def iteration(self) -> None:
        self.outer.update(1)

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
            self.inner = None
        self.outer.close()


def evaluation_line(
    unit: str,
    iteration: int,
    total: int,
    row: dict[str, float],
    improved: bool,
    scaled: bool = False,
) -> str:
    """``epoch  2/20  loss 0.4336 | dev 0.2349  acc 0.9407  uar 0.9440 | lr 0.001  best``:
    the training loss, the dev loss and metrics (``dev_`` dropped, long names shortened),
    the learning rate; aligned from one line to the next, and cut to 100 columns (every
    value is in ``metrics.csv``). ``scaled``: the losses are in standardised target units."""
    loss = "loss(std)" if scaled else "loss"
    line = f"{unit} {iteration:>{len(str(total))}}/{total}  {loss} {_value(row['train_loss'])}"
    line += f" | {'dev(std)' if scaled else 'dev'} {_value(row['dev_loss'])}"
    tail = f" | lr {row['learning_rate']:.3g}" if "learning_rate" in row else ""
    tail += "  best" if improved else ""
    for key, value in row.items():
        if key.startswith("dev_") and key != "dev_loss":
            name = key.removeprefix("dev_")
            part = f" {SHORT.get(name, name[:12])} {_value(value)}"
            if len(line) + len(part.rstrip()) + len(tail) + 4 > LINE_WIDTH:
                line += " ..."
                break
            line += part
    return line.rstrip() + tail


def _value(value: float) -> str:
    """Seven characters for most values (0.9407, 48.64, 3075), so the columns line up."""
    return f"{value:<7.4f}" if abs(value) < 10 else f"{value:<7.4g}"
