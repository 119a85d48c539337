"""``report.html``: one self-contained page (plots embedded, script and style inline, no
network), readable at any window width; links to the run folders are relative, so the
page keeps working when the experiment folder is moved."""

from __future__ import annotations

import base64
import os
import struct
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from sweeptrainer.postprocess import tables
from sweeptrainer.postprocess.aggregate import Aggregated
from sweeptrainer.postprocess.classes import ClassReport
from sweeptrainer.postprocess.collect import Experiment, inside
from sweeptrainer.postprocess.curves import unit
from sweeptrainer.postprocess.page import SCRIPT, STYLE
from sweeptrainer.postprocess.plots import Figure
from sweeptrainer.postprocess.search import Searches, search_section
from sweeptrainer.postprocess.tables import esc, fmt

SECTION_TITLES = {
    "configurations": ("hyperparameters", "Hyper-parameters"),
    "curves": ("curves", "Learning curves"),
}


def _href(path: Path, base: Path, folder: bool = False) -> str:
    """``path`` relative to ``base`` as a URL (each part quoted: run names are untrusted)."""
    parts = Path(os.path.relpath(path, base)).parts
    return "/".join(quote(part, safe="") for part in parts) + ("/" if folder else "")


def links(experiment: Experiment) -> dict[str, tuple[str | None, str | None]]:
    """Each run's folder and ``train.log`` as links relative to the report; none where the
    target is missing or, symbolic links resolved, outside the experiment."""
    out: dict[str, tuple[str | None, str | None]] = {}
    base = experiment.out_dir
    for name, run in experiment.run_dirs.items():
        folder = _href(run.path, base, folder=True) if inside(run.path, experiment.root) else None
        log = run.log
        ok = folder is not None and log.is_file() and inside(log, experiment.root)
        out[name] = (folder, _href(log, base) if ok else None)
    return out


def _values(experiment: Experiment, key: str) -> list[str]:
    configs = experiment.configs
    if key not in configs.columns:
        return []
    return [fmt(v) for v in dict.fromkeys(configs[key].dropna().tolist())]


def _listing(values: list[str], limit: int = 4) -> str:
    more = f" +{len(values) - limit} more" if len(values) > limit else ""
    return ", ".join(values[:limit]) + more


def _facts(experiment: Experiment) -> str:
    """Dataset, model, iterations, runs and the tracking metric, as a definition list."""
    runs = experiment.runs
    tally = ", ".join(f"{n} {state}" for state, n in runs["status"].value_counts().items())
    lengths = []
    if "iterations" in experiment.configs.columns:
        name = unit(experiment)
        for n in dict.fromkeys(experiment.configs["iterations"].dropna().tolist()):
            plural = "" if fmt(n) == "1" else "s"
            lengths.append(fmt(n) if name == "iteration" else f"{fmt(n)} {name}{plural}")
    facts = [("dataset", _listing(_values(experiment, "dataset.id"))),
             ("model", _listing(_values(experiment, "model.id"))),
             ("iterations", _listing(lengths)), ("runs", f"{len(runs)} ({tally})")]  # fmt: skip
    directions = experiment.directions or (
        {experiment.tracking: experiment.higher_is_better} if experiment.tracking else {}
    )
    ranked = [f"dev {t} ({'higher' if higher else 'lower'} is better)"
              for t, higher in directions.items()]  # fmt: skip
    facts.append(("ranked by", "; ".join(ranked)))
    items = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in facts if v)
    return f'<dl class="facts">{items}</dl>'


def _bands(experiment: Experiment, agg: Aggregated) -> str:
    """What ``±`` and the bands mean: mean ± std over the n runs of a configuration."""
    counts = pd.to_numeric(agg.table["runs"], errors="coerce").dropna() if len(agg.table) else []
    if not len(counts):
        return "No finished runs yet: nothing is aggregated."
    low, high = int(min(counts)), int(max(counts))
    if high <= 1:
        return "Each configuration has one finished run: no ± and no bands."
    over = [k for k in experiment.varying if k not in agg.group_keys]
    n = f"n = {low}" if low == high else f"n = {low} to {high}"
    what = ("seeds" if over == ["seed"] else
            f"runs (differing in {', '.join(over)})" if over else "runs")  # fmt: skip
    return (f"Mean ± std: over the {n} {what} of each configuration; in the aggregated "
            "table at each run's best iteration, in the learning curves as the band around "
            "each configuration's mean line.")  # fmt: skip


def _pruned(experiment: Experiment) -> str:
    """That pruned runs are not aggregated: their scores stop where the search cut them."""
    pruned = int((experiment.runs["status"] == "pruned").sum())
    if not pruned:
        return ""
    return (f" {pruned} run(s) pruned by a search are left out of the aggregates and the "
            "means (their results, from metrics.csv up to where they were pruned, are in the "
            "runs table; their learning curves dotted).")  # fmt: skip


def _best_line(agg: Aggregated, best: dict) -> str:
    """One best configuration (one per tracking metric when runs of several are mixed)."""
    config = ", ".join(f"{k}={fmt(v)}" for k, v in best.items() if k in agg.group_keys)
    column = agg.sort_column or best.get("ranked_by") or ""
    return (f"<p>Best configuration: <b>{esc(config or 'all runs')}</b> ({esc(column)} "
            f"{esc(fmt(best.get(column)))} over {int(best['runs'])} run(s)).</p>")  # fmt: skip


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    return struct.unpack(">II", data[16:24])


def _figure(figure: Figure) -> str:
    data = figure.path.read_bytes()
    size = _png_size(data)
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    alt = figure.caption or figure.path.stem
    source = base64.b64encode(data).decode("ascii")
    caption = f"<figcaption>{esc(figure.caption)}</figcaption>" if figure.caption else ""
    # as wide as its image (the caption wraps under it), so that narrow figures sit side by
    # side on a wide window; never wider than the window
    width = f' style="width: {size[0]}px"' if size else ""
    return (f'<figure{width}><img alt="{esc(alt)}"{dims} src="data:image/png;base64,{source}">'
            f"{caption}</figure>")  # fmt: skip


def _classes(report: ClassReport | None, figures: list[Figure], link: str | None) -> list[str]:
    """Per-class precision, recall and F1 of the best run, beside its confusion matrix."""
    if report is None:
        return []
    columns = ("class", "precision", "recall", "f1", "support")
    rows = [("", [tables.cell(r[c]) for c in columns]) for r in report.table.to_dict("records")]
    macro = [tables.cell(report.macro[m]) for m in ("precision", "recall", "f1")]
    total = int(report.counts.sum())
    foot = [[tables.cell("macro average"), *macro, tables.cell(total)],
            [tables.cell("accuracy"), tables.cell(""), tables.cell(""),
             tables.cell(report.accuracy), tables.cell(total)]]  # fmt: skip
    headers = [tables.header(c) for c in columns]
    run = f'<a href="{esc(link)}">{esc(report.run)}</a>' if link else esc(report.run)
    return [
        '<h2 id="classes-title">Best run per class</h2>',
        f"<p>Test outputs of the best run ({run}), {total} samples: precision, recall and F1 "
        "per class (macro average over the classes in the test set).</p>",
        '<div class="panels"><div>',
        tables.table("classes", headers, rows, foot),
        "</div>",
        *(_figure(f) for f in figures),
        "</div>",
    ]


def _ids(name: str, count: int) -> list[str]:
    """``name`` for the first table, ``name-2``, ... for the next (one per ranking)."""
    return [name if i == 0 else f"{name}-{i + 1}" for i in range(count)]


def _aggregated_tables(agg: Aggregated) -> list[str]:
    """The aggregated table; one per tracking metric when runs of several are ranked
    apart (each with only its own metrics, so that it fits the window)."""
    frame = agg.table
    if "ranked_by" not in frame.columns:
        parts = [("", frame)]
    else:
        parts = [(f"Ranked by {by}", part) for by, part in frame.groupby("ranked_by", sort=False)]
    out = []
    for table_id, (title, part) in zip(_ids("aggregated", len(parts)), parts, strict=True):
        headers, rows = tables.aggregated_rows(part, agg.group_keys)
        out.append(tables.table(table_id, headers, rows, caption=esc(title)))
    return out


def _runs_tables(
    experiment: Experiment, keys: list[str], run_links: dict[str, tuple[str | None, str | None]]
) -> list[str]:
    """The runs table; one per tracking metric when the runs have several (runs without
    results last)."""
    runs = experiment.runs
    tracking = runs["run"].map(experiment.run_tracking).fillna("")
    kinds = list(dict.fromkeys(sorted(tracking, key=lambda t: t == "")))
    if len(kinds) <= 1:
        parts = [("", runs)]
    else:
        parts = [(f"Tracked by {kind}" if kind else "Without results", runs[tracking == kind])
                 for kind in kinds]  # fmt: skip
    out = []
    for table_id, (title, part) in zip(_ids("runs", len(parts)), parts, strict=True):
        headers, rows = tables.runs_rows(part, keys, run_links)
        out.append(tables.table(table_id, headers, rows, caption=esc(title)))
    return out


def render(
    experiment: Experiment,
    agg: Aggregated,
    figures: list[Figure],
    stratified: pd.DataFrame | None = None,
    classes: ClassReport | None = None,
    searches: Searches | None = None,
) -> str:
    """The whole page; ``figures`` are drawn already (their PNGs are embedded)."""
    run_links = links(experiment)
    keys = [*agg.group_keys, *(k for k in experiment.varying if k not in agg.group_keys)]
    nav = [("aggregated-title", "Aggregated")]
    sections: list[str] = []
    for section, (anchor, title) in SECTION_TITLES.items():
        drawn = [f for f in figures if f.section == section]
        if drawn:
            nav.append((anchor, title))
            figures_html = "".join(map(_figure, drawn))
            sections += [
                f'<h2 id="{anchor}">{title}</h2>',
                f'<div class="panels">{figures_html}</div>',
            ]
    search = search_section(searches or Searches(), _figure, run_links)
    if search:
        nav.append(("search", "Search"))
        sections += search
    if classes is not None:
        nav.append(("classes-title", "Per class"))
        class_figures = [f for f in figures if f.section == "classes"]
        sections += _classes(classes, class_figures, run_links.get(classes.run, (None,))[0])
    if stratified is not None and not stratified.empty:
        nav.append(("groups", "Per group"))
        test = stratified[stratified["split"] == "test"]
        sections += ['<h2 id="groups">Test metrics per group</h2>',
                     tables.frame_table(test, "stratified")]  # fmt: skip
    nav.append(("runs-title", "Runs"))
    name = esc(experiment.root.resolve().name or experiment.root)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{name}: sweeptrainer report</title><style>{STYLE}</style></head><body><main>",
        f"<h1>Experiment {name}</h1>",
        _facts(experiment),
        f'<p class="note">{esc(_bands(experiment, agg) + _pruned(experiment))}</p>',
        *(_best_line(agg, found) for found in agg.bests),
        "<nav>" + "".join(f'<a href="#{a}">{t}</a>' for a, t in nav) + "</nav>",
        '<h2 id="aggregated-title">Aggregated</h2>',
        '<p class="note">One row per configuration, best first; click a header to sort.</p>',
        *_aggregated_tables(agg),
        *sections,
        '<h2 id="runs-title">Runs</h2>',
        '<p class="note">Every run folder; the run and its train.log are links.</p>',
        *_runs_tables(experiment, keys, run_links),
        f"</main><script>{SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts)
