"""The study's own figures, transcribed into ``paper_figures.toml``, placed beside ours.

Each figure names the table, row and column of the paper it was read from, and its ``at``: the
axis values of the study cell it compares with (method or arm label, shape label, IPC, label
strategy, variant, net). Only a data set the study used has figures; elsewhere a study's table
has no paper column.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vdcbench.core.errors import VdcError
from vdcbench.study.spec import AXES

FIGURES_PATH = Path(__file__).with_name("paper_figures.toml")
FIGURES_FORMAT = "vdcbench-paper-figures"
METRICS = ("top1", "top5")


@dataclass(frozen=True)
class PaperFigure:
    study: str
    dataset: str
    table: str          # "Table 6"
    row: str            # the paper's row, as printed
    column: str         # the paper's column, as printed
    metric: str         # top1 | top5
    value: float
    at: tuple[tuple[str, str], ...]   # axis -> value, as a study cell names it

    def axis(self, name: str) -> str | None:
        return dict(self.at).get(name)

    def source(self) -> str:
        return f"{self.table}, row {self.row}, column {self.column}"


@dataclass(frozen=True)
class FullDataFigure:
    dataset: str
    table: str
    row: str
    metric: str
    value: float


@dataclass(frozen=True)
class PaperFigures:
    figures: tuple[PaperFigure, ...]
    full_data: tuple[FullDataFigure, ...]

    def of(self, study: str, dataset: str) -> list[PaperFigure]:
        return [f for f in self.figures if f.study == study and f.dataset == dataset]

    def full_data_of(self, dataset: str) -> FullDataFigure | None:
        return next((f for f in self.full_data if f.dataset == dataset), None)


def _value(raw: Mapping[str, Any], key: str, where: str, kind: type) -> Any:
    value = raw.get(key)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind):
        raise VdcError(f"{FIGURES_PATH.name}: {where}: {key} must be a {kind.__name__}")
    return value


def parse_figures(raw: Mapping[str, Any]) -> PaperFigures:
    if raw.get("format") != FIGURES_FORMAT or raw.get("format_version") != 1:
        raise VdcError(f"{FIGURES_PATH.name}: not a {FIGURES_FORMAT} v1 file")
    figures = []
    for i, f in enumerate(raw.get("figures", [])):
        where = f"figure {i}"
        at = f.get("at")
        if not isinstance(at, Mapping) or set(at) - set(AXES):
            raise VdcError(f"{FIGURES_PATH.name}: {where}: at must map axes "
                           f"({', '.join(AXES)}) to values")
        metric = _value(f, "metric", where, str)
        if metric not in METRICS:
            raise VdcError(f"{FIGURES_PATH.name}: {where}: metric must be top1 or top5")
        figures.append(PaperFigure(
            study=_value(f, "study", where, str), dataset=_value(f, "dataset", where, str),
            table=_value(f, "table", where, str), row=_value(f, "row", where, str),
            column=_value(f, "column", where, str), metric=metric,
            value=_value(f, "value", where, float),
            at=tuple(sorted((k, str(v)) for k, v in at.items()))))
    full = [FullDataFigure(dataset=_value(f, "dataset", "full_data", str),
                           table=_value(f, "table", "full_data", str),
                           row=_value(f, "row", "full_data", str),
                           metric=_value(f, "metric", "full_data", str),
                           value=_value(f, "value", "full_data", float))
            for f in raw.get("full_data", [])]
    return PaperFigures(tuple(figures), tuple(full))


@functools.lru_cache(maxsize=1)
def paper_figures() -> PaperFigures:
    return parse_figures(tomllib.loads(FIGURES_PATH.read_text()))
