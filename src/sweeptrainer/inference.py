"""`trainer inference RUN_DIR INPUT OUTPUT`: predictions with a run's best state.

INPUT is, for a run on files (the ``Files`` dataset), a folder of new files or a table
listing them (its file column, paths relative to the table's folder), each made into a
sample by the run's own loader, preprocessing and transform; for a run on a table, a
CSV/Parquet file with the dataset's feature columns (preprocessed with the statistics the
run saved); for any run, ``NAME:SPLIT`` for a split of a dataset option (the run's own
dataset config when NAME is its id). OUTPUT gets one row per input: the file (for files),
the prediction (class names for classification) and one score column per class.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from sweeptrainer.config.instantiate import instantiate
from sweeptrainer.errors import ConfigError
from sweeptrainer.io.atomic import atomic_write
from sweeptrainer.io.run_dir import RunDir
from sweeptrainer.training.checkpoint import CorruptStateError, describe_dataset, load_state_file


def load_config(run_dir: Path, what: str = "RUN_DIR") -> DictConfig:
    """A run's resolved ``config.yaml``; ConfigError naming ``what`` when it is no run."""
    run = RunDir(run_dir)
    if not run.config.is_file():
        raise ConfigError(f"{what}: {str(run_dir)!r} is not a run folder (no config.yaml)")
    from sweeptrainer.io.atomic import read_yaml

    data = read_yaml(run.config)  # the safe loader: no tags that build objects
    if not isinstance(data, dict):
        raise ConfigError(f"RUN_DIR: {str(run.config)!r} is not a mapping of config keys")
    cfg = OmegaConf.create(data)
    check_run_config(cfg, run.config)
    return cfg


def check_run_config(cfg: DictConfig, path: Path) -> None:
    """Every ``_target_`` of what is built from a run folder's config (its model and its
    dataset, with what the dataset nests) checked before anything is built from it: a run
    folder is untrusted input, and may have been edited to run code. The other groups
    (optimizer, callbacks, loggers, ...) are never built from a run folder."""
    import torch

    from sweeptrainer.config.instantiate import check_untrusted

    try:
        for key, kind in (("model", torch.nn.Module), ("dataset", None)):
            if key in cfg:
                check_untrusted(cfg[key], key, kind)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def load_best(run_dir: Path, what: str = "RUN_DIR") -> dict[str, Any]:
    """A run's best state (``weights_only``); ConfigError when it has none or it is damaged."""
    run = RunDir(run_dir)
    if not run.state("best").is_file():
        raise ConfigError(f"{what}: {str(run_dir)!r} has no states/best.pt (did it train?)")
    try:
        return load_state_file(run.state("best"))
    except CorruptStateError as err:
        raise ConfigError(f"{what}: states/best.pt is unreadable: {err}") from None


def _load(run_dir: Path) -> tuple[DictConfig, dict[str, Any]]:
    return load_config(run_dir), load_best(run_dir)


def dataset_info(cfg: DictConfig, state: dict[str, Any]) -> dict[str, Any]:
    """What the model needs to be built (input shape, output size, ...): saved in every
    state; a state without it builds the run's dataset to find out."""
    info = state.get("dataset") or {}
    if info.get("input_shape") is None or info.get("output_dim") is None:
        info = describe_dataset(instantiate(cfg.dataset, "dataset"))
    return info


def build_model(cfg: DictConfig, info: dict[str, Any], state: dict[str, Any]) -> torch.nn.Module:
    """The run's model with the state's weights, in eval mode, on the CPU."""
    from sweeptrainer.training.builder import build_model as build

    model = build(cfg.model, tuple(info["input_shape"]), info["output_dim"])
    model.load_state_dict(state["model"])
    return model.eval()


def _split_features(cfg: DictConfig, spec: str) -> tuple[torch.Tensor, Any]:
    """``NAME:SPLIT`` -> the (already preprocessed) features of that split and the dataset."""
    name, _, split = spec.partition(":")
    if split not in ("train", "dev", "test"):
        raise ConfigError(f"INPUT: {spec!r}: expected NAME:SPLIT with SPLIT train, dev or test")
    node = cfg.dataset
    if name != cfg.dataset.id:
        from sweeptrainer.config.compose import ConfigSources, compose, task_config

        with ConfigSources.find(None, None, Path.cwd()) as sources:
            node = task_config(compose(sources, [f"dataset={name}"])).dataset
    dataset = instantiate(node, "dataset")
    tensors = getattr(getattr(dataset, split), "tensors", None)
    if tensors is None:
        features = torch.stack(
            [getattr(dataset, split)[i][0] for i in range(len(getattr(dataset, split)))]
        )
    else:
        features = tensors[0]
    return features, dataset


def _file_features(info: dict[str, Any], path: str) -> torch.Tensor:
    names = info.get("feature_names")
    if not names or info.get("feature_mean") is None:
        raise ConfigError(
            "INPUT: this run's dataset does not record its feature names and statistics, so "
            "it cannot read raw feature files; use INPUT as NAME:SPLIT instead"
        )
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"INPUT: file {path!r} does not exist")
    try:
        frame = pd.read_parquet(file) if file.suffix in (".parquet", ".pq") else pd.read_csv(file)
    except Exception as err:
        raise ConfigError(f"INPUT: cannot read {path!r} as a table: {err}") from None
    missing = [n for n in names if n not in frame.columns]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ConfigError(
            f"INPUT: {path!r} lacks {len(missing)} feature column(s) the model was trained on: "
            f"{shown} (expected columns: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''})"
        )
    try:
        x = torch.tensor(frame[names].to_numpy(dtype=np.float32))
    except ValueError as err:
        raise ConfigError(f"INPUT: non-numeric feature values in {path!r}: {err}") from None
    mean, std = info["feature_mean"].float(), info["feature_std"].float()
    std = torch.where(std == 0, torch.ones_like(std), std)
    x = (x - mean.reshape(-1)) / std.reshape(-1)
    return x.reshape(len(x), *info["input_shape"])


def _new_files(info: dict[str, Any], spec: str) -> tuple[Path, list[str], list[str]]:
    """INPUT for a run on files: (root, file names relative to it, the folder's files no
    loader reads), from a folder (hidden folders such as the cache left out) or a table."""
    from sweeptrainer.data import index as tables
    from sweeptrainer.data.loaders import known

    source = Path(spec)
    if source.is_dir():
        found = sorted(
            str(p.relative_to(source))
            for p in source.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(source).parts)
        )
        names = [n for n in found if Path(n).suffix.lower() in known()]
        if not names:
            raise ConfigError(f"INPUT: no audio, image, .npy or .pt files in folder {spec!r}")
        return source, names, [n for n in found if n not in set(names)]
    frame = tables.read_table(source, "INPUT")
    column = info["file_column"]
    if column not in frame.columns:
        raise ConfigError(
            f"INPUT: {spec!r} has no column {column!r} (the run's file column; "
            f"columns: {', '.join(map(str, frame.columns))})"
        )
    return source.parent, frame[column].astype(str).tolist(), []


def _predict_files(cfg: DictConfig, info: dict[str, Any], spec: str, model: Any) -> pd.DataFrame:
    """Predictions for new files, made into samples as the run made its own (no cache)."""
    from sweeptrainer.data.collate import build_collate, stack
    from sweeptrainer.data.files import FilePipeline

    root, names, skipped = _new_files(info, spec)
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise ConfigError(
            f"INPUT: {len(missing)} listed file(s) do not exist, first {str(root / missing[0])!r}"
        )
    pipeline = FilePipeline.from_config(cfg.dataset)
    collate = build_collate((cfg.dataset.get("batch") or {}).get("collate")) or stack
    batch, outputs = int(cfg.inference_batch_size), []
    for start in range(0, len(names), batch):
        samples = []
        for name in names[start : start + batch]:
            try:
                samples.append((pipeline(root / name), torch.zeros(())))
            except Exception as err:
                raise ConfigError(f"INPUT: cannot make a sample of {name!r}: {err}") from None
        outputs.append(model(collate(samples)[0]))
    frame = _decode(info, torch.cat(outputs).float())
    frame.insert(0, "file", names)
    frame.attrs["skipped"] = skipped  # the folder's files no loader reads: said, not dropped
    return frame


OUTPUT_SUFFIXES = (".csv", ".parquet", ".pq")


def check_output(output: Path, run_dir: Path) -> None:
    """OUTPUT: a .csv or .parquet file outside the run folder (a run's own files are never
    written by inference), not an existing folder; checked before anything is computed."""
    if output.is_dir():
        raise ConfigError(f"OUTPUT: {str(output)!r} is a folder; expected a .csv or .parquet file")
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError(
            f"OUTPUT: {str(output)!r} has an unknown extension; expected .csv or .parquet"
        )
    if output.resolve().is_relative_to(run_dir.resolve()):
        raise ConfigError(
            f"OUTPUT: {str(output)!r} is inside the run folder {str(run_dir)!r}; inference "
            "never writes into a run folder: choose a file outside it"
        )
    if not output.resolve().parent.is_dir():
        raise ConfigError(f"OUTPUT: folder {str(output.parent)!r} does not exist")


@torch.no_grad()
def predict(run_dir: str | Path, input_spec: str, output: str | Path) -> pd.DataFrame:
    """Write predictions for INPUT to OUTPUT; return them."""
    check_output(Path(output), Path(run_dir))
    cfg, state = _load(Path(run_dir))
    info = state.get("dataset") or {}
    if info.get("file_column") and ":" not in input_spec:  # a run on files: new files
        frame = _predict_files(cfg, info, input_spec, build_model(cfg, info, state))
        _write(frame, Path(output))
        return frame
    if Path(input_spec).suffix in (".csv", ".parquet", ".pq") or Path(input_spec).exists():
        features = _file_features(info, input_spec)
    else:
        features, dataset = _split_features(cfg, input_spec)
        info = {**describe_dataset(dataset), **{k: v for k, v in info.items() if v is not None}}
    if math.prod(features.shape[1:]) != math.prod(info["input_shape"]):
        raise ConfigError(f"INPUT: features of shape {tuple(features.shape[1:])} do not fit the "
                          f"model's input {tuple(info['input_shape'])}")  # fmt: skip
    model = build_model(cfg, info, state)
    batch = int(cfg.inference_batch_size)
    outputs = torch.cat([model(features[i : i + batch]) for i in range(0, len(features), batch)])
    frame = _decode(info, outputs.float())
    _write(frame, Path(output))
    return frame


def _write(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix.lower() in (".parquet", ".pq"):
        atomic_write(path, lambda f: frame.to_parquet(f, index=False))
    else:
        atomic_write(path, lambda f: frame.to_csv(f, index=False))


def _decode(info: dict[str, Any], outputs: torch.Tensor) -> pd.DataFrame:
    task, names = info["task"], info.get("class_names")
    if task == "classification":
        scores = torch.softmax(outputs, -1).numpy()
        labels = names or [str(i) for i in range(scores.shape[1])]
        frame = pd.DataFrame({"prediction": [labels[i] for i in scores.argmax(1)]})
    elif task == "multilabel":
        scores = torch.sigmoid(outputs).numpy()
        labels = names or [str(i) for i in range(scores.shape[1])]
        frame = pd.DataFrame({"prediction": [" ".join(labels[j] for j in np.flatnonzero(r > 0.5))
                                             for r in scores]})  # fmt: skip
    else:
        values = outputs.reshape(len(outputs), -1).numpy().astype(np.float64)
        if info.get("target_mean") is not None:
            values = values * np.asarray(info["target_std"]) + np.asarray(info["target_mean"])
        if values.shape[1] == 1:
            return pd.DataFrame({"prediction": values[:, 0]})
        names = info.get("target_names") or range(values.shape[1])
        return pd.DataFrame({f"prediction_{n}": values[:, j] for j, n in enumerate(names)})
    for j, label in enumerate(labels):
        frame[f"score_{label}"] = scores[:, j]
    return frame
