"""Datasets: real data bundled with scikit-learn (no download) and the user's own tables.

What the trainer needs from a dataset (any class offering these works):

- ``train``, ``dev``, ``test``: ``torch.utils.data.Dataset`` of ``(features, target)``;
  a ``TensorDataset`` is batched by indexing, without per-sample collation;
- ``task``: ``"classification"``, ``"regression"`` or ``"multilabel"``;
- ``input_shape`` (tuple) and ``output_dim`` (int): passed to the model;
- ``class_names``: label names (classification and multi-label), else None;
- ``target_mean``/``target_std``: regression targets were standardised with these
  (metrics and outputs are reported in the original units), else None.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from sweeptrainer.config.instantiate import builds
from sweeptrainer.data.files import Files  # the dataset over files on disk
from sweeptrainer.data.index import TASKS
from sweeptrainer.errors import ConfigError


def split_indices(
    n: int, split_seed: int, dev_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fixed, seeded train/dev/test split of ``n`` samples."""
    if not (0 < dev_fraction < 1 and 0 < test_fraction < 1 and dev_fraction + test_fraction < 1):
        raise ConfigError("dev_fraction and test_fraction must be in (0, 1) and sum to less than 1")
    order = np.random.default_rng(split_seed).permutation(n)
    n_dev, n_test = round(n * dev_fraction), round(n * test_fraction)
    return order[n_dev + n_test :], order[:n_dev], order[n_dev : n_dev + n_test]


class ArrayDataset:
    """Three in-memory splits with features standardised on the training split."""

    # the splits, set by name in __init__
    train: TensorDataset
    dev: TensorDataset
    test: TensorDataset

    def __init__(
        self,
        splits: dict[str, tuple[np.ndarray, np.ndarray]],
        task: str,
        class_names: list[str] | None = None,
        input_shape: tuple[int, ...] | None = None,
        scale_target: bool = False,
        feature_names: list[str] | None = None,
    ) -> None:
        if task not in TASKS:
            raise ConfigError(f"task: expected one of {', '.join(TASKS)}, got {task!r}")
        self.task = task
        self.class_names = class_names
        x_train = splits["train"][0].astype(np.float32)
        mean, std = x_train.mean(axis=0), x_train.std(axis=0)
        std[std == 0] = 1.0  # constant features (e.g. always-black pixels)
        # kept so `trainer inference` can preprocess raw feature files the same way
        self.feature_mean, self.feature_std = mean, std
        self.feature_names = feature_names or [f"x{i}" for i in range(x_train.shape[1])]
        self.target_mean: float | None = None
        self.target_std: float | None = None
        if task == "regression" and scale_target:
            y_train = splits["train"][1].astype(np.float64)
            self.target_mean, self.target_std = float(y_train.mean()), float(y_train.std() or 1.0)
        n_features = x_train.shape[1]
        self.input_shape = tuple(input_shape or (n_features,))
        for name, (x, y) in splits.items():
            features = torch.from_numpy(((x - mean) / std).astype(np.float32))
            features = features.reshape(len(x), *self.input_shape)
            setattr(self, name, TensorDataset(features, self._targets(y)))
        if task == "classification":
            assert class_names is not None
            self.output_dim = len(class_names)
        elif task == "multilabel":
            self.output_dim = splits["train"][1].shape[1]
        else:
            self.output_dim = 1

    def _targets(self, y: np.ndarray) -> torch.Tensor:
        if self.task == "classification":
            return torch.from_numpy(y.astype(np.int64))
        if self.task == "multilabel":
            return torch.from_numpy(y.astype(np.float32))
        values = y.astype(np.float64).reshape(-1, 1)
        if self.target_mean is not None and self.target_std is not None:  # set together
            values = (values - self.target_mean) / self.target_std
        return torch.from_numpy(values.astype(np.float32))

    def class_counts(self) -> list[int]:
        """Training samples per class (for balanced class weights)."""
        targets = self.train.tensors[1]
        return torch.bincount(targets, minlength=self.output_dim).tolist()


@functools.cache
def _bundled(loader_name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], list[str]]:
    """A dataset bundled with scikit-learn, read once per process: the runs of a sweep
    share it (reading and parsing Digits takes about 0.1 s)."""
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader_name)()
    x, y = np.asarray(bunch.data), np.asarray(bunch.target)
    x.flags.writeable = y.flags.writeable = False
    names = tuple(str(n) for n in getattr(bunch, "target_names", ()))
    return x, y, names, [str(n) for n in bunch.feature_names]


def _sklearn(
    loader_name: str,
    task: str,
    split_seed: int,
    dev_fraction: float,
    test_fraction: float,
    **kwargs: Any,
) -> dict[str, Any]:
    x, y, target_names, features = _bundled(loader_name)
    train, dev, test = split_indices(len(x), split_seed, dev_fraction, test_fraction)
    # fancy indexing copies: the arrays of the bundled data are never handed out
    splits = {"train": (x[train], y[train]), "dev": (x[dev], y[dev]), "test": (x[test], y[test])}
    names = list(target_names) if task == "classification" else None
    return {
        "splits": splits,
        "task": task,
        "class_names": names,
        "feature_names": features,
        **kwargs,
    }


@builds(object)
class Digits(ArrayDataset):
    """scikit-learn's 8x8 handwritten digits, as 1x8x8 images (FFNN flattens them)."""

    def __init__(
        self, split_seed: int = 0, dev_fraction: float = 0.15, test_fraction: float = 0.15
    ):
        super().__init__(
            **_sklearn("load_digits", "classification", split_seed, dev_fraction, test_fraction),
            input_shape=(1, 8, 8),
        )


@builds(object)
class Wine(ArrayDataset):
    """scikit-learn's wine recognition data: 13 features, 3 cultivars."""

    def __init__(
        self, split_seed: int = 0, dev_fraction: float = 0.15, test_fraction: float = 0.15
    ):
        super().__init__(
            **_sklearn("load_wine", "classification", split_seed, dev_fraction, test_fraction)
        )


@builds(object)
class BreastCancer(ArrayDataset):
    """scikit-learn's Wisconsin breast cancer data: 30 features, malignant or benign."""

    def __init__(
        self, split_seed: int = 0, dev_fraction: float = 0.15, test_fraction: float = 0.15
    ):
        super().__init__(
            **_sklearn(
                "load_breast_cancer", "classification", split_seed, dev_fraction, test_fraction
            )
        )


@builds(object)
class Diabetes(ArrayDataset):
    """scikit-learn's diabetes progression data: 10 features, a continuous target."""

    def __init__(
        self,
        split_seed: int = 0,
        dev_fraction: float = 0.15,
        test_fraction: float = 0.15,
        scale_target: bool = True,
    ):
        super().__init__(
            **_sklearn("load_diabetes", "regression", split_seed, dev_fraction, test_fraction),
            scale_target=scale_target,
        )


@builds(object)
class MultiLabel(ArrayDataset):
    """A seeded multi-label set from scikit-learn's ``make_multilabel_classification``:
    ``n_samples`` x ``n_features``, ``n_labels`` labels, about ``labels_per_sample`` each."""

    def __init__(
        self,
        n_samples: int = 1000,
        n_features: int = 20,
        n_labels: int = 5,
        labels_per_sample: int = 2,
        split_seed: int = 0,
        dev_fraction: float = 0.15,
        test_fraction: float = 0.15,
    ) -> None:
        from sklearn.datasets import make_multilabel_classification

        x, y = make_multilabel_classification(
            n_samples=n_samples, n_features=n_features, n_classes=n_labels,
            n_labels=labels_per_sample, random_state=split_seed,
        )  # fmt: skip
        train, dev, test = split_indices(len(x), split_seed, dev_fraction, test_fraction)
        splits = {
            "train": (x[train], y[train]),
            "dev": (x[dev], y[dev]),
            "test": (x[test], y[test]),
        }
        super().__init__(splits, "multilabel", [f"label_{i}" for i in range(n_labels)])


@builds(object)
class Table(ArrayDataset):
    """The user's own CSV/Parquet files: feature columns and one or more target columns.

    ``task: classification``: one target column; labels (strings or numbers) are encoded
    from the training split, and a label only dev or test has is an error naming the file
    and row. ``task: multilabel``: a list of 0/1 target columns, one per label.
    ``task: regression``: one numeric target column. ``features: null`` takes every column
    that is not a target.
    """

    def __init__(
        self,
        train: str,
        dev: str,
        test: str,
        target: str | list[str],
        features: list[str] | None = None,
        task: str = "classification",
        scale_target: bool = False,
    ) -> None:
        from sweeptrainer.data import index as tables

        if task == "regression" and not isinstance(target, str) and len(list(target)) != 1:
            raise ConfigError(
                f"dataset.target: a regression Table has one target column, got {list(target)}"
            )
        paths = {"train": train, "dev": dev, "test": test}
        parts = {
            split: tables.Part(
                tables.read_table(path, f"dataset.{split}"), f"the {split} file {path!r}"
            )
            for split, path in paths.items()
        }
        encoded = tables.encode_targets(parts, target, task)
        targets = encoded.names
        columns = features if features is not None else [
            c for c in parts["train"].frame.columns if c not in targets
        ]  # fmt: skip
        if not columns:
            raise ConfigError(
                f"dataset.features: the train file {train!r} has no feature columns (only the "
                f"target {targets}); expected at least one column besides the target"
            )
        tables.check_columns(parts, columns, "dataset.features")
        splits = {}
        for split, part in parts.items():
            x = tables.numeric(part, columns, "dataset.features")
            y = encoded.values[split]
            splits[split] = (x, y[:, 0] if task == "regression" else y)
        super().__init__(
            splits, task, encoded.class_names, scale_target=scale_target,
            feature_names=list(columns),
        )  # fmt: skip


__all__ = ["BreastCancer", "Diabetes", "Digits", "Files", "MultiLabel", "Table", "Wine"]
