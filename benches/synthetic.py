"""The synthetic data of the per-step benchmark: 20 000 samples x 256 features, 10 classes.

Generated from a fixed seed (no download). ``Synthetic`` serves it to the trainer
(``dataset._target_=synthetic.Synthetic`` with this folder on PYTHONPATH); the
hand-written loop calls :func:`make_data` and splits it the same way.
"""

from __future__ import annotations

import numpy as np

N_SAMPLES, N_FEATURES, N_CLASSES = 20_000, 256, 10


def make_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features from class-dependent Gaussians (a learnable, not trivial, problem)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, N_SAMPLES)
    centres = rng.normal(0.0, 0.3, (N_CLASSES, N_FEATURES))
    x = centres[y] + rng.normal(0.0, 1.0, (N_SAMPLES, N_FEATURES))
    return x.astype(np.float32), y


class Synthetic:
    """A sweeptrainer dataset (train/dev/test TensorDatasets) over :func:`make_data`."""

    def __new__(cls, split_seed: int = 0, dev_fraction: float = 0.15, test_fraction: float = 0.15):
        from sweeptrainer.components.datasets import ArrayDataset, split_indices

        x, y = make_data()
        train, dev, test = split_indices(len(x), split_seed, dev_fraction, test_fraction)
        splits = {
            name: (x[i], y[i]) for name, i in (("train", train), ("dev", dev), ("test", test))
        }
        return ArrayDataset(splits, "classification", [str(c) for c in range(N_CLASSES)])
