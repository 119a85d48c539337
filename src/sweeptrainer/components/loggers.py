"""Loggers: components with ``cb_on_*`` hooks, like any callback."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _tag(name: str) -> str:
    """``dev_accuracy`` -> ``dev/accuracy`` so TensorBoard groups the splits."""
    split, _, rest = name.partition("_")
    return f"{split}/{rest}" if split in ("train", "dev", "test") and rest else name


class TensorBoardLogger:
    """Scalars per evaluation (losses, dev metrics, learning rate) and the test metrics."""

    def __init__(self, run_dir: Path) -> None:
        self.log_dir = Path(run_dir) / "tensorboard"
        self._writer: Any = None

    def cb_on_train_begin(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(self.log_dir))

    def cb_on_iteration_end(self, iteration: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            if name not in ("iteration", "elapsed_s"):
                self._writer.add_scalar(_tag(name), value, iteration)

    def cb_on_train_end(self) -> None:
        self._writer.flush()

    def cb_on_test_end(self, metrics: dict[str, float]) -> None:
        if self._writer is None:  # test without training (e.g. a finished run re-tested)
            self.cb_on_train_begin()
        for name, value in metrics.items():
            self._writer.add_scalar(_tag(name), value, 0)
        self._writer.close()
