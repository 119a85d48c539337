"""The report's tables as HTML: sortable by a click on a header (page.py's script), every
string from a run folder escaped, numbers carrying their exact value as the sort key."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from typing import TypeGuard

import numpy as np
import pandas as pd

Row = tuple[str, list[str]]  # (CSS class of the row, its cells as HTML)


def esc(value: object) -> str:
    """Text from a run folder, safe in HTML text and attributes."""
    return html.escape(str(value), quote=True)


def breakable(text: object) -> str:
    """Escaped text that may wrap after ``_ . / -`` (run names, metric names)."""
    return re.sub(r"([_./-])", r"\1<wbr>", esc(text))


def is_number(value: object) -> TypeGuard[int | float | np.number]:
    """A number to show as one (and sort numerically); booleans are text."""
    return isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_)


def fmt(value: object) -> str:
    """A cell's text: 4 significant digits, whole numbers whole (300, not 300.0 from a float
    column; up to a million), nothing for a missing value."""
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return ""
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return str(value)
    if is_number(value):
        number = float(value)
        whole = number.is_integer() and abs(number) < 1e6
        return f"{number:.0f}" if whole else f"{number:.4g}"
    return str(value)


def _sort_key(value: int | float | np.number) -> str:
    """The exact value, as JavaScript's ``Number()`` reads it."""
    if isinstance(value, int | np.integer):
        return str(value)
    number = float(value)
    return "" if math.isnan(number) else repr(number).replace("inf", "Infinity")


def cell(value: object) -> str:
    """A ``<td>``: numbers right-aligned with their exact value to sort by, text escaped
    (long text may wrap anywhere rather than widen the table)."""
    if is_number(value):
        return f'<td class="num" data-sort="{_sort_key(value)}">{esc(fmt(value))}</td>'
    text = fmt(value)
    css = "text long" if len(text) > 24 else "text"
    return f'<td class="{css}">{breakable(text)}</td>'


def run_cell(name: str, folder: str | None, log: str | None) -> str:
    """The run's name linked to its folder, its ``train.log`` linked below (hrefs already
    URL-quoted; no link where there is none); sorted by the name."""
    inner = f'<a href="{esc(folder)}">{breakable(name)}</a>' if folder else breakable(name)
    if log:
        inner += f'<a class="log" href="{esc(log)}">train.log</a>'
    return f'<td class="text name" data-sort="{esc(name)}">{inner}</td>'


def _finite(value: object) -> float | None:
    """``value`` as a float when it is a number and not NaN, else None."""
    if not is_number(value):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def mean_cell(mean: object, std: object, count: object = None, runs: object = None) -> str:
    """``mean ± std`` in one cell (sorted by the mean); ``(n=k)`` where fewer than the
    configuration's runs had the metric."""
    average, spread = _finite(mean), _finite(std)
    if average is None:
        return '<td class="num"></td>'
    text = f"<span>{esc(fmt(average))}</span>"
    if spread is not None:
        text += f' <span class="sd">± {spread:.0f}</span>' if spread >= 10 else (
            f' <span class="sd">± {spread:.2g}</span>')  # fmt: skip
    had, of = _finite(count), _finite(runs)
    if had is not None and of is not None and had < of:
        text += f' <span class="n">(n={had:.0f})</span>'
    return f'<td class="num pm" data-sort="{_sort_key(average)}">{text}</td>'


def header(key: str, title: str = "") -> str:
    """A sortable ``<th>``: a button (keyboard and the test's clicks), the name breakable
    after ``_`` and ``.`` so that long metric names wrap instead of widening the table."""
    text = breakable(key)
    tip = f' title="{esc(title)}"' if title else ""
    return f'<th data-key="{esc(key)}"{tip}><button type="button">{text}</button></th>'


def table(
    table_id: str,
    headers: Sequence[str],
    rows: Sequence[Row],
    foot: Sequence[list[str]] = (),
    caption: str = "",
) -> str:
    """A sortable table (``headers`` from :func:`header`), in a wrapper that scrolls
    rather than let a very wide table push the page wider than the window."""
    head = "".join(headers)
    body = "".join(f'<tr class="{css}">{"".join(c)}</tr>' if css else f"<tr>{''.join(c)}</tr>"
                   for css, c in rows)  # fmt: skip
    tfoot = "".join(f"<tr>{''.join(r)}</tr>" for r in foot)
    caption = f"<caption>{caption}</caption>" if caption else ""
    return (f'<div class="table-wrap"><table id="{esc(table_id)}" class="sortable">{caption}'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            + (f"<tfoot>{tfoot}</tfoot>" if tfoot else "") + "</table></div>")  # fmt: skip


def frame_table(frame: pd.DataFrame, table_id: str) -> str:
    """A DataFrame as a sortable table (columns as they are)."""
    rows = [("", [cell(v) for v in row.values()]) for row in frame.to_dict("records")]
    return table(table_id, [header(str(c)) for c in frame.columns], rows)


def empty(values: pd.Series) -> bool:
    """Whether a column has nothing to show (only missing values or empty strings)."""
    return bool(values.map(lambda v: fmt(v) == "").all())


def aggregated_rows(table_frame: pd.DataFrame, keys: list[str]) -> tuple[list[str], list[Row]]:
    """Headers and rows of an aggregated table (one ranking, best first): the keys,
    ``runs``, then one ``mean ± std`` column per metric (the ``_count`` columns folded into
    ``runs`` and ``(n=k)``; metrics no configuration has left out); the best marked."""
    columns = list(table_frame.columns)
    metrics = [c.removesuffix("_mean") for c in columns if c.endswith("_mean")]
    folded = {f"{m}_{s}" for m in metrics for s in ("mean", "std", "count")}
    metrics = [m for m in metrics if not empty(table_frame[f"{m}_mean"])]
    plain = [c for c in columns if c not in folded and c not in (*keys, "runs", "ranked_by")]
    spread = "mean ± std over the configuration's runs, at each run's best iteration"
    headers = [header(k, title="a swept key") for k in keys]
    headers += [header("runs", title="finished runs of the configuration")]
    headers += [header(c) for c in plain] + [header(m, title=spread) for m in metrics]
    rows = []
    for i, row in enumerate(table_frame.to_dict("records")):  # not iterrows: 2 -> 2.0
        cells = [cell(row[k]) for k in [*keys, "runs", *plain]]
        cells += [mean_cell(row[f"{m}_mean"], row.get(f"{m}_std"), row.get(f"{m}_count"),
                            row["runs"]) for m in metrics]  # fmt: skip
        rows.append(("best" if i == 0 else "", cells))
    return headers, rows


def status_cell(status: str, error: object, reason: object = None) -> str:
    """The run's status, with its error (or why a search pruned it) below it (a column of
    its own would be empty for every finished run and widen the table)."""
    message, why = fmt(error), fmt(reason)
    detail = f'<span class="err">{breakable(message)}</span>' if message else ""
    detail += f'<span class="why">{breakable(why)}</span>' if why else ""
    css = "text long" if detail else "text"
    return f'<td class="{css}" data-sort="{esc(status)}">{esc(status)}{detail}</td>'


def runs_rows(
    runs: pd.DataFrame, keys: list[str], links: dict[str, tuple[str | None, str | None]]
) -> tuple[list[str], list[Row]]:
    """Headers and rows of the runs table: the swept keys first, the run linked to its
    folder and ``train.log``, then status (and error, or why a search pruned it) and
    results (empty columns left out: the table has to fit the window). A pruned run's
    results are from its metrics.csv, up to where it was pruned."""
    rest = [c for c in runs.columns if c not in (*keys, "run", "status", "error", "reason")]
    rest = [c for c in rest if not empty(runs[c])]
    titles = {"pruned_at": "the iteration where the search pruned the run"}
    headers = [header(k, title="a swept key") for k in keys]
    headers += [header("run", title="the run folder, and its train.log")]
    headers += [header("status", title="and the error of a failed run, or why one was pruned")]
    headers += [header(c, title=titles.get(c, "")) for c in rest]
    rows = []
    for row in runs.to_dict("records"):
        name = str(row["run"])
        folder, log = links.get(name, (None, None))
        status = str(row["status"])
        css = {"finished": "", "failed": "failed", "pruned": "pruned"}.get(status, "unfinished")
        cells = [cell(row[k]) for k in keys]
        cells.append(run_cell(name, folder, log))
        cells.append(status_cell(status, row.get("error"), row.get("reason")))
        cells += [cell(row[c]) for c in rest]
        rows.append((css, cells))
    return headers, rows
