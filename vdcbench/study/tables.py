"""A study's table in the paper's layout, from the records of its cells, with the paper's figures.

Rows and columns are the axes the study names (``rows = ["method"]``, ``columns = ["ipc",
"labels"]``); a cell pools every record of its grid cells (seeds, and condensed sets made more
than once) and prints mean ± sample std with n, as ``vdcbench results --table`` does (the same
:class:`~vdcbench.evaluation.tables.Pivot`). Where the data set is one the study used, each
column with a paper figure gets a ``(paper)`` column beside it. Rows and columns without any
record or figure are left out, so a partly run study prints what it has.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vdcbench.evaluation.records import EvalRecord
from vdcbench.evaluation.tables import Pivot, PivotCell
from vdcbench.study.cells import StudyCell
from vdcbench.study.paper import FullDataFigure, PaperFigure, PaperFigures
from vdcbench.study.spec import Study

PAPER_SUFFIX = " (paper)"
FULL_DATA_ROW = Pivot.FULL_DATA_ROW


@dataclass(frozen=True)
class StudyTable:
    study: Study
    dataset: str
    metric: str                         # top1 | top5: the paper's metric on this data set
    corner: str
    pivot: Pivot
    # column -> row -> figure; the full-data row's figure apart
    paper: Mapping[str, Mapping[str, PaperFigure]] = field(default_factory=dict)
    paper_full_data: FullDataFigure | None = None
    # (row, column) -> the axis values of its cells: what a plot places them by
    axes: Mapping[tuple[str, str], Mapping[str, str]] = field(default_factory=dict)
    official: bool = True               # every record on the protocol's schedule and variant

    def header(self) -> list[str]:
        names = []
        for column in self.pivot.columns:
            names.append(column)
            if column in self.paper:
                names.append(column + PAPER_SUFFIX)
        return names

    def row_texts(self) -> list[tuple[str, list[str]]]:
        rows = []
        for name, texts in self.pivot.row_texts():
            spliced = []
            for column, text in zip(self.pivot.columns, texts):
                spliced.append(text)
                if column in self.paper:
                    spliced.append(self._paper_text(name, column))
            rows.append((name, spliced))
        return rows

    def _paper_text(self, row: str, column: str) -> str:
        if row == FULL_DATA_ROW:
            return "–" if self.paper_full_data is None else f"{self.paper_full_data.value:g}"
        figure = self.paper[column].get(row)
        return "–" if figure is None else f"{figure.value:g}"

    def markdown(self) -> str:
        header = self.header()
        lines = [f"| {self.corner} | " + " | ".join(header) + " |",
                 "|---" * (len(header) + 1) + "|"]
        lines += [f"| {name} | " + " | ".join(texts) + " |" for name, texts in self.row_texts()]
        return "\n".join(lines)

    def caption(self) -> str:
        what = {"top1": "top-1", "top5": "top-5"}[self.metric]
        parts = [f"{what} % (final epoch), mean ± std over n records"]
        if not self.official:
            parts.append("NOT official: shortened schedule or a study variant")
        if self.paper:
            sources = sorted({f.table for by_row in self.paper.values() for f in by_row.values()})
            parts.append(f"(paper): the study's figures ({', '.join(sources)})")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        cells = []
        for (row, column), cell in sorted(self.pivot.cells.items()):
            figure = self.paper.get(column, {}).get(row)
            cells.append({"row": row, "column": column, "values": list(cell.top1),
                          "mean": round(cell.mean, 4), "std": round(cell.std, 4), "n": cell.n,
                          "sets": cell.archives, "wall_seconds": list(cell.wall_seconds),
                          "paper": None if figure is None else {
                              "value": figure.value, "metric": figure.metric,
                              "source": figure.source()}})
        return {"study": self.study.name, "title": self.study.title, "paper": self.study.paper,
                "dataset": self.dataset, "metric": self.metric, "official": self.official,
                "rows": list(self.pivot.rows), "columns": list(self.pivot.columns),
                "full_data": dict(self.pivot.full_data), "cells": cells}


def axis_text(study: Study, axis: str, value: str) -> str:
    return f"IPC {value}" if axis == "ipc" else study.display(value)


def _label(study: Study, axes: Sequence[str], values: Mapping[str, str]) -> str:
    return " ".join(axis_text(study, a, values[a]) for a in axes)


def _orders(study: Study) -> dict[str, list[str]]:
    return {"method": list(dict.fromkeys(a.label for a in study.arms)),
            "shape": [s.label for s in study.shapes],
            "ipc": list(dict.fromkeys(str(s.ipc) for s in study.shapes)),
            "labels": list(study.labels), "variant": list(study.variants),
            "net": list(study.nets)}


def _order_key(orders: Mapping[str, list[str]], axes: Sequence[str],
               values: Mapping[str, str]) -> tuple:
    key = []
    for a in axes:
        known = orders[a]
        value = values[a]
        # "all" resolves per data set: an IPC not in the declared list sorts by its number.
        key.append((known.index(value), 0) if value in known
                   else (len(known), int(value) if value.isdigit() else 0))
    return tuple(key)


def table_metric(figures: Sequence[PaperFigure]) -> str:
    """The paper's metric on the data set (Kinetics-400: top-5), else top-1."""
    metrics = {f.metric for f in figures}
    return "top5" if metrics == {"top5"} else "top1"


def build_table(study: Study, dataset: str, protocol_version: int,
                cells: Sequence[StudyCell], records_of: Callable[[StudyCell], list[EvalRecord]],
                figures: PaperFigures,
                full_data: Callable[[str], float | None] | None = None) -> StudyTable:
    """The study's table on ``dataset``: ``records_of(cell)`` gives each cell's records,
    ``full_data(net)`` the top-1 of the net's teacher on the full train split (None: unknown)."""
    mine = figures.of(study.name, dataset)
    metric = table_metric(mine)
    orders = _orders(study)
    pooled: dict[tuple[str, str], list[EvalRecord]] = {}
    axes: dict[tuple[str, str], dict[str, str]] = {}
    row_keys: dict[str, tuple] = {}
    column_keys: dict[str, tuple] = {}
    nets_of_column: dict[str, set[str]] = {}
    for cell in cells:
        values = {a: cell.axis(a) for a in ("method", "shape", "ipc", "labels", "variant", "net")}
        row, column = _label(study, study.rows, values), _label(study, study.columns, values)
        nets_of_column.setdefault(column, set()).add(cell.net)
        found = records_of(cell)
        if not found:
            continue
        row_keys[row] = _order_key(orders, study.rows, values)
        column_keys[column] = _order_key(orders, study.columns, values)
        axes[(row, column)] = values
        members = pooled.setdefault((row, column), [])
        members += [r for r in found if all(r.key != m.key for m in members)]
    paper: dict[str, dict[str, PaperFigure]] = {}
    for figure in mine:
        values = dict(figure.at)
        if not all(a in values for a in study.rows + study.columns):
            continue
        row, column = _label(study, study.rows, values), _label(study, study.columns, values)
        paper.setdefault(column, {})[row] = figure
        row_keys.setdefault(row, _order_key(orders, study.rows, values))
        column_keys.setdefault(column, _order_key(orders, study.columns, values))
    value_of = (lambda r: r.top5) if metric == "top5" else (lambda r: r.top1)
    pivot_cells = {at: PivotCell(top1=tuple(value_of(r) for r in members),
                                 archives=len({r.key.archive_sha256 for r in members}),
                                 wall_seconds=tuple(r.wall_seconds for r in members))
                   for at, members in pooled.items()}
    columns = tuple(sorted(column_keys, key=column_keys.__getitem__))
    table = Pivot(kind="methods", dataset=dataset, protocol_version=protocol_version,
                  rows=tuple(sorted(row_keys, key=row_keys.__getitem__)), columns=columns,
                  cells=pivot_cells)
    if study.full_data_row and full_data is not None and metric == "top1":
        known = {}
        for column in columns:
            nets = nets_of_column.get(column, set())
            value = full_data(next(iter(nets))) if len(nets) == 1 else None
            if value is not None:
                known[column] = value
        table = table.with_full_data(known)
    nets = sorted({c.net for c in cells})
    corner = dataset if "net" in study.rows + study.columns or len(nets) != 1 else \
        f"{dataset}, {nets[0]}"
    everything = [r for members in pooled.values() for r in members]
    return StudyTable(study=study, dataset=dataset, metric=metric, corner=corner, pivot=table,
                      paper={c: rows for c, rows in paper.items() if c in columns},
                      paper_full_data=(figures.full_data_of(dataset)
                                       if study.full_data_row and table.full_data else None),
                      axes=axes, official=all(r.official for r in everything))
