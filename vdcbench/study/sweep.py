"""A sweep: cells listed in a TOML file (``vdcbench sweep CELLS.toml``), run as submitit jobs.

A sweep file lists cells as a study does (:class:`~vdcbench.study.cells.StudyCell`: method and
its settings, data set, track, label strategy, variant, formation, net, condensation seed,
evaluation seed), without a study's table, and says how its jobs are asked for::

    format = "vdcbench-sweep"
    format_version = 1

    [sweep]
    dataset = "synthetic"       # the cells' data set unless a cell names its own
    epochs = 2                  # optional: a shortened schedule (records not official)

    [executor]
    kind = "slurm"              # or "local"
    partition = "gpu"
    gpus = 1
    time = "4:00:00"

    [[cells]]
    method = "rded"
    ipc = 1
    labels = ["hard", "multi-sl"]
    seeds = [0, 1, 2]

Each ``[[cells]]`` table is a small grid: one cell per label strategy × variant × net ×
condensation seed × evaluation seed it lists. Paths in the file are relative to the file's
folder. A cell is done when a record of it exists (the same test a study uses,
:mod:`vdcbench.study.matching`), running while its last job runs, failed when that job ended
without the cell's record; :func:`sweep_status` says which, and :func:`dispatch` submits the rest.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vdcbench.core.errors import UnknownNameError, VdcError
from vdcbench.study.cells import CellCommand, StudyCell, commands
from vdcbench.study.cluster import ClusterOptions, parse_cluster_options
from vdcbench.study.jobs import (FAILED, PENDING, RUNNING, SUCCEEDED, UNKNOWN, Journal,
                                 Submission, SubmititExecutor, SubmittedJob, cell_id, read_jobs)
from vdcbench.study.spec import FORMATION_NONE, Arm, Shape

SWEEP_FORMAT = "vdcbench-sweep"
SWEEP_FORMAT_VERSION = 1
DONE, TO_RUN = "done", "to run"
_TOP_KEYS = frozenset({"format", "format_version", "sweep", "executor", "cells"})
_SWEEP_KEYS = frozenset({"name", "dataset", "folder", "results_dir", "records", "epochs",
                         "device"})
_CELL_KEYS = frozenset({"method", "label", "settings", "dataset", "ipc", "frames", "formation",
                        "labels", "variants", "nets", "condensation_seeds", "seeds"})


@dataclass(frozen=True)
class Sweep:
    path: Path                          # the sweep file
    name: str
    cells: tuple[StudyCell, ...]
    folder: Path                        # archives/, jobs/ (submitit's) and jobs.json
    results_dir: Path                   # where records are written and looked up
    lookup: tuple[Path, ...] = ()       # further folders whose records count as done cells
    epochs: int | None = None           # a shortened schedule: records not official
    device: str = "cpu"
    executor: ClusterOptions = field(default_factory=ClusterOptions)

    @property
    def jobs_folder(self) -> Path:
        return self.folder / "jobs"

    @property
    def journal(self) -> Journal:
        return Journal(self.folder / "jobs.json")

    def commands(self) -> list[CellCommand]:
        return commands(self.cells, self.folder, self.results_dir, self.epochs, self.device)


# ------------------------------------------------------------------------------ the file
def load_sweep(path: Path) -> Sweep:
    """The sweep file at ``path``; anything unexpected is one line saying where."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise VdcError(f"cannot read sweep file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise VdcError(f"sweep file {path} is not TOML: {exc}") from None
    return parse_sweep(raw, path)


def parse_sweep(raw: Mapping[str, Any], path: Path) -> Sweep:
    where = str(path)
    if raw.get("format") != SWEEP_FORMAT or raw.get("format_version") != SWEEP_FORMAT_VERSION:
        raise VdcError(f"{where}: not a {SWEEP_FORMAT} v{SWEEP_FORMAT_VERSION} file (it starts "
                       f"with format = \"{SWEEP_FORMAT}\" and format_version = "
                       f"{SWEEP_FORMAT_VERSION})")
    _no_unknown(raw, _TOP_KEYS, where, "the file")
    head = raw.get("sweep", {})
    if not isinstance(head, Mapping):
        raise VdcError(f"{where}: [sweep] must be a table")
    _no_unknown(head, _SWEEP_KEYS, where, "[sweep]")
    base = path.resolve().parent
    name = _string(head.get("name", path.stem), where, "[sweep] name")
    folder = _path(head.get("folder", f"{path.stem}-sweep"), base, where, "[sweep] folder")
    results_dir = _path(head.get("results_dir", str(folder / "records")), base, where,
                        "[sweep] results_dir")
    lookup = head.get("records", [])
    if not isinstance(lookup, list) or not all(isinstance(p, str) for p in lookup):
        raise VdcError(f"{where}: [sweep] records must be a list of folders")
    epochs = head.get("epochs")
    if epochs is not None and (not isinstance(epochs, int) or isinstance(epochs, bool)
                               or epochs < 1):
        raise VdcError(f"{where}: [sweep] epochs must be a positive integer, not {epochs!r}")
    dataset = head.get("dataset")
    if dataset is not None:
        dataset = _string(dataset, where, "[sweep] dataset")
    tables = raw.get("cells")
    if not isinstance(tables, list) or not tables:
        raise VdcError(f"{where}: lists no cells (add [[cells]] tables)")
    cells: list[StudyCell] = []
    for n, table in enumerate(tables):
        cells += _cells(table, name, dataset, where, f"[[cells]] {n + 1}")
    seen: dict[str, int] = {}
    for cell in cells:
        identity = cell_id(cell)
        if identity in seen:
            raise VdcError(f"{where}: cell {identity} is listed twice")
        seen[identity] = 1
    return Sweep(path=path, name=name, cells=tuple(cells), folder=folder,
                 results_dir=results_dir, lookup=tuple(_path(p, base, where, "[sweep] records")
                                                       for p in lookup),
                 epochs=epochs, device=_string(head.get("device", "cpu"), where, "[sweep] device"),
                 executor=(parse_cluster_options(raw["executor"], where) if "executor" in raw
                           else ClusterOptions()))


def _no_unknown(table: Mapping[str, Any], known: frozenset[str], where: str, what: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise VdcError(f"{where}: {what} has unknown keys {unknown} "
                       f"(its keys: {', '.join(sorted(known))})")


def _string(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise VdcError(f"{where}: {what} must be a non-empty string, not {value!r}")
    return value


def _path(value: Any, base: Path, where: str, what: str) -> Path:
    path = Path(_string(value, where, what)).expanduser()
    return path if path.is_absolute() else base / path


def _list(table: Mapping[str, Any], key: str, default: list, where: str, kind: type) -> tuple:
    value = table.get(key, default)
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, kind) and not isinstance(v, bool) for v in value)
            or (kind is int and any(v < 0 for v in value))):
        noun = "non-negative integers" if kind is int else "strings"
        raise VdcError(f"{where} {key} must be a non-empty list of {noun}, not {value!r}")
    return tuple(dict.fromkeys(value))


def _cells(table: Any, sweep: str, dataset: str | None, path: str, at: str) -> list[StudyCell]:
    where = f"{path}: {at}"
    if not isinstance(table, Mapping):
        raise VdcError(f"{where} must be a table")
    _no_unknown(table, _CELL_KEYS, path, at)
    from vdcbench.methods.catalog import require_registered
    method = _string(table.get("method"), path, f"{at} method")
    try:
        require_registered(method)
    except UnknownNameError as exc:
        raise VdcError(f"{where}: {exc}") from None
    settings = table.get("settings", {})
    if not isinstance(settings, Mapping):
        raise VdcError(f"{where} settings must be a table of --set values")
    arm = Arm(method=method, label=str(table.get("label", method)),
              settings=tuple(sorted(settings.items())))
    ipc, frames = table.get("ipc"), table.get("frames", 8)
    for key, value in (("ipc", ipc), ("frames", frames)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise VdcError(f"{where} {key} must be a positive integer, not {value!r}")
    formation = _string(table.get("formation", FORMATION_NONE), path, f"{at} formation")
    shape = Shape(ipc=ipc, frames=frames, formation=formation, label=f"[{ipc}, {frames}]")
    cell_dataset = table.get("dataset", dataset)
    if cell_dataset is None:
        raise VdcError(f"{where} names no dataset (and [sweep] gives none)")
    _string(cell_dataset, path, f"{at} dataset")
    labels = _list(table, "labels", ["hard"], where, str)
    variants = _list(table, "variants", ["official"], where, str)
    nets = _list(table, "nets", ["minic3d"], where, str)
    _check_names(labels, variants, nets, where)
    condensation_seeds = _list(table, "condensation_seeds", [0], where, int)
    seeds = _list(table, "seeds", [0, 1, 2], where, int)
    return [StudyCell(sweep, arm, cell_dataset, shape, label, variant, net, cs, seed)
            for label in labels for variant in variants for net in nets
            for cs in condensation_seeds for seed in seeds]


def _check_names(labels: Sequence[str], variants: Sequence[str], nets: Sequence[str],
                 where: str) -> None:
    """Names the protocol does not know are refused now, not in every job."""
    from vdcbench.protocol import LATEST_VERSION, load_protocol
    protocol = load_protocol(LATEST_VERSION)
    try:
        for name in labels:
            protocol.label_strategy(name)
        for name in variants:
            protocol.variant(name)
        for name in nets:
            protocol.net(name)
    except VdcError as exc:
        raise VdcError(f"{where}: {exc}") from None
    if "kl" in variants and "hard" in labels:
        raise VdcError(f"{where}: the kl variant needs teacher labels (soft or multi-sl), "
                       f"not hard")


# ------------------------------------------------------------------------------ where it stands
@dataclass(frozen=True)
class SweepCell:
    id: str
    command: CellCommand
    state: str                          # done, to run, pending, running, failed, unknown
    records: tuple = ()                 # the cell's records (EvalRecord), when done
    submission: Submission | None = None
    reason: str | None = None           # why it failed (or why its state is unknown)

    @property
    def log(self) -> Path | None:
        return None if self.submission is None else self.submission.log


@dataclass(frozen=True)
class SweepStatus:
    sweep: Sweep
    epochs: int                         # the schedule every cell is scored with
    official_epochs: int
    cells: tuple[SweepCell, ...]

    def count(self, state: str) -> int:
        return sum(1 for c in self.cells if c.state == state)

    def find(self, ids: Sequence[str]) -> list[SweepCell]:
        """The cells named ``ids`` (each id, or a unique prefix of one); an unknown id is one
        line with the closest."""
        by_id = {c.id: c for c in self.cells}
        found = []
        for wanted in ids:
            if wanted in by_id:
                found.append(by_id[wanted])
                continue
            matching = [c for c in self.cells if c.id.startswith(wanted)]
            if len(matching) == 1:
                found.append(matching[0])
            elif matching:
                raise VdcError(f"--only {wanted}: names {len(matching)} cells of "
                               f"{self.sweep.path}; give the whole id")
            else:
                raise UnknownNameError("cell", wanted, by_id)
        return list({cell.id: cell for cell in found}.values())


def sweep_status(sweep: Sweep) -> SweepStatus:
    """Each cell's state: done from its records, else from its last job (the journal)."""
    from vdcbench.protocol import LATEST_VERSION, load_protocol
    from vdcbench.study.matching import RecordIndex
    protocol = load_protocol(LATEST_VERSION)
    epochs = sweep.epochs or protocol.trainer.epochs
    index = RecordIndex.of_folders((sweep.results_dir, *sweep.lookup))
    journal = sweep.journal.read()
    found = [(command, cell_id(command.cell), tuple(index.of_cell(command.cell, protocol, epochs)))
             for command in sweep.commands()]
    readings = read_jobs([journal[identity] for _, identity, records in found
                          if not records and identity in journal])
    cells = []
    for command, identity, records in found:
        submission = journal.get(identity)
        if records:
            cells.append(SweepCell(identity, command, DONE, records, submission))
        elif submission is None:
            cells.append(SweepCell(identity, command, TO_RUN))
        else:
            reading = readings[identity]
            state, reason = reading.state, reading.reason
            if state == SUCCEEDED:      # the job says it wrote a record this folder lacks
                state, reason = FAILED, (f"its job finished, but its record is not under "
                                         f"{sweep.results_dir}")
            cells.append(SweepCell(identity, command, state, (), submission, reason))
    return SweepStatus(sweep, epochs, protocol.trainer.epochs, tuple(cells))


# ------------------------------------------------------------------------------ dispatching
@dataclass(frozen=True)
class Dispatch:
    submitted: tuple[SubmittedJob, ...]
    skipped: tuple[SweepCell, ...]      # done, or its job still pending or running
    executor: SubmititExecutor


def choose(status: SweepStatus, only: Sequence[str] | None = None) -> tuple[list[SweepCell],
                                                                            list[SweepCell]]:
    """(the cells to submit, the cells left alone). Without ``only``: every cell never
    submitted or failed. With it: those cells, unless done or their job is still queued or
    running (a cell whose state Slurm does not know yet is submitted again only when named)."""
    named = status.cells if only is None else status.find(only)
    retry = {TO_RUN, FAILED} | ({UNKNOWN} if only is not None else set())
    chosen = [c for c in named if c.state in retry]
    return chosen, [c for c in named if c.state not in retry]


def dispatch(status: SweepStatus, only: Sequence[str] | None = None,
             job_progress=None) -> Dispatch:
    """Submit the cells :func:`choose` picks, one job per ``array_chunk`` of them, and record
    each cell's job in the sweep's journal."""
    sweep = status.sweep
    chosen, skipped = choose(status, only)
    executor = SubmititExecutor(sweep.executor, sweep.jobs_folder, device=sweep.device,
                                journal=sweep.journal, job_progress=job_progress)
    submitted = executor.submit([c.command for c in chosen])
    return Dispatch(tuple(submitted), tuple(skipped), executor)


STATE_ORDER = (DONE, RUNNING, PENDING, FAILED, UNKNOWN, TO_RUN)
