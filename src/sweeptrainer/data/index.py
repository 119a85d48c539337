"""Index tables: which samples form train, dev and test, and what their targets are.

Shared by the file datasets and ``Table``. Every problem is a ConfigError that names
the dataset key, the table and the row (rows are counted from 1, as a spreadsheet
shows them below the header), so a user can open the file and fix it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sweeptrainer.errors import ConfigError

if TYPE_CHECKING:  # pandas is imported when a table is read (0.7 s)
    import pandas as pd

log = logging.getLogger("sweeptrainer")

SPLITS = ("train", "dev", "test")
TASKS = ("classification", "regression", "multilabel")


def read_table(path: str | Path, key: str) -> pd.DataFrame:
    """A CSV or Parquet table with at least one row; a ConfigError naming ``key`` else."""
    import pandas as pd

    file = Path(path)
    if not file.is_file():
        where = f" (cwd: {Path.cwd()})" if not file.is_absolute() else ""
        raise ConfigError(f"{key}: file {str(path)!r} does not exist{where}")
    suffix = file.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise ConfigError(f"{key}: {str(path)!r} is not a .csv or .parquet file")
    try:
        frame = pd.read_csv(file) if suffix == ".csv" else pd.read_parquet(file)
    except ImportError as err:
        raise ConfigError(f"{key}: reading {str(path)!r} needs pyarrow: {err}") from None
    except pd.errors.EmptyDataError:
        raise ConfigError(f"{key}: {str(path)!r} is empty") from None
    except Exception as err:
        raise ConfigError(f"{key}: cannot read {str(path)!r}: {err}") from None
    if frame.empty:
        raise ConfigError(f"{key}: {str(path)!r} has no rows")
    _warn_duplicates(frame, str(path), key)
    return frame


def _warn_duplicates(frame: pd.DataFrame, name: str, key: str) -> None:
    """Rows that repeat another row whole: legal (a sample listed twice trains twice), but
    rarely meant, so said once per table with the count and the first pair."""
    import pandas as pd

    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    repeated = pd.Series(hashes).duplicated(keep="first").to_numpy()
    count = int(repeated.sum())
    if count:
        first = int(repeated.nonzero()[0][0])
        original = int((hashes == hashes[first]).nonzero()[0][0])
        log.warning(
            f"warning: {key}: {name!r} has {count} duplicate row(s) (row {first + 1} repeats "
            f"row {original + 1}); each is used as often as it is listed"
        )


@dataclass
class Part:
    """One split's rows and where they came from (for messages)."""

    frame: pd.DataFrame  # the original row numbers are its index (0-based)
    where: str  # e.g. "'data/train.csv'" or "'all.csv' (split == 'dev')"

    def row(self, position: int) -> int:
        """The 1-based row number in the source table of the sample at ``position``."""
        return int(self.frame.index[position]) + 1

    def rows(self) -> list[int]:
        """Every sample's row number, as :meth:`row` gives them (one numpy step)."""
        return (self.frame.index.to_numpy() + 1).tolist()


def split_by_column(frame: pd.DataFrame, column: str, name: str, key: str) -> dict[str, Part]:
    """The rows whose ``column`` says train, dev or test."""
    if column not in frame.columns:
        raise ConfigError(
            f"{key}.split_column: no column {column!r} in {name!r} "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )
    values = frame[column].astype(str)
    unknown = sorted(set(values) - set(SPLITS))
    if unknown:
        first = int(np.flatnonzero(~values.isin(SPLITS))[0])
        raise ConfigError(
            f"{key}.split_column: {name!r} row {first + 1} has {column} = {unknown[0]!r}; "
            f"expected train, dev or test"
        )
    parts = {s: Part(frame[values == s], f"{name!r} ({column} == {s!r})") for s in SPLITS}
    for split, part in parts.items():
        if part.frame.empty:
            raise ConfigError(f"{key}.split_column: no {split} rows in {name!r}")
    return parts


def split_by_fractions(
    frame: pd.DataFrame,
    name: str,
    seed: int,
    dev_fraction: float,
    test_fraction: float,
    strata: pd.Series | None,
    key: str,
) -> dict[str, Part]:
    """A seeded split; with ``strata`` (class labels) each class is split on its own, so
    every split has the classes in the proportions of the whole table."""
    if not (0 < dev_fraction < 1 and 0 < test_fraction < 1 and dev_fraction + test_fraction < 1):
        raise ConfigError(
            f"{key}: dev_fraction and test_fraction must be in (0, 1) and sum to less than 1, "
            f"got {dev_fraction} and {test_fraction}"
        )
    rng = np.random.default_rng(seed)
    groups = [np.arange(len(frame))]
    if strata is not None:
        codes = strata.astype(str).to_numpy()
        groups = [np.flatnonzero(codes == value) for value in sorted(set(codes))]
    chosen: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for members in groups:
        order = rng.permutation(members)
        n_dev, n_test = round(len(order) * dev_fraction), round(len(order) * test_fraction)
        chosen["dev"].append(order[:n_dev])
        chosen["test"].append(order[n_dev : n_dev + n_test])
        chosen["train"].append(order[n_dev + n_test :])
    parts = {}
    for split, pieces in chosen.items():
        rows = np.sort(np.concatenate(pieces))
        if len(rows) == 0:
            raise ConfigError(
                f"{key}: the {split} split of {name!r} is empty; use more data or larger fractions"
            )
        parts[split] = Part(frame.iloc[rows], f"{name!r} ({split} part, split_seed {seed})")
    return parts


def check_columns(parts: dict[str, Part], columns: Sequence[str], key: str) -> None:
    """Every split has every column; else a ConfigError naming ``key`` and the table."""
    for part in parts.values():
        missing = [c for c in columns if c not in part.frame.columns]
        if missing:
            raise ConfigError(
                f"{key}: column(s) {missing} not in {part.where} "
                f"(columns: {', '.join(map(str, part.frame.columns))})"
            )


def numeric(part: Part, columns: Sequence[str], key: str) -> np.ndarray:
    """The columns of a part as float32; a ConfigError naming ``key`` and the table else
    (non-numeric values, or a NaN or infinite value: named by column and first row)."""
    try:
        values = part.frame[list(columns)].to_numpy(dtype=np.float32)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{key}: non-numeric values in {part.where}: {err}") from None
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        raise ConfigError(
            f"{key}: {values[row, col]} in column {columns[col]!r} of {part.where} row "
            f"{part.row(row)} (the first such value); expected finite numbers: fill or drop "
            "missing values first"
        )
    return values


def _sort_labels(labels: set[str]) -> list[str]:
    """Numeric labels in numeric order (2 before 10), others alphabetically."""
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def _label_text(value: Any) -> str:
    """A label as text; whole numbers read as floats by pandas (3.0) read as 3."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _label_texts(column: pd.Series) -> pd.Series:
    """Every label of ``column`` as text, each distinct value made text once (a 100,000-row
    table has a few labels)."""
    import pandas as pd

    codes, distinct = pd.factorize(column, use_na_sentinel=False)
    texts = np.array([_label_text(value) for value in distinct], dtype=object)
    return pd.Series(texts[codes], index=column.index, dtype=object)


@dataclass
class Targets:
    """Encoded targets per split, and what they mean."""

    values: dict[str, np.ndarray]  # int64 class indices, or float32 (n, k)
    class_names: list[str] | None  # classification and multi-label
    names: list[str]  # the target columns


def _no_missing(parts: dict[str, Part], columns: Sequence[str], key: str) -> None:
    for split, part in parts.items():
        for column in columns:
            empty = part.frame[column].isna().to_numpy()
            if empty.any():
                position = int(np.flatnonzero(empty)[0])
                raise ConfigError(
                    f"{key}: {part.where} row {part.row(position)} has no value in the target "
                    f"column {column!r} ({int(empty.sum())} row(s) in the {split} split)"
                )


def encode_targets(
    parts: dict[str, Part], target: str | Sequence[str], task: str, key: str = "dataset"
) -> Targets:
    """Class indices (labels from the training split), 0/1 label matrices, or values.

    A label in dev or test that the training split does not have is an error naming
    the table and the row: the model could never predict it.
    """
    if task not in TASKS:
        raise ConfigError(f"{key}.task: expected one of {', '.join(TASKS)}, got {task!r}")
    columns = [target] if isinstance(target, str) else [str(t) for t in target]
    if not columns:
        raise ConfigError(f"{key}.target: expected a column name or a list of them")
    if task == "classification" and len(columns) != 1:
        raise ConfigError(
            f"{key}.target: a classification dataset has one target column, "
            f"got {columns}; for several 0/1 label columns use task: multilabel"
        )
    check_columns(parts, columns, f"{key}.target")
    _no_missing(parts, columns, f"{key}.target")
    if task == "classification":
        return _encode_classes(parts, columns[0], key)
    values, class_names = {}, None
    for split, part in parts.items():
        array = numeric(part, columns, f"{key}.target")
        if task == "multilabel" and not np.isin(array, (0, 1)).all():
            position = int(np.flatnonzero(~np.isin(array, (0, 1)).all(axis=1))[0])
            raise ConfigError(
                f"{key}.target: multi-label columns hold 0 or 1; {part.where} row "
                f"{part.row(position)} has {array[position].tolist()}"
            )
        if task == "regression" and not np.isfinite(array).all():
            position = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
            raise ConfigError(
                f"{key}.target: {part.where} row {part.row(position)} has a "
                f"non-finite target {array[position].tolist()}"
            )
        values[split] = array
    if task == "multilabel":
        class_names = columns
    return Targets(values, class_names, columns)


def _encode_classes(parts: dict[str, Part], column: str, key: str) -> Targets:
    train = _label_texts(parts["train"].frame[column])
    names = _sort_labels(set(train))
    index = {name: i for i, name in enumerate(names)}
    values = {}
    for split, part in parts.items():
        labels = _label_texts(part.frame[column])
        known = labels.isin(index).to_numpy()
        if not known.all():
            position = int(np.flatnonzero(~known)[0])
            unknown = sorted(set(labels[~known]))
            shown = ", ".join(map(repr, unknown[:5])) + (" ..." if len(unknown) > 5 else "")
            raise ConfigError(
                f"{key}.{split}: label {labels.iloc[position]!r} in {part.where} row "
                f"{part.row(position)} is not a label of the training split "
                f"(unknown: {shown}; training labels: {', '.join(names[:20])}"
                f"{' ...' if len(names) > 20 else ''})"
            )
        values[split] = labels.map(index).to_numpy(dtype=np.int64)
    return Targets(values, names, [column])
