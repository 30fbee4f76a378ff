"""The plots of a table, as SVG: accuracy against IPC per method and label strategy (the study's
Figure 4) and accuracy against the stored bytes of the archive.

A plot is drawn only where it shows something:

- accuracy against IPC needs cells on two IPCs or more; a table whose results all sit on one
  IPC gets a dot chart of its rows at that IPC instead (a line through one IPC is no trend,
  and a log axis from 1 to 10 with every point at 1 says nothing);
- accuracy against stored bytes needs archives whose sizes span at least ``MIN_BYTES_SPAN``:
  archives of one track differ by a few label bytes, and an axis stretched over those would
  present noise as a trend;
- a temporal table (the equal-frame grid, a column per track and formation) gets one dot chart of
  every cell it holds: its columns store the same frames per class, so there is no bytes axis,
  and two formations of one track share an IPC, so no line through IPCs either.

Every plot shows chance level (1/K, or k/K for top-k) and, where a protocol teacher is shipped,
the full-data accuracy, and its value axis stays inside [0, 100], so a reader can place the
cells on the scale that matters. Legends sit below the axes, never on a line.

SVGs are written with a fixed ``svg.hashsalt`` and no date, so the same table gives the same
bytes (on the same matplotlib version).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

from vdcbench.leaderboard.render.text import cell_count, column_label, labels_label
from vdcbench.leaderboard.tables import METRIC_LABELS, Column, Row, Table, TableCell
from vdcbench.protocol import load_protocol

SVG_HASHSALT = "vdcbench-leaderboard"
# Largest over smallest archive size below which no bytes plot is drawn.
MIN_BYTES_SPAN = 1.5
_LINESTYLES = {"hard": "-", "soft": "--", "multi-sl": ":"}
_MARKERS = {"hard": "o", "soft": "s", "multi-sl": "^"}
_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
            "#17becf", "#bcbd22", "#7f7f7f"]
_WIDTH = 6.4                # inches
_LEGEND_COLUMNS = 3
_LEGEND_ROW = 0.17          # inches per row of legend below the axes
_DOT_ROW = 0.34             # inches per row of a dot chart


@dataclass(frozen=True)
class Plot:
    path: str          # relative to leaderboard/
    caption: str
    svg: bytes


def table_plots(table: Table) -> tuple[Plot, ...]:
    """The plots of ``table`` that can show something (none for a table without results)."""
    series = _series(table)
    if not series:
        return ()
    plots = []
    columns = _columns_with_data(table)
    if table.temporal:
        return (Plot(f"plots/{table.slug}-cells.svg",
                     f"{table.title}: accuracy per track and formation",
                     _svg(draw_cells(table))),)
    if len(columns) >= 2:
        plots.append(Plot(f"plots/{table.slug}-ipc.svg", f"{table.title}: accuracy against IPC",
                          _svg(draw_ipc(table))))
    else:
        column = columns[0]
        plots.append(Plot(f"plots/{table.slug}-ipc{column.ipc}.svg",
                          f"{table.title}: accuracy at IPC {column.ipc}, the only IPC with "
                          "results", _svg(draw_dots(table, column))))
    sizes = [c.archive_bytes for r in series for c in r.cells.values()]
    if max(sizes) >= MIN_BYTES_SPAN * min(sizes):
        plots.append(Plot(f"plots/{table.slug}-bytes.svg",
                          f"{table.title}: accuracy against stored bytes",
                          _svg(draw_bytes(table))))
    return tuple(plots)


def draw_ipc(table: Table):
    """Accuracy against IPC per method and label strategy (the study's Figure 4), as a
    matplotlib figure."""
    figure, ax = _figure(_line_height(table))
    _errorbars(ax, table, lambda column, _: column.ipc, linewidth=1.4)
    _references(ax, table, vertical=False)
    ipcs = [c.ipc for c in table.columns]
    ax.set_xscale("log")
    ax.set_xlim(min(ipcs) / 1.4, max(ipcs) * 1.4)
    ax.set_xticks(ipcs, [str(k) for k in ipcs])
    ax.minorticks_off()
    ax.set_xlabel("instances per class (IPC)")
    _finish(figure, ax, table)
    return figure


def draw_bytes(table: Table):
    """Accuracy against the stored bytes of the archive, as a matplotlib figure."""
    figure, ax = _figure(_line_height(table))
    _errorbars(ax, table, lambda _, cell: cell.archive_bytes / 1e6, linewidth=1.0)
    _references(ax, table, vertical=False)
    from matplotlib.ticker import FuncFormatter, NullFormatter

    sizes = [c.archive_bytes for r in _series(table) for c in r.cells.values()]
    if max(sizes) > 10 * min(sizes):      # log only where sizes span a decade
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("stored bytes (archive file, MB)")
    _finish(figure, ax, table)
    return figure


def draw_dots(table: Table, column: Column):
    """The rows of a table with results on one IPC only: a dot (mean ± std) per row, on an
    accuracy axis that runs from chance level to the full-data accuracy (when known)."""
    rows = [r for r in _series(table) if column.key in r.cells]
    return _dot_chart(table, [(row, column, _series_label(row)) for row in rows],
                      f"{_metric(table)} accuracy (%) at IPC {column.ipc}")


def draw_cells(table: Table):
    """Every cell of a temporal table as a dot (mean ± std), column by column (track, then
    formation) and in the table's row order within a column."""
    dots = [(row, column, f"{column_label(table, column)} · {_series_label(row)}")
            for column in table.columns for row in _series(table) if column.key in row.cells]
    # The title over the whole figure: the labels' column leaves the axes too narrow for it.
    return _dot_chart(table, dots, f"{_metric(table)} accuracy (%)", figure_title=True)


def _dot_chart(table: Table, dots: list[tuple[Row, Column, str]], xlabel: str, *,
               figure_title: bool = False):
    """A dot (mean ± std) per (row, column, label), top to bottom, on an accuracy axis that runs
    from chance level to the full-data accuracy (when known)."""
    figure, ax = _figure(1.5 + _DOT_ROW * len(dots) + _LEGEND_ROW)
    colors = _colors(table)
    for k, (row, column, _) in enumerate(dots):
        cell = row.cells[column.key]
        ax.errorbar([cell.mean], [k], xerr=[cell.std], color=colors[row.method],
                    marker=_MARKERS.get(row.label_strategy, "o"), capsize=3, linestyle="none")
    ax.set_yticks(range(len(dots)),
                  [_plain(f"{label} · {cell_count(row.cells[column.key])}")
                   for row, column, label in dots], fontsize=8)
    ax.set_ylim(len(dots) - 0.5, -0.5)       # the table's row order, top to bottom
    _references(ax, table, vertical=True)
    ax.margins(x=0.06)          # chance and full data off the frame's edge
    ax.set_xlabel(xlabel)
    if figure_title:
        figure.suptitle(_plain(table.title), fontsize=10)
    else:
        ax.set_title(_plain(table.title), fontsize=10)
    ax.grid(True, axis="x", linewidth=0.4, alpha=0.5)
    _clamp(ax, "x")
    _legend(figure, ax)
    return figure


def _errorbars(ax, table: Table, x: Callable[[Column, TableCell], float], *,
               linewidth: float) -> None:
    """One line per row with entries: mean ± std of each of its cells at ``x``."""
    colors = _colors(table)
    for row in _series(table):
        columns = [c for c in table.columns if c.key in row.cells]
        cells = [row.cells[c.key] for c in columns]
        ax.errorbar([x(column, cell) for column, cell in zip(columns, cells)],
                    [c.mean for c in cells], yerr=[c.std for c in cells],
                    label=_plain(_series_label(row)), color=colors[row.method],
                    linestyle=_LINESTYLES.get(row.label_strategy, "-"),
                    marker=_MARKERS.get(row.label_strategy, "o"), capsize=3, linewidth=linewidth)


def _references(ax, table: Table, *, vertical: bool) -> None:
    """Chance level and the full-data accuracy, as lines across the plot."""
    line = ax.axvline if vertical else ax.axhline
    line(_chance(table), color="0.55", linestyle=":", linewidth=1, label="chance")
    if table.full_data is not None:
        line(table.full_data.value, color="0.4", linestyle="--", linewidth=1, label="full data")


def _chance(table: Table) -> float:
    """Accuracy of a uniform guess: 1/K for top-1, k/K for top-k."""
    classes = load_protocol(table.protocol_version).dataset(table.dataset).num_classes
    k = int(table.metric[3:]) if table.metric.startswith("top") and table.metric[3:].isdigit() \
        else 1
    return min(100.0, 100.0 * k / classes)


def _clamp(ax, axis: str) -> None:
    """Accuracy lives in [0, 100]: an error bar may not stretch the axis beyond it."""
    low, high = ax.get_xlim() if axis == "x" else ax.get_ylim()
    low, high = max(low, 0.0), min(high, 100.0)
    if axis == "x":
        ax.set_xlim(low, high)
    else:
        ax.set_ylim(low, high)


def _finish(figure, ax, table: Table) -> None:
    ax.set_ylabel(f"{_metric(table)} accuracy (%)")
    ax.set_title(_plain(table.title), fontsize=10)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    _clamp(ax, "y")
    _legend(figure, ax)


def _legend(figure, ax) -> None:
    """The legend below the axes, so that no legend box can hide a line whatever the data."""
    handles, labels = ax.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", fontsize=7, frameon=False,
                  ncols=min(_LEGEND_COLUMNS, len(labels)))


def _line_height(table: Table) -> float:
    entries = len(_series(table)) + 1 + (table.full_data is not None)   # + chance, full data
    return 3.6 + _LEGEND_ROW * math.ceil(entries / _LEGEND_COLUMNS)


def _metric(table: Table) -> str:
    return METRIC_LABELS.get(table.metric, table.metric)


def _series(table: Table) -> list[Row]:
    return [r for r in table.rows if not r.placeholder and r.cells]


def _series_label(row: Row) -> str:
    return f"{row.method} ({labels_label(row.label_strategy, row.teacher_sha256)})"


def _columns_with_data(table: Table) -> list[Column]:
    used = {t for r in _series(table) for t in r.cells}
    return [c for c in table.columns if c.key in used]


def _colors(table: Table) -> dict[str, str]:
    """A colour per method of the table; Random is always grey."""
    methods = sorted({r.method for r in table.rows})
    colors = {m: _PALETTE[i % len(_PALETTE)]
              for i, m in enumerate(m for m in methods if m != "random")}
    colors["random"] = "#555555"
    return colors


def _plain(text: str) -> str:
    """Text matplotlib shows as is (a ``$`` would start mathtext)."""
    return " ".join(str(text).split()).replace("$", r"\$")


def _figure(height: float):
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "none"}):
        figure = Figure(figsize=(_WIDTH, height), layout="constrained")
        return figure, figure.add_subplot()


def _svg(figure) -> bytes:
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "none"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()
