"""Read every run folder of an experiment into tidy DataFrames (through RunDir only)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sweeptrainer.components.metrics import higher_is_better
from sweeptrainer.config.flat import leaves
from sweeptrainer.errors import ConfigError, DamagedRunError
from sweeptrainer.io.lease import activity
from sweeptrainer.io.run_dir import RunDir
from sweeptrainer.maintenance import experiment_runs

# Config keys that never describe what a run trained.
IGNORED = ("results_dir", "experiment_id", "progress_bar", "postprocess")
OUT_DIR = "postprocessing"


@dataclass
class Experiment:
    """An experiment's runs as tables, and which config keys differ between runs."""

    root: Path
    runs: pd.DataFrame  # one row per run: run, status, varying config, results
    curves: pd.DataFrame  # every metrics.csv row, with run and varying config attached
    varying: list[str]  # flattened config keys whose values differ between runs
    config_keys: list[str]  # every flattened config key (to check --aggregate-by)
    run_dirs: dict[str, RunDir]
    curves_metrics: list[str]  # the metrics.csv columns
    tracking: str | None  # the tracking metric's name, e.g. accuracy
    higher_is_better: bool
    # metrics per group of the runs with `stratify`: run, varying config, split, column,
    # group, n, one column per metric (empty when no run has them)
    stratified: pd.DataFrame = field(default_factory=pd.DataFrame)
    run_tracking: dict[str, str] = field(default_factory=dict)  # run -> its tracking metric
    directions: dict[str, bool] = field(default_factory=dict)  # tracking metric -> higher?
    # every run's flattened config, indexed by run name (the report's header: dataset,
    # model, iterations, training_type)
    configs: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def out_dir(self) -> Path:
        return self.root / OUT_DIR


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` exists and, symbolic links resolved, lies inside ``root``: a run
    folder is untrusted, and a link in it must not make us read or link outside it."""
    try:
        return path.resolve(strict=True).is_relative_to(root.resolve(strict=True))
    except (OSError, RuntimeError):  # missing, unreadable, a loop of links
        return False


def flatten(data: dict[str, Any]) -> dict[str, Any]:
    """Nested config -> dotted keys (``optimizer.lr``); lists become their JSON text."""
    return {k: json.dumps(v) if isinstance(v, list) else v for k, v in leaves(data).items()}


def _state(run: RunDir, status: dict[str, Any]) -> str:
    state = status.get("state", "unknown")
    if state == "running" and not activity(run.path).running:
        return "killed"  # `running`, but no process here holds its lock, nor a fresh lease
    return state


def _run_row(
    run: RunDir, results: dict[str, Any], status: dict[str, Any], saved: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    config = {
        k: v
        for k, v in flatten(saved).items()
        if not k.endswith("_target_") and k.split(".")[0] not in IGNORED
    }
    row: dict[str, Any] = {"run": run.name, "status": _state(run, status)}
    row["best_iteration"] = results.get("best_iteration")
    row |= {f"dev_{k}": v for k, v in (results.get("dev") or {}).items()}
    row |= {f"test_{k}": v for k, v in (results.get("test") or {}).items()}
    row["train_time_s"] = results.get("train_time_s")
    row["error"] = status.get("error")
    row["tracking_metric"] = results.get("tracking_metric")
    row["tracking_direction"] = results.get("tracking_direction")
    if row["status"] == "pruned":  # final, without results.yaml: see _fill_pruned
        row["pruned_at"], row["reason"] = status.get("pruned_at"), status.get("reason")
        tracking = config.get("dataset.tracking_metric")
        row["tracking_metric"] = tracking if isinstance(tracking, str) else None
    return row, config


def _read_run(
    run: RunDir,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], Any]:
    """(results, runs-table row, flat config, metrics) of one run; a DamagedRunError when a
    file cannot be trusted: a damaged status, results or metrics file, a finished run
    without results.yaml or with a metrics.csv cut short. Every file is read through the
    run folder's readers (io/untrusted.py): a regular file only (a symbolic link is not
    followed), bounded, of the shape the tables rely on, else a DamagedRunError."""
    found = run.read_results()  # each file read once
    results, status, saved = found or {}, run.read_status() or {}, run.read_config() or {}
    row, config = _run_row(run, results, status, saved)
    metrics = run.read_metrics()
    if row["status"] == "finished":
        if found is None:
            raise DamagedRunError(run.no_results())
        if metrics is None:
            raise DamagedRunError(f"{run.metrics}: missing")
        if problem := run.missing_rows(metrics, status, saved, results):
            raise DamagedRunError(problem)
    return results, row, config, metrics


def _fill_pruned(row: dict[str, Any], metrics: Any, directions: dict[str, bool]) -> None:
    """A pruned run's best iteration and dev metrics there, from its metrics.csv (it has no
    results.yaml): shown beside the others, never aggregated (its score stops where the
    search stopped it)."""
    tracking = row.get("tracking_metric")
    column = f"dev_{tracking}"
    if metrics is None or not isinstance(tracking, str) or column not in metrics.columns:
        return
    scores = pd.to_numeric(metrics[column], errors="coerce").dropna()
    if scores.empty:
        return
    higher = directions.get(tracking, _higher_is_better(tracking, None))
    best = metrics.loc[scores.idxmax() if higher else scores.idxmin()]
    row["best_iteration"] = int(best["iteration"])
    row |= {c: best[c] for c in metrics.columns if c.startswith("dev_")}


def _directions(rows: list[dict[str, Any]]) -> dict[str, bool]:
    """Tracking metric -> higher is better, as results.yaml says (by the metric's name for
    a metric only pruned runs, without results, have)."""
    directions: dict[str, bool] = {}
    for row in rows:
        tracking, direction = row.get("tracking_metric"), row.get("tracking_direction")
        if isinstance(tracking, str) and (tracking not in directions or direction):
            directions[tracking] = _higher_is_better(tracking, direction)
    return directions


def _stratified_rows(run: RunDir, results: dict[str, Any]) -> list[dict[str, Any]]:
    """results.yaml's ``stratified`` (split -> column -> group -> metrics) as rows."""
    stratified = results.get("stratified") or {}
    rows = []
    for split, columns in stratified.items():
        for column, groups in (columns or {}).items():
            for group, values in (groups or {}).items():
                rows.append({"run": run.name, "split": split, "column": column,
                             "group": str(group), **(values or {})})  # fmt: skip
    return rows


def _varying(configs: pd.DataFrame) -> list[str]:
    """Columns with more than one value, without redundant ones: of columns equal in every
    run, the first (``optimizer.lr`` is ``learning_rate``); of a group's keys that change
    exactly when its ``id`` does (``augmentation.steps`` with ``augmentation.id``), the id."""
    varying: list[str] = []
    seen: list[str] = []
    # main keys first, so `learning_rate` is kept and its copy `optimizer.lr` dropped; then
    # each group's id before its other keys
    order = sorted(configs.columns, key=lambda c: ("." in c, not c.endswith(".id"), c))
    for column in order:
        values = configs[column].astype(str)
        if values.nunique(dropna=False) < 2:
            continue
        if any(values.equals(configs[other].astype(str)) for other in seen):
            continue  # e.g. optimizer.lr, always equal to learning_rate
        group_id = f"{column.split('.')[0]}.id"
        if "." in column and group_id in seen and _same_partition(values, configs[group_id]):
            continue
        seen.append(column)
        varying.append(column)
    return varying


def _same_partition(a: pd.Series, b: pd.Series) -> bool:
    """Whether two columns group the runs the same way (whatever their values)."""
    codes_a = pd.factorize(a.astype(str), use_na_sentinel=False)[0]
    codes_b = pd.factorize(b.astype(str), use_na_sentinel=False)[0]
    return bool((codes_a == codes_b).all())


def _higher_is_better(tracking: str | None, direction: Any) -> bool:
    """From results.yaml's tracking_direction; runs from before it existed used packaged
    metrics (or the loss, lower is better)."""
    if direction in ("max", "min"):
        return direction == "max"
    return higher_is_better(tracking) if tracking else True


def collect(experiment_dir: str | Path) -> Experiment:
    """Every run folder -> the runs table and the curves table."""
    runs = experiment_runs(experiment_dir)
    if not runs:
        raise ConfigError(f"EXPERIMENT_DIR: {str(experiment_dir)!r} has no runs yet")
    root = Path(experiment_dir)
    rows, configs, curves, groups = [], [], [], []
    pruned: dict[str, Any] = {}  # run -> metrics, of the pruned runs
    for run in runs:
        try:
            results, row, config, metrics = _read_run(run)
        except DamagedRunError as err:  # listed as damaged; the others are collected
            results, config, metrics = {}, {}, None
            row = {"run": run.name, "status": "damaged", "error": str(err)}
        rows.append(row)
        if row["status"] == "pruned":
            pruned[run.name] = metrics
        configs.append(config)
        groups += _stratified_rows(run, results)
        if metrics is not None and len(metrics):
            curves.append(metrics.assign(run=run.name))
    directions = _directions(rows)
    for row in rows:
        if row["run"] in pruned:
            _fill_pruned(row, pruned[row["run"]], directions)
    config_frame = pd.DataFrame(configs)
    varying = _varying(config_frame)
    table = pd.DataFrame(rows)
    front = ["run", "status", *varying]
    table = pd.concat([table, config_frame[varying]], axis=1)
    # results first, whatever the first run had (a pruned one: its dev metrics come last)
    rest = sorted(
        (c for c in table.columns if c not in front),
        key=lambda c: c != "best_iteration" and not c.startswith(("dev_", "test_")),
    )
    table = table[front + rest]
    run_tracking = dict(zip(table["run"], table["tracking_metric"], strict=True))
    trackings = table["tracking_metric"].dropna().unique().tolist()
    table = table.drop(columns=["tracking_metric", "tracking_direction"])
    tracking = trackings[0] if trackings else None
    higher = directions.get(tracking, True) if tracking else True
    curve_frame = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    metric_columns = [c for c in curve_frame.columns if c != "run"]
    if len(curve_frame):
        # attach the run's varying config; a key named like a metrics column (learning_rate:
        # the configured value vs the scheduled one per row) gets a _config suffix
        names = {k: f"{k}_config" if k in curve_frame.columns else k for k in varying}
        attached = table[["run", *varying]].rename(columns=names)
        curve_frame = curve_frame.merge(attached, on="run", how="left")
    stratified = pd.DataFrame(groups)
    if len(stratified):
        stratified = table[["run", *varying]].merge(stratified, on="run", how="inner")
    return Experiment(
        root=root,
        runs=table,
        curves=curve_frame,
        varying=varying,
        config_keys=list(config_frame.columns),
        run_dirs={r.name: r for r in runs},
        curves_metrics=metric_columns,
        tracking=tracking,
        higher_is_better=higher,
        stratified=stratified,
        run_tracking={k: v for k, v in run_tracking.items() if isinstance(v, str)},
        directions=directions,
        configs=config_frame.set_axis(table["run"].to_numpy()),
    )
