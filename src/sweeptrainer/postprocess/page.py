"""The report's inline style and script (one file, no network): tables that fit the window
and sort by a click on a header, and a self-check the report's test drives.

The self-check runs only when the page is opened with ``#test=TABLE:COLUMN,...``: it clicks
those headers in turn and writes into ``<body>``'s data attributes the first row after
each click (``data-sorted``, JSON: each cell's sort key, else its text), the elements that
stick out of the window or clip their content (``data-overflow``, JSON) and how many
images decoded (``data-images``).
"""

from __future__ import annotations

STYLE = """
*, *::before, *::after { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222;
       line-height: 1.4; }
main { max-width: 1500px; margin: 0 auto; padding: 1em 1.5em 3em; }
@media (max-width: 1100px) { main { padding: 0.6em 0.8em 2em; } }
h1 { font-size: 1.6em; margin: 0.3em 0; overflow-wrap: anywhere; }
h2 { font-size: 1.25em; margin: 1.6em 0 0.5em; border-bottom: 1px solid #ddd; }
p, li, figcaption { overflow-wrap: anywhere; }
nav { font-size: 0.9em; } nav a { margin-right: 1em; white-space: nowrap; }
dl.facts { display: flex; flex-wrap: wrap; gap: 0.3em 1.6em; margin: 0.6em 0; }
dl.facts div { display: flex; gap: 0.4em; } dl.facts dt { color: #666; }
dl.facts dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
.note { color: #555; font-size: 0.9em; }
.table-wrap { max-width: 100%; overflow-x: auto; margin-bottom: 1em; }
table { border-collapse: collapse; font-size: 12px; }
caption { text-align: left; font-weight: 600; padding: 0.3em 0; }
th, td { border: 1px solid #ccc; padding: 2px 3px; text-align: right; vertical-align: top; }
th { background: #f0f0f0; }
th button { all: unset; cursor: pointer; display: block; width: 100%; overflow-wrap: break-word; }
th button:focus-visible { outline: 2px solid #36c; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; font-size: 9px; }
th[aria-sort="descending"] button::after { content: " \\25BC"; font-size: 9px; }
td.num { white-space: nowrap; font-variant-numeric: tabular-nums; }
td .sd, td .n { display: block; color: #666; font-size: 11px; }
td.text { text-align: left; overflow-wrap: break-word; }
td.long { overflow-wrap: anywhere; min-width: 7em; }
td.name { overflow-wrap: anywhere; min-width: 10em; }
td .err { display: block; color: #842029; font-size: 11px; }
td .why { display: block; color: #41464b; font-size: 11px; }
td a.log { display: block; font-size: 11px; }
tr.best { background: #d9f2d9; font-weight: 600; }
tr.failed { background: #f8d7da; } tr.unfinished { background: #fff3cd; }
tr.pruned { background: #e2e3e5; color: #41464b; }
tfoot td { background: #fafafa; font-style: italic; }
figure { margin: 0.6em 0 1.8em; max-width: 100%; }
.panels figure { flex: 0 1 auto; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; }
.panels { display: flex; flex-wrap: wrap; gap: 0 2em; align-items: flex-start; }
.panels > * { min-width: 0; max-width: 100%; }
"""

SCRIPT = """
(() => {
  "use strict";
  const value = (cell) => (cell.dataset.sort !== undefined ? cell.dataset.sort
                                                           : cell.textContent.trim());
  function sortBy(table, th) {
    const index = [...th.parentNode.cells].indexOf(th);
    const ascending = th.getAttribute("aria-sort") !== "ascending";
    for (const other of th.parentNode.cells) other.removeAttribute("aria-sort");
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    for (const body of table.tBodies) {
      const rows = [...body.rows];
      const keys = rows.map((row) => (row.cells[index] ? value(row.cells[index]) : ""));
      const numeric = keys.every((k) => k === "" || !Number.isNaN(Number(k)));
      const order = rows.map((_, i) => i).sort((a, b) => {
        const x = keys[a], y = keys[b];
        if (x === "" || y === "") return (x === "") - (y === "") || a - b;  // empty: last
        const c = numeric ? Number(x) - Number(y) : (x < y ? -1 : x > y ? 1 : 0);
        return (ascending ? c : -c) || a - b;
      });
      body.append(...order.map((i) => rows[i]));
    }
  }
  for (const table of document.querySelectorAll("table.sortable")) {
    for (const th of table.tHead.rows[0].cells) {
      th.querySelector("button").addEventListener("click", () => sortBy(table, th));
    }
  }

  function describe(el) {
    const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
      + (el.classList.length ? "." + [...el.classList].join(".") : "");
    return name + " " + (el.textContent || el.getAttribute("alt") || "").trim().slice(0, 40);
  }
  function selfCheck(clicks) {
    const sorted = [];
    for (const click of clicks) {
      const [id, key] = click.split(":").map(decodeURIComponent);
      const table = document.getElementById(id);
      const head = table ? [...table.tHead.rows[0].cells] : [];
      const th = head.find((cell) => cell.dataset.key === key);
      if (!th) { sorted.push({ table: id, column: key, error: "no such header" }); continue; }
      th.querySelector("button").click();
      const row = table.tBodies[0].rows[0];
      const first = {};
      if (row) head.forEach((cell, i) => { first[cell.dataset.key] = value(row.cells[i]); });
      sorted.push({ table: id, column: key, order: th.getAttribute("aria-sort"), first });
    }
    const width = document.documentElement.clientWidth;
    const offenders = [];
    for (const el of document.body.querySelectorAll("*")) {
      const box = el.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue;  // not rendered (script)
      const clips = getComputedStyle(el).overflowX !== "visible"
        && el.scrollWidth > el.clientWidth + 1;
      if (box.right > width + 0.5 || box.left < -0.5 || clips) offenders.push(describe(el));
    }
    const body = document.body.dataset;
    body.sorted = JSON.stringify(sorted);
    body.overflow = JSON.stringify(offenders.slice(0, 30));
    body.overflowCount = offenders.length;
    body.width = width;
    body.scrollWidth = document.documentElement.scrollWidth;
  }
  window.addEventListener("load", () => {
    const images = [...document.images];
    document.body.dataset.images = images.filter((i) => i.complete && i.naturalWidth > 0).length;
    document.body.dataset.imagesTotal = images.length;
    const test = /^#test=?(.*)$/.exec(location.hash);
    if (test) selfCheck(test[1] ? test[1].split(",") : []);
  });
})();
"""
