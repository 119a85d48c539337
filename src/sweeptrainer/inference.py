"""`trainer inference RUN_DIR INPUT OUTPUT`: predictions with a run's best state.

INPUT is, for a run on files (the ``Files`` dataset), a folder of new files or a table
listing them (its file column, paths relative to the table's folder), each made into a
sample by the run's own loader, preprocessing and transform; for a run of a dataset class
of the user's that defines ``load(path)``, a file or a folder of files, each read by that
method; for a run on a table, a CSV/Parquet file with the dataset's feature columns
(preprocessed with the statistics the run saved); for any run, ``NAME:SPLIT`` for a split
of a dataset option (the run's own dataset config when NAME is its id). OUTPUT gets one row
per input: the file (for files), the prediction (class names for classification) and one
score column per class.

Run from the user's project folder, inference builds what a start-up config of that
project builds (its classes, its functions given with ``_partial_``, its modules through
links inside it). A run folder is still untrusted input: before anything is built from its
config, every ``_target_`` of its model and dataset is checked (:func:`check_run_config`),
and nothing is imported from the results folder it lies in.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from sweeptrainer.config.instantiate import instantiate
from sweeptrainer.errors import ConfigError, DamagedRunError
from sweeptrainer.io.atomic import atomic_write
from sweeptrainer.io.run_dir import RunDir
from sweeptrainer.training.checkpoint import CorruptStateError, describe_dataset, load_state_file


def load_config(run_dir: Path, what: str = "RUN_DIR") -> DictConfig:
    """A run's resolved ``config.yaml``; ConfigError naming ``what`` when it is no run, or
    holds a symbolic link (:func:`check_links`)."""
    run = RunDir(run_dir)
    no_run = ConfigError(f"{what}: {str(run_dir)!r} is not a run folder (no config.yaml)")
    if not run_dir.is_symlink() and not (run.config.is_file() or run.config.is_symlink()):
        raise no_run  # before walking what may be a whole results folder for links
    check_links(run_dir, what)
    if not run.config.is_file():
        raise no_run
    from sweeptrainer.io.untrusted import require

    try:  # the safe loader (no tags that build objects), bounded, its shape checked
        data = run.read_config()
        if data is None:  # gone since
            raise no_run
        cfg = OmegaConf.create(data)
        check_run_config(cfg, run.config)  # first: a target that would run code is said so
        require(data, run.config, ("dataset.id", "model.id", "inference_batch_size"))
    except DamagedRunError as err:
        raise ConfigError(f"damaged: {err}") from None
    return cfg


# modules whose classes a run folder's nested steps may name besides sweeptrainer's own
TRANSFORM_MODULES = ("torchvision.transforms", "torchaudio.transforms")


def check_run_config(cfg: DictConfig, path: Path) -> None:
    """Every ``_target_`` of what is built from a run folder's config (its model and its
    dataset, with what they nest) checked before anything is built from it: a run folder is
    untrusted input, and may have been edited to run code. The other groups (optimizer,
    callbacks, loggers, ...) are never built from a run folder's config.

    A target may be, anywhere, a class or function marked with :func:`sweeptrainer.builds`
    of the expected kind (sweeptrainer's packaged components carry the mark: its datasets,
    models, transforms, loaders, collate and augmentation classes); at the top of the model,
    a ``torch.nn.Module`` class; for the dataset and every nested node (a loader, a step, a
    collate function), a torchvision/torchaudio transform or a class of the user's project
    (the current folder; links inside it followed, none out of it), or a function of the
    project given with ``_partial_: true`` (bound, then called on samples as training calls
    it). Never anything of Python's own library, nor a module under the results folder the
    run lies in (checked before it is imported: importing runs a module's code), nor any
    other class or function of sweeptrainer's (some have side effects when built: a log
    file handler opens its file): nothing is called before its kind is known."""
    untrusted = results_areas(path.parent)
    try:
        for key, kind in (("model", torch.nn.Module), ("dataset", None)):
            if key in cfg:
                _check_tree(cfg[key], key, kind, untrusted)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def results_areas(run_dir: Path) -> list[Path]:
    """The folders nothing is imported from for a run folder's config: the results folder
    the run lies in (``<results_dir>/<experiment>/training/<run>``: every experiment there is
    a run folder's data, never code), or its experiment folder where the results folder holds
    the current folder (``results_dir: .``), or the run folder itself outside that layout;
    for the run folder as given and, where that is a link, for where it leads."""
    areas = []
    for run in (Path(os.path.abspath(run_dir)), run_dir.resolve()):
        if run.parent.name != "training" or len(run.parents) < 3:
            areas.append(run)
            continue
        results = run.parents[2]
        holds_here = Path.cwd().resolve().is_relative_to(results.resolve())
        areas.append(run.parents[1] if holds_here else results)
    return list(dict.fromkeys(areas))


def _check_tree(node: Any, key: str, expected: type | None, untrusted: list[Path]) -> None:
    """``node`` and every node in it: see :func:`check_run_config`. ``dataset.metrics`` are
    functions by design, never built from a run folder's config, so they are left out."""
    if isinstance(node, DictConfig) and node.get("_target_") is not None:  # null: nothing built
        _check_target(node, key, expected, untrusted)
    children: Any = (
        node.items() if isinstance(node, DictConfig) else enumerate(node)
        if isinstance(node, ListConfig) else ()
    )  # fmt: skip
    for name, child in children:
        if key == "dataset" and name == "metrics":
            continue
        if isinstance(child, DictConfig | ListConfig):
            label = f"{key}.{name}" if isinstance(name, str) else f"{key}[{name}]"
            _check_tree(child, label, None, untrusted)


def _python_itself(module: str) -> bool:
    import sys

    top = module.split(".")[0]
    return top in sys.stdlib_module_names or top == "builtins"


def _located(path: Any, key: str, untrusted: list[Path]) -> tuple[Any, str]:
    """The target ``path`` names, and its module; imported only after its modules were found
    to be neither Python's own nor under a results folder of ``untrusted`` (importing runs a
    module)."""
    import inspect

    from sweeptrainer.config.instantiate import locate
    from sweeptrainer.usercode import import_sources, within

    if not isinstance(path, str) or not path:
        raise ConfigError(f"{key}._target_: expected a dotted import path, got {path!r}")
    if _python_itself(path):  # refused before anything is imported
        raise ConfigError(
            f"{key}._target_: {path!r} is part of Python itself; a run folder's config may "
            "only name component classes, and it is not imported or called"
        )
    inside = [(p, a) for p in import_sources(path) for a in untrusted if within(p, a)]
    if inside:
        source, area = inside[-1]
        raise ConfigError(
            f"{key}._target_: {path!r} would be imported from {str(source)!r}, inside the "
            f"results folder {str(area)!r}; a run folder's config never runs code from "
            "there, and it was not imported"
        )
    target = locate(path, key)
    module = getattr(inspect.getmodule(target), "__name__", None) or ""
    if _python_itself(module):  # reached through another module's import
        raise ConfigError(
            f"{key}._target_: {path!r} is {module}'s (part of Python itself); a run folder's "
            "config may only name component classes, and it was not called"
        )
    return target, module


def _check_target(node: DictConfig, key: str, expected: type | None, untrusted: list[Path]) -> None:
    """One ``_target_`` of a run folder's config: see :func:`check_run_config`."""
    import inspect

    from sweeptrainer.config.instantiate import build_mark
    from sweeptrainer.usercode import defined_in_project

    path = node.get("_target_")
    target, module = _located(path, key, untrusted)
    mark = build_mark(target)
    if mark is not None and (expected is None or issubclass(mark, expected)):
        return
    if module.split(".")[0] == "sweeptrainer":  # only what is meant to be built from a config
        if mark is None:
            what = "class" if inspect.isclass(target) else "function"
            raise ConfigError(
                f"{key}._target_: {path!r} is a {what} of sweeptrainer's that is not one of "
                "its components (those carry @sweeptrainer.builds); a run folder's config "
                "builds only components, so it was not called"
            )
        _refuse(key, path, expected)  # a component of another kind (a dataset as the model)
    if inspect.isclass(target) and expected is not None and issubclass(target, expected):
        return
    ours = defined_in_project(target, untrusted)
    transform = module.startswith(TRANSFORM_MODULES)
    if expected is None and inspect.isclass(target) and (ours or transform):
        return
    if expected is None and ours and node.get("_partial_") is True:
        return  # a function of the project, bound: called on samples, as training calls it
    if ours and inspect.isfunction(target):
        kind = "nn.Module" if expected is not None else "object"
        bound = "" if expected is not None else ", or as a step or loader with _partial_: true"
        raise ConfigError(
            f"{key}._target_: {path!r} is a function of your project that would be called while "
            "the config is built; a run folder's config takes such a factory only when marked "
            f"with @sweeptrainer.builds({kind}){bound}, so it was not called"
        )
    _refuse(key, path, expected)


def _refuse(key: str, path: str, expected: type | None) -> NoReturn:
    wanted = f"{expected.__name__} class" if expected is not None else "component class"
    raise ConfigError(
        f"{key}._target_: {path!r} is not a {wanted} (sweeptrainer's, your project's, or "
        "one marked with @sweeptrainer.builds); a run folder's config builds only those, so it "
        "was not called"
    )


def check_links(run_dir: Path, what: str = "RUN_DIR") -> None:
    """A ConfigError when the run folder holds a symbolic link (its ``config.yaml``, its
    ``states/`` or ``best.pt``, ...): sweeptrainer never makes one there, and reading
    through it could read another run's (or anyone's) file; a resume refuses such a run
    folder too, and a run folder that is itself a link."""
    if run_dir.is_symlink():
        raise ConfigError(
            f"{what}: {str(run_dir)!r} is a symbolic link (to {os.readlink(run_dir)!r}); "
            "inference reads a run folder as a resume does, never through a link: give the "
            "folder it leads to, or copy it"
        )
    where = RunDir(run_dir).first_link()
    if where is not None:
        raise ConfigError(
            f"{what}: {str(where)!r} is a symbolic link (to {os.readlink(where)!r}), which "
            "sweeptrainer never makes in a run folder; inference reads nothing through "
            "it: remove the link, or copy the run folder without it"
        )


def load_best(run_dir: Path, cfg: DictConfig, what: str = "RUN_DIR") -> dict[str, Any]:
    """A run's best state (``weights_only``); ConfigError when it has none, it is damaged, or
    it is the state of another config than the run's (:func:`run_hashes`): a ``best.pt``
    copied in from another run, which a resume refuses too. ``cfg``: the run's config.yaml
    (:func:`load_config`)."""
    from sweeptrainer.training.checkpoint import belongs

    run = RunDir(run_dir)
    if not run.state("best").is_file():
        raise ConfigError(f"{what}: {str(run_dir)!r} has no states/best.pt (did it train?)")
    try:
        state = load_state_file(run.state("best"))
    except CorruptStateError as err:
        raise ConfigError(f"{what}: states/best.pt is unreadable: {err}") from None
    hashes = run_hashes(run, cfg)
    if not any(belongs(state, "config_hash", expected) for expected in hashes):
        raise ConfigError(
            f"{what}: {str(run.state('best'))!r} is the state of another config (hash "
            f"{state.get('config_hash')}; the run's {' and '.join(hashes)}): "
            "copied in from another run? Not used, as a resume would not use it; predict "
            "with the run it comes from"
        )
    return state


def run_hashes(run: RunDir, cfg: DictConfig) -> list[str]:
    """The config hashes a state of the run may record: the one its ``status.yaml`` records
    (what a resume compares a state with), and that of its ``config.yaml`` as it is now (a
    run folder without a status, or one whose config was edited by hand). A ConfigError
    when there is neither (no status, and a config whose interpolations do not resolve)."""
    from omegaconf.errors import OmegaConfBaseException

    from sweeptrainer.config.naming import config_hash

    hashes = []
    try:
        recorded = (run.read_status() or {}).get("config_hash")
    except DamagedRunError:  # its config.yaml's hash then
        recorded = None
    if isinstance(recorded, str):
        hashes.append(recorded)
    try:
        hashes.append(config_hash(cfg))
    except OmegaConfBaseException as err:  # a key of it that does not resolve
        if not hashes:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ConfigError(
                f"{run.config}: {first}; no status.yaml either: states/best.pt cannot be "
                "checked to be this run's, so it is not used"
            ) from None
    return list(dict.fromkeys(hashes))  # one, when the status records the config's own


def _load(run_dir: Path) -> tuple[DictConfig, dict[str, Any]]:
    cfg = load_config(run_dir)
    return cfg, load_best(run_dir, cfg)


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


def _predict_split(
    cfg: DictConfig, info: dict[str, Any], state: dict[str, Any], spec: str
) -> pd.DataFrame:
    """``NAME:SPLIT``: the dataset built from its config (the run's own when NAME is its id,
    else the current project's option NAME) through its own code, as training builds it;
    its split's samples batched, collated and given to the model as training does."""
    from sweeptrainer.data.collate import build_collate, stack
    from sweeptrainer.training.batch import BatchError, BatchLayout, Inputs

    name, _, split = spec.partition(":")
    if split not in ("train", "dev", "test"):
        raise ConfigError(f"INPUT: {spec!r}: expected NAME:SPLIT with SPLIT train, dev or test")
    node = cfg.dataset
    if name != cfg.dataset.id:
        from sweeptrainer.config.compose import ConfigSources, compose, task_config

        with ConfigSources.find(None, None, Path.cwd()) as sources:
            node = task_config(compose(sources, [f"dataset={name}"])).dataset
    dataset = instantiate(node, "dataset")
    part = getattr(dataset, split, None)
    if part is None or not hasattr(part, "__getitem__") or not hasattr(part, "__len__"):
        raise ConfigError(
            f"INPUT: {spec!r}: {node.get('_target_')} built no {split!r} split (expected a "
            f"torch dataset of samples as its attribute {split})"
        )
    info = {**describe_dataset(dataset), **{k: v for k, v in info.items() if v is not None}}
    batch: Any = OmegaConf.to_container(node.batch, resolve=True) if node.get("batch") else {}
    layout = BatchLayout.from_config(batch)
    collate = build_collate(batch.get("collate")) or stack
    tensors = getattr(part, "tensors", None)  # a TensorDataset: sliced, not sample by sample
    if tensors is not None and layout.plain:
        shape = tuple(tensors[0].shape[1:])
        if math.prod(shape) != math.prod(info["input_shape"]):
            raise ConfigError(f"INPUT: features of shape {shape} do not fit the model's "
                              f"input {tuple(info['input_shape'])}")  # fmt: skip
    model = build_model(cfg, info, state)
    size, outputs = int(cfg.inference_batch_size), []
    for start in range(0, len(part), size):
        stop = min(start + size, len(part))
        if tensors is not None and layout.plain:
            inputs = Inputs((tensors[0][start:stop],), {})
        else:
            try:
                inputs = layout.split(collate([part[i] for i in range(start, stop)]))[0]
            except (BatchError, ValueError) as err:
                raise ConfigError(f"INPUT: {spec!r}: {err}") from None
        outputs.append(_call(model, inputs, spec))
    return _decode(info, torch.cat(outputs).float())


def _call(model: Any, inputs: Any, what: str) -> torch.Tensor:
    """The model's outputs for one batch; a ConfigError naming the input when it fails."""
    try:
        out: torch.Tensor = inputs.call(model)
    except Exception as err:
        raise ConfigError(
            f"INPUT: the run's model cannot take the inputs of {what!r}: "
            f"{type(err).__name__}: {err}"
        ) from None
    return out


def _dataset_loader(cfg: DictConfig) -> tuple[str, Any] | None:
    """(the class's name, its ``load``) when the run's dataset is a class of the user's
    that defines ``load(path)``: a static or class method is called on the class, a plain
    method on the dataset built from the run's config. None otherwise."""
    import inspect

    from sweeptrainer.config.instantiate import locate

    path = cfg.dataset.get("_target_")
    target = locate(path, "dataset") if isinstance(path, str) and path else None
    load = getattr(target, "load", None)
    if not inspect.isclass(target) or not callable(load):
        return None
    if isinstance(inspect.getattr_static(target, "load"), staticmethod | classmethod):
        return path, load  # needs no dataset: none is built
    return path, instantiate(cfg.dataset, "dataset").load


def _predict_loaded(
    cfg: DictConfig, info: dict[str, Any], state: dict[str, Any], spec: str, loader: Any
) -> pd.DataFrame:
    """New files read by the dataset class's own ``load(path)``: one sample's inputs each (a
    tensor, or a dict of tensors passed to the model by name), batched as the run batched
    (its ``batch.collate``). A file ``load`` fails on is skipped and named, with why."""
    from sweeptrainer.data.collate import build_collate, stack
    from sweeptrainer.training.batch import Inputs

    name, load = loader
    source = Path(spec)
    if source.is_dir():
        root = source
        names = sorted(
            str(p.relative_to(source))
            for p in source.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(source).parts)
        )
        if not names:
            raise ConfigError(f"INPUT: no files in folder {spec!r}")
    elif source.is_file():
        root, names = source.parent, [source.name]
    else:
        raise ConfigError(
            f"INPUT: {spec!r} does not exist; expected a file or a folder of files (read by "
            f"{name}.load), or NAME:SPLIT"
        )
    model = build_model(cfg, info, state)
    collate = build_collate((cfg.dataset.get("batch") or {}).get("collate")) or stack
    size, outputs = int(cfg.inference_batch_size), []
    read: list[str] = []
    skipped: list[tuple[str, str]] = []
    pending: list[tuple[str, Any]] = []

    def flush() -> None:
        try:
            batch = collate([(x, torch.zeros(())) for _, x in pending])[0]
        except Exception as err:
            raise ConfigError(f"INPUT: the files of {spec!r} make no batch: {err}") from None
        inputs = Inputs((), dict(batch)) if isinstance(batch, dict) else Inputs((batch,), {})
        outputs.append(_call(model, inputs, spec))
        read.extend(file for file, _ in pending)
        pending.clear()

    for file in names:
        try:
            x = load(root / file)
            x = x if isinstance(x, dict) else torch.as_tensor(x)
        except Exception as err:
            first = (str(err).strip().splitlines() or [""])[0][:80]
            skipped.append((file, f"{name}.load failed: {type(err).__name__}: {first}"))
            continue
        pending.append((file, x))
        if len(pending) == size:
            flush()
    if pending:
        flush()
    if not read:
        file, why = skipped[0]
        raise ConfigError(f"INPUT: no file of {spec!r} could be read; {file}: {why}")
    frame = _decode(info, torch.cat(outputs).float())
    frame.insert(0, "file", read)
    frame.attrs["skipped"] = skipped  # said, not dropped
    return frame


def _no_reader(cfg: DictConfig, spec: str) -> ConfigError:
    target, name = cfg.dataset.get("_target_"), cfg.dataset.get("id")
    return ConfigError(
        f"INPUT: {spec!r}: this run's dataset ({target}) reads no new files: it is no Files "
        "dataset, records no feature names and statistics (a table's) and its class "
        f"defines no load(path). Give a split of it as NAME:SPLIT (e.g. {name}:test), or "
        f"define a method load(self, path) on {target} that returns one sample's inputs "
        "read from a file (docs/data.md, Inference)"
    )


def _file_features(info: dict[str, Any], path: str) -> torch.Tensor:
    names = info["feature_names"]
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


def _new_files(info: dict[str, Any], spec: str) -> tuple[Path, list[str], list[tuple[str, str]]]:
    """INPUT for a run on files: (root, file names relative to it, the folder's files no
    loader reads with why), from a folder (hidden folders such as the cache left out) or a
    table."""
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
        return source, names, [(n, "no loader") for n in found if n not in set(names)]
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
    pipeline = FilePipeline.from_config(cfg.dataset, image_mode=info.get("image_mode"))
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
    """Write predictions for INPUT to OUTPUT; return them. ``frame.attrs["skipped"]``: the
    (file, why) of the files of INPUT that were not predicted."""
    check_output(Path(output), Path(run_dir))
    cfg, state = _load(Path(run_dir))
    info = state.get("dataset") or {}
    if ":" in input_spec and not Path(input_spec).exists():
        frame = _predict_split(cfg, info, state, input_spec)
    elif info.get("file_column"):  # a run on files: new files through its pipeline
        frame = _predict_files(cfg, info, input_spec, build_model(cfg, info, state))
    elif (loader := _dataset_loader(cfg)) is not None:  # a class of the user's with load()
        frame = _predict_loaded(cfg, info, state, input_spec, loader)
    elif info.get("feature_names") and info.get("feature_mean") is not None:  # a table's
        features = _file_features(info, input_spec)
        if math.prod(features.shape[1:]) != math.prod(info["input_shape"]):
            raise ConfigError(f"INPUT: features of shape {tuple(features.shape[1:])} do not fit "
                              f"the model's input {tuple(info['input_shape'])}")  # fmt: skip
        model = build_model(cfg, info, state)
        size = int(cfg.inference_batch_size)
        outputs = [model(features[i : i + size]) for i in range(0, len(features), size)]
        frame = _decode(info, torch.cat(outputs).float())
    else:
        raise _no_reader(cfg, input_spec)
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
