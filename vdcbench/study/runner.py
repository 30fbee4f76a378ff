"""A study end to end: plan its cells (which are done, what the rest will cost), run the rest
through an executor, and write its cells (JSON), its table (Markdown and JSON) and its plot.

A cell is done when a record of it exists in the results folder or in any folder looked up
(``submissions/records``), wherever that record's archive came from; so a stopped study
resumes, and a study whose records are all committed builds its table without running a cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vdcbench.core.atomic_file import write_json_atomic, write_text_atomic
from vdcbench.core.errors import VdcError
from vdcbench.data.datasets import resolve_dataset
from vdcbench.evaluation.records import EvalRecord
from vdcbench.protocol import LATEST_VERSION, Protocol, load_protocol
from vdcbench.study.cells import CellCommand, Narrowing, StudyCell, commands, expand
from vdcbench.study.cost import CondensationRates, Estimate, EvaluationRates
from vdcbench.study.executor import CellOutcome, Executor, InProcessExecutor, StudyProgress
from vdcbench.study.matching import RecordIndex
from vdcbench.study.paper import paper_figures
from vdcbench.study.spec import Study
from vdcbench.study.tables import StudyTable, build_table

CELLS_FORMAT = "vdcbench-study-cells"


@dataclass(frozen=True)
class StudyOptions:
    study: Study
    dataset: str
    folder: Path                        # the study's outputs, its archives under archives/
    results_dir: Path                   # where new records are written (and looked up)
    lookup: tuple[Path, ...] = ()       # further folders whose records count (submissions)
    archive_lookup: tuple[Path, ...] = ()   # folders of archives whose wall times give rates
    narrowing: Narrowing = Narrowing()
    epochs: int | None = None           # a shortened schedule: records not official
    device: str = "cpu"


@dataclass(frozen=True)
class PlannedCell:
    command: CellCommand
    records: tuple[EvalRecord, ...]     # the cell's records found: done when any
    condense: Estimate | None           # None: its archive exists, or an earlier cell makes it
    evaluate: Estimate | None           # None: done

    @property
    def done(self) -> bool:
        return bool(self.records)


@dataclass(frozen=True)
class StudyPlan:
    options: StudyOptions
    protocol: Protocol
    epochs: int                         # the schedule every cell is scored with
    cells: tuple[PlannedCell, ...]
    index: RecordIndex = field(repr=False, compare=False, default=None)

    @property
    def remaining(self) -> list[PlannedCell]:
        return [c for c in self.cells if not c.done]

    def total(self) -> Estimate:
        total = Estimate(0.0, "")
        for cell in self.remaining:
            for part in (cell.condense, cell.evaluate):
                if part is not None:
                    total = total + part
        return total

    def unknown_rates(self) -> int:
        return sum(1 for c in self.remaining for part in (c.condense, c.evaluate)
                   if part is not None and part.seconds is None)

    def steps(self) -> int:
        """Condensations and evaluations still to run."""
        return sum(1 for c in self.remaining for part in (c.condense, c.evaluate)
                   if part is not None)

    def known_seconds(self) -> float:
        return sum(part.seconds for c in self.remaining for part in (c.condense, c.evaluate)
                   if part is not None and part.seconds is not None)


@dataclass(frozen=True)
class StudyOutputs:
    cells_json: Path
    table_markdown: Path
    table_json: Path
    plots: tuple[Path, ...]
    table: StudyTable
    failed: tuple[CellOutcome, ...] = ()


def plan_study(options: StudyOptions) -> StudyPlan:
    """The study's cells on its data set, each with its records (if done) or its cost."""
    protocol = load_protocol(LATEST_VERSION)
    dataset = resolve_dataset(protocol, options.dataset)
    for name in options.study.labels:
        protocol.label_strategy(name)
    for name in options.study.variants:
        protocol.variant(name)
    for name in options.study.nets:
        protocol.net(name)
    if options.epochs is not None and options.epochs < 1:
        raise VdcError(f"--epochs must be at least 1, not {options.epochs}")
    epochs = options.epochs or protocol.trainer.epochs
    cells = expand(options.study, dataset.name, options.narrowing,
                   videos_per_class=lambda: _videos_per_class(dataset))
    index = RecordIndex.of_folders((options.results_dir, *options.lookup))
    rates = EvaluationRates(index.all_records())
    condensation = CondensationRates.of_folders(
        (Path(options.folder) / "archives", *options.archive_lookup))
    planned, made = [], set()
    for command in commands(cells, options.folder, options.results_dir, options.epochs,
                            options.device):
        found = tuple(index.of_cell(command.cell, protocol, epochs))
        condense = evaluate = None
        if not found:
            evaluate = rates.estimate(command.cell, epochs)
            if not command.archive.is_file() and command.archive not in made:
                condense = condensation.estimate(command.cell)
                made.add(command.archive)
        planned.append(PlannedCell(command, found, condense, evaluate))
    return StudyPlan(options, protocol, epochs, tuple(planned), index)


def _videos_per_class(dataset) -> int:
    """Every training video of the largest class: a track that keeps them all."""
    if dataset.generator is not None:
        return dataset.generator.train_per_class
    import numpy as np
    from vdcbench.data.splits import open_split
    labels = np.asarray(open_split(dataset, "train").labels)
    return int(np.bincount(labels).max())


def run_study(plan: StudyPlan, executor: Executor | None = None,
              progress: StudyProgress | None = None) -> list[CellOutcome]:
    """Run every cell not done, in order; the outcomes (records or one-line errors)."""
    executor = executor or InProcessExecutor()
    todo = [c.command for c in plan.remaining]
    outcomes = []
    for outcome in executor.run(todo, progress):
        if outcome.record is not None:
            plan.index.add(outcome.record)
        outcomes.append(outcome)
    return outcomes


def write_outputs(plan: StudyPlan, outcomes: Sequence[CellOutcome] = ()) -> StudyOutputs:
    """The study's cells, table and plot under its folder, from every record found."""
    options = plan.options
    folder = Path(options.folder)
    folder.mkdir(parents=True, exist_ok=True)
    failed = {o.command.cell: o.error for o in outcomes if o.record is None}
    cells = [c.command.cell for c in plan.cells]

    def records_of(cell: StudyCell) -> list[EvalRecord]:
        return plan.index.of_cell(cell, plan.protocol, plan.epochs)

    table = build_table(options.study, cells[0].dataset if cells else options.dataset,
                        plan.protocol.version, cells, records_of, paper_figures(),
                        full_data=lambda net: _teacher_top1(plan.protocol, options.dataset, net))
    stem = f"{options.study.name}-{options.dataset}"
    cells_json = folder / f"{stem}-cells.json"
    write_json_atomic(cells_json, {
        "format": CELLS_FORMAT, "format_version": 1, "study": options.study.name,
        "dataset": options.dataset, "protocol_sha256": plan.protocol.sha256,
        "epochs": plan.epochs, "official_schedule": plan.epochs == plan.protocol.trainer.epochs,
        "cells": [_cell_entry(c, records_of(c.command.cell), failed.get(c.command.cell))
                  for c in plan.cells]})
    table_markdown = folder / f"{stem}.md"
    write_text_atomic(table_markdown, _markdown_document(table))
    table_json = folder / f"{stem}-table.json"
    write_json_atomic(table_json, table.to_dict())
    from vdcbench.study.plot import plot_table
    plots = plot_table(table, folder / stem) if table.pivot.cells else ()
    return StudyOutputs(cells_json, table_markdown, table_json, tuple(plots), table,
                        tuple(o for o in outcomes if o.record is None))


def _cell_entry(planned: PlannedCell, records: list[EvalRecord],
                error: str | None) -> dict[str, Any]:
    return {**planned.command.cell.to_dict(), "archive": str(planned.command.archive),
            "status": "done" if records else ("failed" if error else "missing"),
            "error": error,
            "records": [{"archive_sha256": r.key.archive_sha256, "top1": r.top1, "top5": r.top5,
                         "official": r.official, "wall_seconds": r.wall_seconds}
                        for r in records]}


def _markdown_document(table: StudyTable) -> str:
    study = table.study
    return (f"## {study.title} ({table.dataset})\n\n"
            f"The study's {study.paper}. {table.caption()}.\n\n{table.markdown()}\n")


def _teacher_top1(protocol: Protocol, dataset: str, net: str) -> float | None:
    """The protocol teacher's validation top-1 of ``net`` on ``dataset``, where one is trained."""
    from vdcbench.train.teacher import find_teacher, teacher_sidecar
    path = find_teacher(protocol, dataset, net, None)
    return None if path is None else float(teacher_sidecar(path).val_top1)
