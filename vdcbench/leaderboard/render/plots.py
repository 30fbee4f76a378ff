"""The plots of a table, as SVG: accuracy against IPC per method and label strategy (the study's
Figure 4) and accuracy against the stored bytes of the archive.

SVGs are written with a fixed ``svg.hashsalt`` and no date, so the same table gives the same
bytes (on the same matplotlib version).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

from vdcbench.leaderboard.render.text import labels_label
from vdcbench.leaderboard.tables import METRIC_LABELS, Column, Row, Table, TableCell

SVG_HASHSALT = "vdcbench-leaderboard"
_LINESTYLES = {"hard": "-", "soft": "--", "multi-sl": ":"}
_MARKERS = {"hard": "o", "soft": "s", "multi-sl": "^"}
_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
            "#17becf", "#bcbd22", "#7f7f7f"]


@dataclass(frozen=True)
class Plot:
    path: str          # relative to leaderboard/
    caption: str
    svg: bytes


def table_plots(table: Table) -> tuple[Plot, Plot]:
    """The two plots of ``table``, against IPC and against stored bytes."""
    return (Plot(f"plots/{table.slug}-ipc.svg", f"{table.title}: accuracy against IPC",
                 plot_ipc(table)),
            Plot(f"plots/{table.slug}-bytes.svg", f"{table.title}: accuracy against stored bytes",
                 plot_bytes(table)))


def plot_ipc(table: Table) -> bytes:
    """Accuracy against IPC per method and label strategy (the study's Figure 4)."""
    figure, ax = _figure()
    _errorbars(ax, table, lambda column, _: column.ipc, linewidth=1.4)
    if table.full_data is not None:
        ax.axhline(table.full_data.value, color="0.4", linestyle="--", linewidth=1,
                   label="full data")
    ax.set_xscale("log")
    ax.set_xticks([c.ipc for c in table.columns], [str(c.ipc) for c in table.columns])
    ax.minorticks_off()
    ax.set_xlabel("instances per class (IPC)")
    _finish(ax, table)
    return _svg(figure)


def plot_bytes(table: Table) -> bytes:
    """Accuracy against the stored bytes of the archive."""
    figure, ax = _figure()
    _errorbars(ax, table, lambda _, cell: cell.archive_bytes / 1e6, linewidth=1.0)
    from matplotlib.ticker import FuncFormatter, NullFormatter

    sizes = [c.archive_bytes for r in _series(table) for c in r.cells.values()]
    if sizes and max(sizes) > 10 * min(sizes):      # log only where sizes span a decade
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("stored bytes (archive file, MB)")
    _finish(ax, table)
    return _svg(figure)


def _errorbars(ax, table: Table, x: Callable[[Column, TableCell], float], *,
               linewidth: float) -> None:
    """One line per row with entries: mean ± std of each of its cells at ``x``."""
    colors = _colors(table)
    for row in _series(table):
        columns = [c for c in table.columns if c.track in row.cells]
        cells = [row.cells[c.track] for c in columns]
        ax.errorbar([x(column, cell) for column, cell in zip(columns, cells)],
                    [c.mean for c in cells], yerr=[c.std for c in cells],
                    label=_plain(f"{row.method} "
                                 f"({labels_label(row.label_strategy, row.teacher_sha256)})"),
                    color=colors[row.method], linestyle=_LINESTYLES.get(row.label_strategy, "-"),
                    marker=_MARKERS.get(row.label_strategy, "o"), capsize=3, linewidth=linewidth)


def _finish(ax, table: Table) -> None:
    ax.set_ylabel(f"{METRIC_LABELS.get(table.metric, table.metric)} accuracy (%)")
    ax.set_title(_plain(table.title), fontsize=10)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.legend(fontsize=7, loc="best")


def _series(table: Table) -> list[Row]:
    return [r for r in table.rows if not r.placeholder and r.cells]


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


def _figure():
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "none"}):
        figure = Figure(figsize=(6.4, 4.2), layout="constrained")
        return figure, figure.add_subplot()


def _svg(figure) -> bytes:
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "none"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()
