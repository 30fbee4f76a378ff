"""``submissions/`` -> ``leaderboard/``, as a pure function.

:func:`render` maps the validated entries (and the shipped teachers' sidecars, for the full-data
rows) to the bytes of every generated file; :func:`build` writes the ones that changed,
atomically, or with ``check=True`` only lists the stale ones. Nothing in the output depends on
the clock, the machine or the order files are listed in: JSON is written with sorted keys, SVG
plots with a fixed ``svg.hashsalt`` and no date, PNGs without metadata. (Plots depend on the
matplotlib version: CI and whoever commits ``leaderboard/`` should use the same one.)

Generated files:

- ``README.md``: one table per (data set, net, metric, protocol) in the study's Table-6 shape,
  the plots, every entry, and the entries that are not ranked;
- ``leaderboard.json``: the same data for machines;
- ``index.html``: a self-contained page (inline CSS and JS, images as data URIs, a
  Content-Security-Policy that forbids every network request) with sortable tables, a filter
  by label strategy and net, the plots and a gallery;
- ``plots/<table>-ipc.svg`` (accuracy against IPC per method and label strategy, the study's
  Figure 4) and ``plots/<table>-bytes.svg`` (accuracy against stored bytes);
- ``gallery/<dataset>-<archive sha12>.png``: a frame grid per class for every entry whose
  archive is committed under ``submissions/``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vdcbench.core.atomic_file import write_bytes_atomic
from vdcbench.core.errors import VdcError
from vdcbench.leaderboard.entry import Entry, archive_file, validate_entries
from vdcbench.leaderboard.gallery import frame_grid, png_bytes
from vdcbench.leaderboard.tables import (METRIC_LABELS, Leaderboard, Row, Table, TableCell,
                                         build_tables, load_teacher_sidecars)
from vdcbench.leaderboard.ties import ALPHA, MIN_PAIRS, MIN_PERMUTATION_PAIRS
from vdcbench.evaluation.records import mean_std

LEADERBOARD_FORMAT = "vdcbench-leaderboard"
LEADERBOARD_VERSION = 1
SVG_HASHSALT = "vdcbench-leaderboard"
GALLERY_TILE = 48          # pixels per frame in the page's gallery
GALLERY_CLASSES = 12       # classes shown per archive in the page's gallery
# Folders of leaderboard/ that hold only generated files: anything else there is stale.
GENERATED_DIRS = ("plots", "gallery")


def default_teachers_dir() -> Path:
    from vdcbench.train.teacher import SHIPPED_DIR
    return SHIPPED_DIR


# ------------------------------------------------------------------------------- format
def _pct(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio * 100:.2g} %"


def _value(cell: TableCell) -> str:
    return mean_std(cell.mean, cell.std, cell.n)


def _n(cell: TableCell) -> str:
    sets = len(cell.entry_ids)
    return f"n={cell.n}" + (f", {sets} sets" if sets > 1 else "")


def _gain(row: Row, cell: TableCell | None) -> str:
    if cell is None:
        return ""
    if row.is_random and not row.placeholder:
        return "ref."
    return "–" if cell.gain is None else f"{cell.gain:+.1f}"


def _method_label(row: Row) -> str:
    return f"{row.method} (no entry)" if row.placeholder else row.method


def _labels_label(labels: str, teacher: str | None) -> str:
    return f"{labels} (teacher {teacher[:8]})" if teacher else labels


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, no pipes, no raw HTML."""
    return (" ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;")
            .replace(">", "&gt;"))


def _plain(text: str) -> str:
    """Text matplotlib shows as is (a ``$`` would start mathtext)."""
    return " ".join(str(text).split()).replace("$", r"\$")


def _legend() -> str:
    return (
        "Accuracy in % at the final epoch of the protocol schedule: mean ± sample std over "
        "every result of the cell (n results; a cell pooling several condensed sets says how "
        "many). **Bold**: best in its column; <ins>underlined</ins>: best within its kind "
        "(selection or distillation); ≈: the tie rule cannot tell it from the best. Δ: gain "
        "over the Random cell of the same track, label strategy and net, so that what the labels "
        "and the evaluation recipe contribute is not credited to the condensed data. Tie rule: "
        "two cells tie unless their differences paired by evaluation seed all have the same "
        f"sign (fewer than {MIN_PAIRS} paired seeds: tied); with {MIN_PERMUTATION_PAIRS} or more "
        f"paired seeds, an exact paired sign-flip test at {float(ALPHA) * 100:g} %. Only "
        "official results (protocol schedule, official variant, official tracks) are ranked; a "
        "table never mixes protocol hashes, data-set stores, nets or metrics.")


# ------------------------------------------------------------------------------- plots
def _svg(figure) -> bytes:
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "none"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _figure():
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "none"}):
        figure = Figure(figsize=(6.4, 4.2), layout="constrained")
        return figure, figure.add_subplot()


_LINESTYLES = {"hard": "-", "soft": "--", "multi-sl": ":"}
_MARKERS = {"hard": "o", "soft": "s", "multi-sl": "^"}


def _series(table: Table) -> list[Row]:
    return [r for r in table.rows if not r.placeholder and r.cells]


def plot_ipc(table: Table) -> bytes:
    """Accuracy against IPC per method and label strategy (the study's Figure 4)."""
    figure, ax = _figure()
    colors = _colors(table)
    for row in _series(table):
        cols = [c for c in table.columns if c.track in row.cells]
        cells = [row.cells[c.track] for c in cols]
        ax.errorbar([c.ipc for c in cols], [c.mean for c in cells], yerr=[c.std for c in cells],
                    label=_plain(f"{row.method} "
                                 f"({_labels_label(row.label_strategy, row.teacher_sha256)})"),
                    color=colors[row.method], linestyle=_LINESTYLES.get(row.label_strategy, "-"),
                    marker=_MARKERS.get(row.label_strategy, "o"), capsize=3, linewidth=1.4)
    if table.full_data is not None:
        ax.axhline(table.full_data.value, color="0.4", linestyle="--", linewidth=1,
                   label="full data")
    ax.set_xscale("log")
    ax.set_xticks([c.ipc for c in table.columns], [str(c.ipc) for c in table.columns])
    ax.minorticks_off()
    ax.set_xlabel("instances per class (IPC)")
    ax.set_ylabel(f"{METRIC_LABELS.get(table.metric, table.metric)} accuracy (%)")
    ax.set_title(_plain(table.title), fontsize=10)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.legend(fontsize=7, loc="best")
    return _svg(figure)


def plot_bytes(table: Table) -> bytes:
    """Accuracy against the stored bytes of the archive."""
    figure, ax = _figure()
    colors = _colors(table)
    for row in _series(table):
        cells = [row.cells[c.track] for c in table.columns if c.track in row.cells]
        ax.errorbar([c.archive_bytes / 1e6 for c in cells], [c.mean for c in cells],
                    yerr=[c.std for c in cells],
                    label=_plain(f"{row.method} "
                                 f"({_labels_label(row.label_strategy, row.teacher_sha256)})"),
                    color=colors[row.method], linestyle=_LINESTYLES.get(row.label_strategy, "-"),
                    marker=_MARKERS.get(row.label_strategy, "o"), capsize=3, linewidth=1.0)
    from matplotlib.ticker import FuncFormatter, NullFormatter

    sizes = [c.archive_bytes for r in _series(table) for c in r.cells.values()]
    if sizes and max(sizes) > 10 * min(sizes):      # log only where sizes span a decade
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("stored bytes (archive file, MB)")
    ax.set_ylabel(f"{METRIC_LABELS.get(table.metric, table.metric)} accuracy (%)")
    ax.set_title(_plain(table.title), fontsize=10)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.legend(fontsize=7, loc="best")
    return _svg(figure)


def _colors(table: Table) -> dict[str, str]:
    methods = sorted({r.method for r in table.rows})
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
               "#17becf", "#bcbd22", "#7f7f7f"]
    colors = {m: palette[i % len(palette)] for i, m in enumerate(m for m in methods if m != "random")}
    colors["random"] = "#555555"
    return colors


# ------------------------------------------------------------------------------- gallery
def _gallery(root: Path, entries: Sequence[Entry]) -> dict[str, tuple[bytes, list[Entry]]]:
    """gallery file name -> (PNG, entries of that archive), for archives committed under root."""
    from vdcbench.archive import read_archive

    by_archive: dict[str, list[Entry]] = {}
    for entry in entries:
        if archive_file(root, entry) is not None:
            by_archive.setdefault(entry.archive.sha256, []).append(entry)
    out = {}
    ordered = sorted(by_archive.items(), key=lambda item: (
        item[1][0].dataset, item[1][0].method.name, item[1][0].ipc, item[1][0].label_strategy,
        item[0]))
    for sha, members in ordered:
        first = members[0]
        loaded = read_archive(archive_file(root, first))
        grid = frame_grid(loaded.condensed, num_classes=loaded.track.num_classes, per_class=1,
                          max_classes=GALLERY_CLASSES, tile=GALLERY_TILE)
        out[f"gallery/{first.dataset}-{sha[:12]}.png"] = (png_bytes(grid), members)
    return out


# ------------------------------------------------------------------------------- README
def _md_table(table: Table) -> list[str]:
    head = ["Kind", "Labels", "Method"]
    for col in table.columns:
        ratio = _pct(col.ratio)
        head += [f"IPC {col.ipc}" + (f" ({ratio})" if ratio else ""), "Δ"]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join([":--"] * 3 + ["--:", "--:"] * len(table.columns)) + "|"]
    if table.full_data is not None:
        cells = ["full data", "–", "full data (protocol teacher)"]
        for _ in table.columns:
            cells += [f"{table.full_data.value:.1f} (n=1)", ""]
        lines.append("| " + " | ".join(cells) + " |")
    for row in table.rows:
        cells = [row.kind, _md(_labels_label(row.label_strategy, row.teacher_sha256)),
                 _md(_method_label(row))]
        for col in table.columns:
            cell = row.cells.get(col.track)
            if cell is None:
                cells += ["–", ""]
                continue
            value = _value(cell)
            if cell.best:
                value = f"**{value}**"
            elif cell.best_in_kind:
                value = f"<ins>{value}</ins>"
            if cell.tied_with_best:
                value = f"≈ {value}"
            cells += [f"{value} ({_n(cell)})", _gain(row, cell)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _entry_figures(entry: Entry) -> str:
    return "; ".join(f"{r.net} {mean_std(s['top1_mean'], s['top1_std'], s['n'])} (n={s['n']})"
                     for r in entry.results for s in [r.summary()])


def _archive_cell(entry: Entry) -> str:
    if entry.archive.path:
        return f"[`{entry.archive.sha256[:12]}`](../submissions/{entry.archive.path})"
    if entry.archive.url:
        return f"[`{entry.archive.sha256[:12]}`]({entry.archive.url})"
    return f"`{entry.archive.sha256[:12]}`"


def _condensation(entry: Entry) -> str:
    if entry.condensation_wall_seconds is None:
        return "unknown"
    return f"{entry.condensation_wall_seconds:.3g} s on {entry.condensation_device or '?'}"


def render_readme(board: Leaderboard, plots: dict[str, list[tuple[str, str]]]) -> str:
    lines = ["# vdcbench leaderboard", "",
             "Generated by `vdcbench leaderboard build` from `submissions/`: do not edit by hand "
             "(`vdcbench leaderboard build --check` fails when this folder is stale). The same "
             "data for machines is in [leaderboard.json](leaderboard.json); "
             "[index.html](index.html) is a static page with sortable tables, filters, the "
             "plots and a gallery.", "", _legend(), ""]
    if not board.tables:
        lines += ["No ranked entries yet.", ""]
    for table in board.tables:
        lines += [f"## {table.title}", ""]
        meta = (f"Protocol `{table.protocol_sha256[:12]}`, data-set store "
                f"`{table.dataset_sha256[:12]}`, evaluation net `{table.net}`.")
        if table.full_data is not None:
            meta += (f" Full data: the protocol teacher `{table.full_data.teacher_sha256[:12]}` "
                     f"({table.full_data.epochs} epochs).")
        else:
            meta += " Full data: no protocol teacher of this net is shipped."
        lines += [meta, ""] + _md_table(table) + [""]
        for path, alt in plots.get(table.slug, []):
            lines.append(f"![{alt}]({path})")
        lines.append("")
    lines += ["## Entries", "",
              "| Entry | Method | Kind | Labels | Track | Variant | Top-1 % per net | Archive | "
              "Stored bytes | Condensation | Authors |",
              "|:--|:--|:--|:--|:--|:--|:--|:--|--:|:--|:--|"]
    for e in board.entries:
        lines.append("| " + " | ".join([
            f"`{e.id}`", _md(e.method.name), e.method.kind,
            _md(_labels_label(e.label_strategy, e.teacher_sha256)), e.track,
            e.variant if e.epochs == _protocol_epochs(e) else f"{e.variant}, {e.epochs} epochs",
            _md(_entry_figures(e)), _archive_cell(e), f"{e.archive.bytes:,}",
            _md(_condensation(e)), _md(", ".join(e.method.authors) or "–")]) + " |")
    lines.append("")
    if board.unranked:
        lines += ["## Not ranked", "",
                  "Study variants, shortened schedules and unofficial tracks: measured and kept, "
                  "never set beside the ranked cells.", "",
                  "| Entry | Data set | Reason | Top-1 % per net |", "|:--|:--|:--|:--|"]
        for u in board.unranked:
            lines.append(f"| `{u.entry.id}` | {u.entry.dataset} | {_md(u.reason)} | "
                         f"{_md(_entry_figures(u.entry))} |")
        lines.append("")
    return "\n".join(lines)


def _protocol_epochs(entry: Entry) -> int:
    from vdcbench.protocol import load_protocol
    return load_protocol(entry.protocol_version).trainer.epochs


# ------------------------------------------------------------------------------- JSON
def render_json(board: Leaderboard, plots: dict[str, list[tuple[str, str]]],
                gallery: dict[str, list[str]]) -> str:
    data = {
        "format": LEADERBOARD_FORMAT,
        "format_version": LEADERBOARD_VERSION,
        "tie_rule": {"alpha": float(ALPHA), "min_pairs": MIN_PAIRS,
                     "min_permutation_pairs": MIN_PERMUTATION_PAIRS,
                     "pairing": "evaluation seed",
                     "rule": "tied unless every paired difference has the same sign; from "
                             "min_permutation_pairs paired seeds, an exact two-sided sign-flip "
                             "test at alpha"},
        "tables": [t.to_dict() for t in board.tables],
        "plots": {slug: [p for p, _ in files] for slug, files in sorted(plots.items())},
        "gallery": dict(sorted(gallery.items())),
        "entries": [e.to_dict() for e in board.entries],
        "unranked": [{"entry": u.entry.id, "reason": u.reason} for u in board.unranked],
    }
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------------- HTML
_CSS = """
:root { --fg: #1b1f23; --muted: #57606a; --line: #d0d7de; --best: #0a3069; --bg: #fff;
        --head: #f6f8fa; --tie: #8250df; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       color: var(--fg); background: var(--bg); margin: 0 auto; max-width: 1200px;
       padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.6rem; margin: .5rem 0; } h2 { font-size: 1.2rem; margin: 2rem 0 .4rem; }
p.legend, p.meta { color: var(--muted); max-width: 70rem; }
.filters { display: flex; gap: 1.2rem; align-items: center; padding: .6rem .8rem;
           background: var(--head); border: 1px solid var(--line); border-radius: 6px;
           position: sticky; top: 0; z-index: 2; }
.filters select { font: inherit; padding: .1rem .3rem; }
table { border-collapse: collapse; margin: .5rem 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .55rem; text-align: left;
         white-space: nowrap; }
th { background: var(--head); cursor: pointer; user-select: none; position: relative; }
th[aria-sort="ascending"]::after { content: " ▲"; font-size: .7em; }
th[aria-sort="descending"]::after { content: " ▼"; font-size: .7em; }
td.num, th.num { text-align: right; }
td small, th small { color: var(--muted); font-weight: normal; }
td.best { font-weight: 700; color: var(--best); }
td.kind-best .v { text-decoration: underline; }
td.tie .v::before { content: "≈ "; color: var(--tie); }
tr.full-data td { background: #fbfbf2; font-style: italic; }
tr.placeholder td { color: var(--muted); }
td.gain.pos { color: #1a7f37; } td.gain.neg { color: #cf222e; }
.scroll { overflow-x: auto; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; }
.plots img { width: 480px; max-width: 100%; border: 1px solid var(--line); }
.gallery { display: flex; flex-wrap: wrap; gap: 1rem; }
.gallery figure { margin: 0; border: 1px solid var(--line); padding: .4rem; }
.gallery img { image-rendering: pixelated; display: block; }
figcaption { color: var(--muted); font-size: .85em; max-width: 420px; }
code { font-size: .9em; }
[hidden] { display: none !important; }
"""

_JS = r"""
(function () {
  "use strict";
  function value(row, index, type) {
    var cell = row.cells[index];
    if (!cell) { return null; }
    var raw = cell.getAttribute("data-value");
    if (type === "num") {
      if (raw === null || raw === "") { return null; }
      return parseFloat(raw);
    }
    return (raw !== null ? raw : cell.textContent).trim().toLowerCase();
  }
  function sortBy(table, index, direction) {
    var header = table.tHead.rows[0].cells;
    var type = header[index].getAttribute("data-type") || "text";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var pinned = rows.filter(function (r) { return r.classList.contains("pinned"); });
    var rest = rows.filter(function (r) { return !r.classList.contains("pinned"); });
    rest.forEach(function (r) { r._order = parseInt(r.getAttribute("data-order"), 10); });
    rest.sort(function (a, b) {
      var x = value(a, index, type), y = value(b, index, type);
      if (x === null && y === null) { return a._order - b._order; }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      if (x < y) { return -direction; }
      if (x > y) { return direction; }
      return a._order - b._order;
    });
    pinned.concat(rest).forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(header, function (th, i) {
      if (i === index) {
        th.setAttribute("aria-sort", direction > 0 ? "ascending" : "descending");
      } else { th.removeAttribute("aria-sort"); }
    });
  }
  function onHeader(event) {
    var th = event.currentTarget;
    var table = th.closest("table");
    var index = Array.prototype.indexOf.call(th.parentNode.cells, th);
    var current = th.getAttribute("aria-sort");
    var numeric = th.getAttribute("data-type") === "num";
    var direction = current === "descending" ? 1 : current === "ascending" ? -1 : (numeric ? -1 : 1);
    sortBy(table, index, direction);
  }
  var labels = document.getElementById("filter-labels");
  var net = document.getElementById("filter-net");
  function matches(element) {
    var l = labels.value, n = net.value;
    var rowLabels = element.getAttribute("data-labels");
    var rowNets = (element.getAttribute("data-nets") || "").split(" ");
    var okLabels = !l || rowLabels === "*" || rowLabels === l;
    var okNet = !n || rowNets.indexOf("*") >= 0 || rowNets.indexOf(n) >= 0;
    return okLabels && okNet;
  }
  function apply() {
    var shown = 0;
    document.querySelectorAll("[data-filter]").forEach(function (el) {
      el.hidden = !matches(el);
      if (!el.hidden && el.tagName === "TR" && !el.classList.contains("pinned")) { shown += 1; }
    });
    document.querySelectorAll("section.board").forEach(function (section) {
      section.hidden = !!net.value && section.getAttribute("data-net") !== net.value;
    });
    document.getElementById("shown").textContent = shown + " rows shown";
  }
  document.querySelectorAll("table.sortable th").forEach(function (th) {
    th.addEventListener("click", onHeader);
  });
  labels.addEventListener("change", apply);
  net.addEventListener("change", apply);
  apply();
  document.body.setAttribute("data-ready", "1");

  if (location.hash === "#selftest") {
    var report = {};
    var table = document.querySelector("section.board table");
    if (table) {
      var head = table.tHead.rows[0].cells;
      var col = -1;
      for (var i = 0; i < head.length; i++) {
        if (head[i].getAttribute("data-type") === "num") { col = i; break; }
      }
      sortBy(table, col, -1);
      var values = Array.prototype.filter.call(table.tBodies[0].rows, function (r) {
        return !r.classList.contains("pinned");
      }).map(function (r) { return value(r, col, "num"); }).filter(function (v) { return v !== null; });
      report.sorted_desc = values.every(function (v, k) { return k === 0 || values[k - 1] >= v; });
      report.sorted_values = values;
      sortBy(table, col, 1);
      var up = Array.prototype.filter.call(table.tBodies[0].rows, function (r) {
        return !r.classList.contains("pinned");
      }).map(function (r) { return value(r, col, "num"); }).filter(function (v) { return v !== null; });
      report.sorted_asc = up.every(function (v, k) { return k === 0 || up[k - 1] <= v; });
    }
    var options = Array.prototype.map.call(labels.options, function (o) { return o.value; });
    report.filters = {};
    options.filter(Boolean).forEach(function (l) {
      labels.value = l; apply();
      var visible = Array.prototype.filter.call(document.querySelectorAll("tr[data-filter]"),
        function (r) { return !r.hidden; });
      report.filters[l] = {
        visible: visible.length,
        only_matching: visible.every(function (r) {
          var v = r.getAttribute("data-labels"); return v === "*" || v === l;
        })
      };
    });
    labels.value = ""; apply();
    report.entries = document.querySelectorAll("#entries tbody tr").length;
    report.images = document.images.length;
    document.getElementById("selftest").textContent = JSON.stringify(report);
  }
}());
"""

_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _html_table(table: Table) -> list[str]:
    head = ['<th data-type="text">Kind</th>', '<th data-type="text">Labels</th>',
            '<th data-type="text">Method</th>']
    for col in table.columns:
        ratio = _pct(col.ratio)
        head.append(f'<th class="num" data-type="num">IPC {col.ipc}'
                    + (f" <small>{_e(ratio)}</small>" if ratio else "") + "</th>")
        head.append(f'<th class="num" data-type="num">Δ <small>IPC {col.ipc}</small></th>')
    out = ['<div class="scroll"><table class="sortable">',
           "<thead><tr>" + "".join(head) + "</tr></thead>", "<tbody>"]
    if table.full_data is not None:
        cells = ["<td>full data</td>", "<td>–</td>", "<td>full data (protocol teacher)</td>"]
        for _ in table.columns:
            cells.append(f'<td class="num" data-value="{table.full_data.value!r}">'
                         f'{table.full_data.value:.1f} <small>n=1</small></td><td></td>')
        out.append('<tr class="pinned full-data" data-filter data-labels="*" data-nets="*">'
                   + "".join(cells) + "</tr>")
    for order, row in enumerate(table.rows):
        classes = "placeholder" if row.placeholder else ""
        cells = [f"<td>{_e(row.kind)}</td>",
                 f"<td>{_e(_labels_label(row.label_strategy, row.teacher_sha256))}</td>",
                 f"<td>{_e(_method_label(row))}</td>"]
        for col in table.columns:
            cell = row.cells.get(col.track)
            if cell is None:
                cells.append('<td class="num">–</td><td class="num"></td>')
                continue
            flags = ["num"] + (["best"] if cell.best else []) + (
                ["kind-best"] if cell.best_in_kind and not cell.best else []) + (
                ["tie"] if cell.tied_with_best else [])
            title = f"seeds {', '.join(str(s) for s in sorted(cell.by_seed))}; entries " \
                    + ", ".join(cell.entry_ids)
            cells.append(f'<td class="{" ".join(flags)}" data-value="{cell.mean!r}" '
                         f'title="{_e(title)}"><span class="v">{_e(_value(cell))}</span> '
                         f"<small>{_e(_n(cell))}</small></td>")
            gain = _gain(row, cell)
            sign = "" if cell.gain is None or row.is_random else (
                " pos" if cell.gain > 0 else " neg" if cell.gain < 0 else "")
            value = "" if cell.gain is None else repr(cell.gain)
            cells.append(f'<td class="num gain{sign}" data-value="{value}">{_e(gain)}</td>')
        out.append(f'<tr class="{classes}" data-order="{order}" data-filter '
                   f'data-labels="{_e(row.label_strategy)}" data-nets="{_e(table.net)}" '
                   f'data-kind="{_e(row.kind)}">' + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table></div>"]
    return out


def render_html(board: Leaderboard, plot_bytes_by_path: dict[str, bytes],
                plots: dict[str, list[tuple[str, str]]],
                gallery: dict[str, tuple[bytes, list[Entry]]]) -> str:
    labels = sorted({e.label_strategy for e in board.entries})
    nets = sorted({n for e in board.entries for n in e.nets})
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>vdcbench leaderboard</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           "<header>", "<h1>vdcbench leaderboard</h1>",
           "<p class=\"legend\">Generated by <code>vdcbench leaderboard build</code> from "
           "<code>submissions/</code>. " + _e(_legend()).replace("**Bold**", "<b>Bold</b>")
           .replace("&lt;ins&gt;underlined&lt;/ins&gt;", "<u>underlined</u>") + "</p>",
           '<div class="filters">',
           '<label>Label strategy <select id="filter-labels"><option value="">all</option>'
           + "".join(f'<option value="{_e(x)}">{_e(x)}</option>' for x in labels)
           + "</select></label>",
           '<label>Net <select id="filter-net"><option value="">all</option>'
           + "".join(f'<option value="{_e(x)}">{_e(x)}</option>' for x in nets)
           + "</select></label>",
           '<span id="shown"></span>', "</div>", "</header>", "<main>"]
    if not board.tables:
        out.append("<p>No ranked entries yet.</p>")
    for table in board.tables:
        meta = (f"Protocol <code>{_e(table.protocol_sha256[:12])}</code>, data-set store "
                f"<code>{_e(table.dataset_sha256[:12])}</code>, evaluation net "
                f"<code>{_e(table.net)}</code>.")
        if table.full_data is not None:
            meta += (f" Full data: the protocol teacher <code>"
                     f"{_e(table.full_data.teacher_sha256[:12])}</code> "
                     f"({table.full_data.epochs} epochs).")
        out += [f'<section class="board" id="{_e(table.slug)}" data-net="{_e(table.net)}" '
                f'data-dataset="{_e(table.dataset)}">', f"<h2>{_e(table.title)}</h2>",
                f'<p class="meta">{meta}</p>'] + _html_table(table)
        out.append('<div class="plots">')
        for path, alt in plots.get(table.slug, []):
            out.append(f'<figure><img alt="{_e(alt)}" src="'
                       f'{_data_uri("image/svg+xml", plot_bytes_by_path[path])}">'
                       f"<figcaption>{_e(alt)}</figcaption></figure>")
        out += ["</div>", "</section>"]

    out += ['<section id="entries">', "<h2>Entries</h2>", '<div class="scroll">',
            '<table class="sortable">',
            "<thead><tr>" + "".join(f'<th data-type="{t}"{" class=num" if t == "num" else ""}>'
                                    f"{_e(h)}</th>" for h, t in (
                ("Entry", "text"), ("Method", "text"), ("Kind", "text"), ("Labels", "text"),
                ("Track", "text"), ("Variant", "text"), ("Ranked", "text"),
                ("Top-1 % per net", "text"), ("Archive", "text"), ("Stored bytes", "num"),
                ("Condensation", "text"), ("Authors", "text"))) + "</tr></thead>", "<tbody>"]
    unranked = {u.entry.id: u.reason for u in board.unranked}
    for order, e in enumerate(board.entries):
        out.append(
            f'<tr data-order="{order}" data-filter data-labels="{_e(e.label_strategy)}" '
            f'data-nets="{_e(" ".join(e.nets))}" id="entry-{_e(e.id)}">'
            f"<td><code>{_e(e.id)}</code></td><td>{_e(e.method.name)}</td>"
            f"<td>{_e(e.method.kind)}</td>"
            f"<td>{_e(_labels_label(e.label_strategy, e.teacher_sha256))}</td>"
            f"<td>{_e(e.track)}</td><td>{_e(e.variant)}</td>"
            f"<td>{_e(unranked.get(e.id, 'yes'))}</td><td>{_e(_entry_figures(e))}</td>"
            f"<td><code>{_e(e.archive.sha256[:12])}</code></td>"
            f'<td class="num" data-value="{e.archive.bytes}">{e.archive.bytes:,}</td>'
            f"<td>{_e(_condensation(e))}</td><td>{_e(', '.join(e.method.authors) or '–')}</td>"
            "</tr>")
    out += ["</tbody>", "</table>", "</div>", "</section>"]

    out += ['<section id="gallery">', "<h2>Gallery</h2>",
            f"<p class=\"meta\">The first instance of each class (up to {GALLERY_CLASSES} "
            "classes), frame by frame, for every archive committed under "
            "<code>submissions/</code>. <code>vdcbench show ARCHIVE</code> draws the full grid "
            "and an animated GIF per class.</p>", '<div class="gallery">']
    if not gallery:
        out.append("<p>No archive is committed.</p>")
    for path, (data, members) in gallery.items():
        first = members[0]
        caption = (f"{first.method.name} · {first.track} · {first.label_strategy} · "
                   f"{first.archive.sha256[:12]}")
        out.append(f'<figure data-filter data-labels="{_e(first.label_strategy)}" '
                   f'data-nets="{_e(" ".join(sorted({n for m in members for n in m.nets})))}">'
                   f'<img alt="{_e(caption)}" src="{_data_uri("image/png", data)}">'
                   f"<figcaption>{_e(caption)}</figcaption></figure>")
    out += ["</div>", "</section>", "</main>",
            '<pre id="selftest" hidden></pre>',
            f"<script>{_JS}</script>", "</body>", "</html>", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------- build
def render(submissions: str | os.PathLike[str],
           teachers_dir: str | os.PathLike[str] | None = None) -> dict[str, bytes]:
    """Every file of ``leaderboard/`` (relative POSIX path -> bytes), from ``submissions/``."""
    root = Path(submissions)
    entries = validate_entries(root)
    teachers = load_teacher_sidecars(Path(teachers_dir) if teachers_dir is not None
                                     else default_teachers_dir())
    board = build_tables(entries, teachers)
    files: dict[str, bytes] = {}
    plots: dict[str, list[tuple[str, str]]] = {}
    for table in board.tables:
        ipc_path, bytes_path = f"plots/{table.slug}-ipc.svg", f"plots/{table.slug}-bytes.svg"
        files[ipc_path] = plot_ipc(table)
        files[bytes_path] = plot_bytes(table)
        plots[table.slug] = [(ipc_path, f"{table.title}: accuracy against IPC"),
                             (bytes_path, f"{table.title}: accuracy against stored bytes")]
    gallery = _gallery(root, board.entries)
    for path, (data, _) in gallery.items():
        files[path] = data
    gallery_index = {path: [e.id for e in members] for path, (_, members) in gallery.items()}
    files["README.md"] = render_readme(board, plots).encode()
    files["leaderboard.json"] = render_json(board, plots, gallery_index).encode()
    files["index.html"] = render_html(board, files, plots, gallery).encode()
    return dict(sorted(files.items()))


def _extra_files(output: Path, wanted: dict[str, bytes]) -> list[Path]:
    extra = []
    for folder in GENERATED_DIRS:
        base = output / folder
        if base.is_dir():
            extra += [p for p in sorted(base.rglob("*"))
                      if p.is_file() and p.relative_to(output).as_posix() not in wanted]
    return extra


def build(submissions: str | os.PathLike[str] = "submissions",
          output: str | os.PathLike[str] = "leaderboard", *, check: bool = False,
          teachers_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Regenerate ``output`` from ``submissions``. Returns the files written (and removed), or
    with ``check=True`` the files that are stale (differ, missing or left over), writing
    nothing."""
    output = Path(output)
    files = render(submissions, teachers_dir)
    stale = []
    for rel, data in files.items():
        path = output / rel
        try:
            current = path.read_bytes()
        except FileNotFoundError:
            current = None
        except OSError as exc:
            raise VdcError(f"cannot read {path}: {exc.strerror or exc}") from None
        if current != data:
            stale.append(path)
    extra = _extra_files(output, files)
    if check:
        return stale + extra
    for path in stale:
        write_bytes_atomic(path, files[path.relative_to(output).as_posix()])
    for path in extra:
        path.unlink()
    return stale + extra
