"""Running cell commands: a list of commands in, one outcome (a record or a one-line error) out
per command. :class:`InProcessExecutor` runs them one after another in this process;
:class:`vdcbench.study.jobs.SubmititExecutor` implements the same :class:`Executor` and hands
them to submitit (Slurm, or its local executor), whose jobs run :func:`run_cell` too.

A cell's archive is made when missing (``run_baseline``), then the cell is scored
(``evaluate_cell``, which reuses a stored record under the command's results folder and resumes
a seed stopped mid-training from its last checkpoint). A cell that fails with a user error is an
outcome, not the end of the study; a Ctrl-C (KeyboardInterrupt) ends it, and the same study
resumes from the records and checkpoints it left. Cells that share an archive may run at once
in several jobs: the first makes it under a lock and the others wait for it and score it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol as Interface

from vdcbench.core.errors import VdcError
from vdcbench.core.locks import exclusive
from vdcbench.evaluation.progress import SILENT, Progress
from vdcbench.evaluation.records import EvalRecord
from vdcbench.study.cells import CellCommand
from vdcbench.study.matching import condensation_settings
from vdcbench.study.spec import FORMATION_NONE


@dataclass(frozen=True)
class CellOutcome:
    command: CellCommand
    record: EvalRecord | None       # None when the cell failed
    error: str | None = None        # the one-line reason it failed
    condensed: bool = False         # this run made the cell's archive


class StudyProgress(Progress):
    """The evaluation's events plus a study's: which cell starts and how it ended."""

    def cell_started(self, index: int, total: int, command: CellCommand) -> None:
        """Cell ``index`` (0-based) of ``total`` begins."""

    def cell_finished(self, index: int, total: int, outcome: CellOutcome) -> None:
        """Cell ``index`` ended with ``outcome`` (a record, or its error)."""

    def job_submitted(self, job_id: str, commands: Sequence[CellCommand], log: Path) -> None:
        """A cluster executor submitted ``commands`` as job ``job_id``, which logs to ``log``
        (its cells then report no start, only how they ended)."""


class Executor(Interface):
    def run(self, commands: Sequence[CellCommand],
            progress: StudyProgress | None = None) -> Iterator[CellOutcome]:
        """One outcome per command, in order, as each finishes."""
        ...


class InProcessExecutor:
    """Cells one after another in this process."""

    def run(self, commands: Sequence[CellCommand],
            progress: StudyProgress | None = None) -> Iterator[CellOutcome]:
        progress = progress or StudyProgress()
        for index, command in enumerate(commands):
            progress.cell_started(index, len(commands), command)
            outcome = run_cell(command, progress)
            progress.cell_finished(index, len(commands), outcome)
            yield outcome


def run_cell(command: CellCommand, progress: Progress = SILENT) -> CellOutcome:
    """Make the cell's archive if missing, then score it: the unit every executor runs."""
    from vdcbench.evaluation import api
    condensed = False
    try:
        if not command.archive.is_file():
            command.archive.parent.mkdir(parents=True, exist_ok=True)
            with exclusive(command.archive.parent, command.archive.name,
                           what=f"the making of {command.archive.name}"):
                if not command.archive.is_file():    # another job made it while this one waited
                    api.run_baseline(**_condensation_arguments(command, api.run_baseline),
                                     progress=progress)
                    condensed = True
        record = api.evaluate_cell(command.archive, command.cell.net, command.cell.seed,
                                   variant=command.cell.variant, device=command.device,
                                   results_dir=command.results_dir, epochs=command.epochs,
                                   progress=progress,
                                   **_formation_argument(command, api.evaluate_cell))
    except VdcError as exc:
        return CellOutcome(command, None, str(exc), condensed)
    return CellOutcome(command, record, None, condensed)


def _accepts(function, name: str) -> bool:
    return name in inspect.signature(function).parameters


def _formation_argument(command: CellCommand, evaluate) -> dict[str, str]:
    """The formation for the evaluation. A ``none`` cell passes nothing (every evaluation reads
    8-frame instances so); another needs an evaluation that takes a formation, and where this
    vdcbench's does not, the cell fails in one line instead of being scored as ``none``."""
    formation = command.cell.formation
    if formation == FORMATION_NONE:
        return {}
    if not _accepts(evaluate, "formation"):
        raise VdcError(f"formation {formation!r} for track {command.cell.track}: this vdcbench's "
                       f"evaluation reads no temporal formation yet (issue 15)")
    return {"formation": formation}


def _condensation_arguments(command: CellCommand, run_baseline) -> dict[str, object]:
    cell = command.cell
    arguments: dict[str, object] = dict(
        method=cell.method, dataset=cell.dataset, ipc=cell.ipc, frames=cell.frames,
        label_strategy=cell.labels, settings=condensation_settings(cell),
        seed=cell.condensation_seed, output=command.archive, overwrite=False,
        device=command.device)
    # The study condenses through the formation it evaluates with (its Section 4.2): where
    # run_baseline takes it as an argument rather than the method as a setting.
    if cell.formation != FORMATION_NONE and _accepts(run_baseline, "formation"):
        arguments["formation"] = cell.formation
    return arguments
