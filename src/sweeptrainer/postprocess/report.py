"""``report.html``: one self-contained page (plots embedded, no network)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from sweeptrainer.postprocess.aggregate import Aggregated
from sweeptrainer.postprocess.collect import Experiment

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th { background: #f0f0f0; }
#aggregated tbody tr.best { background: #d9f2d9; font-weight: bold; }
tr.failed { background: #f8d7da; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
"""


def _table(frame: pd.DataFrame, table_id: str, row_class) -> str:
    """An HTML table; ``row_class(index, row)`` may name a CSS class for a row."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for i, (_, row) in enumerate(frame.iterrows()):
        cells = "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row)
        css = row_class(i, row)
        body.append(f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    rows = "".join(body)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}"></figure>'
    )


def _best_line(agg: Aggregated, best: dict) -> str:
    """One best configuration (one per tracking metric when runs of several are mixed)."""
    config = ", ".join(f"{k}={v}" for k, v in best.items() if k in agg.group_keys) or "all runs"
    column = agg.sort_column or best.get("ranked_by") or ""
    return (f"<p>Best configuration: <b>{html.escape(config)}</b> ({html.escape(column)} "
            f"{_fmt(best.get(column))} over {int(best['runs'])} run(s)).</p>")  # fmt: skip


def _stratified_section(stratified: pd.DataFrame | None) -> list[str]:
    """The test metrics per group (``stratify``), when the runs have them."""
    if stratified is None or stratified.empty:
        return []
    test = stratified[stratified["split"] == "test"]
    return ["<h2>Test metrics per group</h2>", _table(test, "stratified", lambda i, row: "")]


def render(
    experiment: Experiment,
    agg: Aggregated,
    plots: list[Path],
    stratified: pd.DataFrame | None = None,
) -> str:
    runs = experiment.runs
    counts = runs["status"].value_counts().to_dict()
    tally = ", ".join(f"{n} {state}" for state, n in counts.items())
    best = "".join(_best_line(agg, found) for found in agg.bests)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(experiment.root.name)}: sweeptrainer report</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Experiment {html.escape(experiment.root.name)}</h1>",
        f"<p>{len(runs)} runs: {html.escape(tally)}.</p>",
        best,
        "<h2>Aggregated</h2>",
        _table(agg.table, "aggregated", lambda i, row: "best" if i == 0 else ""),
        *_stratified_section(stratified),
        "<h2>Runs</h2>",
        _table(runs, "runs", lambda i, row: "failed" if row["status"] == "failed" else ""),
        "<h2>Plots</h2>",
        *(_image(p) for p in plots),
        # marks how many images the browser could decode (read by the report's test)
        "<script>window.addEventListener('load', () => { document.body.dataset.images = "
        "[...document.images].filter(i => i.naturalWidth > 0).length; });</script>",
        "</body></html>",
    ]
    return "\n".join(parts)
