"""The best run's test outputs per class: precision, recall, F1 and a row-normalised
confusion matrix (classification runs with ``outputs/test.csv`` only), since an average
hides the class a model gets wrong."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeptrainer.errors import DamagedRunError
from sweeptrainer.postprocess.collect import Experiment, inside
from sweeptrainer.postprocess.plots import Figure, short

LABELS = {"target": str, "prediction": str}  # read as text: class names, or "0 1 1"


@dataclass
class ClassReport:
    """Per-class metrics of one run's test outputs."""

    run: str
    labels: list[str]
    counts: np.ndarray  # targets (rows) x predictions (columns)
    table: pd.DataFrame  # class, precision, recall, f1, support
    accuracy: float
    macro: dict[str, float]  # precision, recall, f1 averaged over classes


def class_report(experiment: Experiment, run: str | None) -> ClassReport | None:
    """The report of ``run``'s test outputs; None when it has none, or they are not single
    labels from the classes its scores name (regression, multilabel)."""
    if run is None or run not in experiment.run_dirs:
        return None
    folder = experiment.run_dirs[run].output("test").parent
    if not inside(folder, experiment.root):
        return None  # no outputs, or outputs/ a symbolic link out of the experiment
    try:  # a regular file only: a symbolic link is not followed
        outputs = experiment.run_dirs[run].read_output("test", dtype=LABELS)
    except DamagedRunError:
        return None
    if outputs is None:
        return None
    labels = [c.removeprefix("score_") for c in outputs.columns if c.startswith("score_")]
    if not labels or not {"target", "prediction"} <= set(outputs.columns):
        return None
    target, prediction = outputs["target"].astype(str), outputs["prediction"].astype(str)
    if not (target.isin(labels).all() and prediction.isin(labels).all()) or not len(outputs):
        return None  # multilabel ("0 1 1") or anything but one known class per sample
    codes = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=int)
    np.add.at(counts, (target.map(codes).to_numpy(), prediction.map(codes).to_numpy()), 1)
    hits = np.diag(counts).astype(float)
    support, predicted = counts.sum(axis=1), counts.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)  # never predicted: 0
        recall = np.where(support > 0, hits / support, np.nan)  # not in the test set: none
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    f1[np.isnan(recall)] = np.nan
    table = pd.DataFrame({"class": labels, "precision": precision, "recall": recall, "f1": f1,
                          "support": support})  # fmt: skip
    present = support > 0
    macro = {m: float(table.loc[present, m].mean()) for m in ("precision", "recall", "f1")}
    return ClassReport(run, labels, counts, table, float(hits.sum() / counts.sum()), macro)


def confusion_figures(report: ClassReport | None, out: Path) -> list[Figure]:
    """The confusion matrix, each row divided by its target count (a row sums to 1), with a
    colour bar; the cells say the share and, for up to 12 classes, the count."""
    if report is None:
        return []
    counts, labels = report.counts, report.labels
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.nan_to_num(counts / counts.sum(axis=1, keepdims=True))
    n = len(labels)

    def make(plt: Any) -> Any:
        side = min(13, max(4.5, 0.42 * n + 2.8))
        fig, ax = plt.subplots(figsize=(side + 1.2, side), layout="constrained")
        image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        fig.colorbar(image, ax=ax, label="share of the target's samples", shrink=0.85)
        if n <= 30:
            size = 10 if n <= 6 else 8 if n <= 12 else 6
            for (i, j), share in np.ndenumerate(shares):
                if counts[i, j] == 0:
                    continue  # blank: the eye finds the mistakes
                text = f"{share:.2f}" + (f"\n({counts[i, j]})" if n <= 12 else "")
                ax.text(j, i, text, ha="center", va="center", fontsize=size,
                        color="white" if share > 0.55 else "black")  # fmt: skip
        names = [short(label, 20) for label in labels]
        ticks = 9 if n <= 12 else 7
        ax.set_xticks(range(n), names, rotation=45, ha="right", fontsize=ticks)
        ax.set_yticks(range(n), names, fontsize=ticks)
        ax.set_xlabel("prediction")
        ax.set_ylabel("target")
        ax.set_title("test confusion matrix of the best run (rows sum to 1)", fontsize=10)
        return fig

    counted = " (and their count)" if n <= 12 else ""
    caption = (f"Test outputs of the best run ({report.run}): row = target class, column = "
               f"predicted class; a cell is the share of the row's samples{counted}, blank "
               "where there are none.")  # fmt: skip
    return [Figure(out / "confusion_matrix.png", make, None, caption, "classes")]
