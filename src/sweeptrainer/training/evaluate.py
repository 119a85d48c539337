"""Evaluation: per-sample outputs and losses of a split, decoded and scored.

Outputs stay on the device and are concatenated once; metrics are computed on
the decoded arrays, so nothing is synchronised per batch.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from sweeptrainer.components.metrics import Metric
from sweeptrainer.training.batch import BatchLayout
from sweeptrainer.training.batch_source import BatchSource
from sweeptrainer.training.distributed import Distributed


@dataclass
class SplitResult:
    """Everything one pass over a split produced."""

    loss: float
    metrics: dict[str, float]
    truth: np.ndarray
    prediction: np.ndarray
    scores: np.ndarray | None
    losses: np.ndarray
    index: np.ndarray | None = None  # the batches' sample ids (dataset.batch.index), if any


@contextmanager
def _per_sample(criterion: nn.Module):
    """Make a torch loss return per-sample values (``reduction='none'``) for a while."""
    original = getattr(criterion, "reduction", None)
    if original is not None:
        # nn.Module types its attributes as tensors and modules; a loss's reduction is a str
        criterion.reduction = "none"  # type: ignore[assignment]
    try:
        yield original is not None
    finally:
        if original is not None:
            criterion.reduction = original


def decode(dataset: Any, outputs: torch.Tensor, targets: torch.Tensor):
    """Model outputs and targets -> (truth, prediction, scores) in the dataset's terms."""
    task = dataset.task
    if task == "classification":
        scores = torch.softmax(outputs.float(), dim=-1)
        return targets.cpu().numpy(), scores.argmax(-1).cpu().numpy(), scores.cpu().numpy()
    if task == "multilabel":
        scores = torch.sigmoid(outputs.float())
        return (
            targets.cpu().numpy().astype(int),
            (scores > 0.5).cpu().numpy().astype(int),
            scores.cpu().numpy(),
        )
    # regression: (n,) for one target, (n, targets) for several, in the original units
    pred = outputs.float().reshape(len(outputs), -1).cpu().numpy().astype(np.float64)
    truth = targets.float().reshape(len(targets), -1).cpu().numpy().astype(np.float64)
    if getattr(dataset, "target_mean", None) is not None:
        std, mean = np.asarray(dataset.target_std), np.asarray(dataset.target_mean)
        pred, truth = pred * std + mean, truth * std + mean
    if pred.shape[1] == 1:
        pred, truth = pred[:, 0], truth[:, 0]
    return truth, pred, None


@torch.no_grad()
def evaluate(
    model: nn.Module,
    criterion: nn.Module,
    source: BatchSource,
    dataset: Any,
    metrics: list[Metric],
    layout: BatchLayout | None = None,
    on_step: Callable[[str, int, torch.Tensor | None], None] | None = None,
    dist: Distributed | None = None,
) -> SplitResult:
    """Run ``model`` over ``source`` in order; ``on_step(phase, batch_idx, loss)`` fires the
    step hooks (phase ``begin`` with loss None, then ``end``); None when nobody listens.

    ``dist``: one run across processes: each evaluates its part of the split, and every
    process gets the whole split's outputs, in sample order, to score."""
    model.eval()
    layout = layout or BatchLayout()
    outputs, targets, losses, ids = [], [], [], []
    order = None
    if dist is not None and dist.world > 1:
        order = torch.arange(*dist.part(source.n))
    with _per_sample(criterion) as per_sample:
        # per-sample losses of the whole split at once, unless a hook wants each batch's
        per_batch = on_step is not None or not per_sample
        for batch_idx, batch in enumerate(source.batches(order)):
            if on_step is not None:
                on_step("begin", batch_idx, None)
            inputs, y, index = layout.split(batch)
            out = inputs.call(model)
            outputs.append(out)
            targets.append(y)
            if index is not None:
                ids.append(index)
            if per_batch:
                losses.append(_sample_losses(criterion, out, y, per_sample))
            if on_step is not None:
                on_step("end", batch_idx, losses[-1].mean())
        all_outputs, all_targets = _cat(outputs), _cat(targets)
        if not per_batch and all_outputs is not None and all_targets is not None:
            losses = [_sample_losses(criterion, all_outputs, all_targets, per_sample)]
    if order is not None and dist is not None:  # the parts of every process, in order
        parts = dist.gather(_to_cpu((all_outputs, all_targets, _cat(losses), _ids(ids))))
        all_outputs, all_targets, all_loss, index = _joined(parts)  # type: ignore[arg-type]
        losses, ids = [all_loss], [index] if index is not None else []
    assert all_outputs is not None and all_targets is not None, "an empty split"
    all_losses = torch.cat(losses).float().cpu().numpy()
    truth, prediction, scores = decode(dataset, all_outputs, all_targets)
    values = {m.name: m(truth, prediction, scores) for m in metrics}
    loss = float(all_losses.mean())
    return SplitResult(loss, values, truth, prediction, scores, all_losses, _ids(ids))


def _cat(parts: list[torch.Tensor]) -> torch.Tensor | None:
    return torch.cat(parts) if parts else None


def _to_cpu(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(v.cpu() if isinstance(v, torch.Tensor) else v for v in values)


def _joined(parts: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The processes' (outputs, targets, losses, ids), each joined in rank order; a process
    with no samples (a split smaller than the world) sent Nones."""
    joined: list[Any] = []
    for column in zip(*parts, strict=True):
        present = [c for c in column if c is not None]
        if not present:
            joined.append(None)
        elif isinstance(present[0], torch.Tensor):
            joined.append(torch.cat(present))
        else:
            joined.append(np.concatenate(present))
    return tuple(joined)


def _sample_losses(
    criterion: nn.Module, outputs: torch.Tensor, y: torch.Tensor, per_sample: bool
) -> torch.Tensor:
    """One loss per sample; a criterion without ``reduction``: its batch mean for each."""
    loss = criterion(outputs, y)
    return loss.reshape(len(y), -1).mean(dim=1) if per_sample else loss.expand(len(y))


def _ids(parts: list[Any]) -> np.ndarray | None:
    """The sample ids of a split's batches as one array (tensors or lists of values)."""
    if not parts:
        return None
    if all(isinstance(p, torch.Tensor) for p in parts):
        return torch.cat([p.reshape(-1) for p in parts]).cpu().numpy()
    return np.asarray([v for p in parts for v in (p.tolist() if hasattr(p, "tolist") else p)])


def sample_info(dataset: Any, split: str) -> Any:
    """The dataset's per-sample columns of a split (file, speaker, ...), or None."""
    describe = getattr(dataset, "sample_info", None)
    return describe(split) if callable(describe) else None


def grouped_metrics(
    result: SplitResult, info: Any, columns: list[str], metrics: list[Metric]
) -> dict[str, dict[str, dict[str, float]]]:
    """Every metric per value of each of ``columns`` (``stratify``): column -> value ->
    {n, metric: value}. A metric that cannot be computed on a group (too few samples) is NaN."""
    import warnings

    out: dict[str, dict[str, dict[str, float]]] = {}
    for column in columns:
        groups = info[column].astype(str).to_numpy()
        out[column] = {}
        for value in sorted(set(groups)):
            mask = groups == value
            row: dict[str, float] = {"n": int(mask.sum())}
            for metric in metrics:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        scores = result.scores[mask] if result.scores is not None else None
                        row[metric.name] = metric(
                            result.truth[mask], result.prediction[mask], scores
                        )
                except Exception:
                    row[metric.name] = float("nan")
            out[column][value] = row
    return out


RESERVED_OUTPUT_COLUMNS = ("index", "target", "prediction", "loss")


def outputs_frame(result: SplitResult, dataset: Any, split: str | None = None) -> Any:
    """One row per sample: index, the dataset's per-sample columns (file, speaker, ...),
    target, prediction, loss (+ a score column per class)."""
    import pandas as pd

    names = getattr(dataset, "class_names", None)
    ids = result.index if result.index is not None else np.arange(len(result.losses))
    frame: dict[str, Any] = {"index": ids}
    info = sample_info(dataset, split) if split is not None else None
    if info is not None and len(info) == len(result.losses):
        for column in info.columns:
            name = f"{column}_" if column in RESERVED_OUTPUT_COLUMNS else str(column)
            frame[name] = info[column].to_numpy()
    if dataset.task == "classification" and names:
        frame["target"] = [names[i] for i in result.truth]
        frame["prediction"] = [names[i] for i in result.prediction]
    elif dataset.task == "multilabel":
        frame["target"] = [" ".join(map(str, row)) for row in result.truth]
        frame["prediction"] = [" ".join(map(str, row)) for row in result.prediction]
    elif result.truth.ndim == 2:  # several regression targets: a column pair each
        targets = getattr(dataset, "target_names", None) or range(result.truth.shape[1])
        for j, name in enumerate(targets):
            frame[f"target_{name}"] = result.truth[:, j]
            frame[f"prediction_{name}"] = result.prediction[:, j]
    else:
        frame["target"], frame["prediction"] = result.truth, result.prediction
    frame["loss"] = result.losses
    if result.scores is not None:
        labels = names or [str(i) for i in range(result.scores.shape[1])]
        for j, label in enumerate(labels):
            frame[f"score_{label}"] = result.scores[:, j]
    return pd.DataFrame(frame)
