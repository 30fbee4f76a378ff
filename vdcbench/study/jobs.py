"""Cells as submitit jobs: the function a job runs, the journal of which job each cell was last
submitted in, what a job's folder says of it now, and :class:`SubmititExecutor`, the study's
:class:`~vdcbench.study.executor.Executor` that hands cells to submitit.

A job runs a chunk of cells (:meth:`~vdcbench.study.cluster.ClusterOptions.chunk_size` of them)
one after another through :func:`~vdcbench.study.executor.run_cell`, exactly what the in-process
executor runs: the same archive, the same record, the same resume from a seed's last checkpoint. Several jobs go to
Slurm as one job array. Nothing here queues, retries or schedules: Slurm or submitit's local
executor runs the jobs, and a failed cell is resubmitted by the user (``vdcbench sweep FILE
--only CELL``). Where a cell stands is read back from its record first (done), then from its
job's result file, then from the scheduler (Slurm's ``sacct``; for a local job, whether its
process is alive).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vdcbench.core.atomic_file import write_json_atomic
from vdcbench.core.errors import VdcError
from vdcbench.core.json_values import load_json_strict
from vdcbench.core.locks import exclusive
from vdcbench.study.cells import CellCommand, StudyCell
from vdcbench.study.cluster import ClusterOptions, submitit_executor
from vdcbench.study.executor import CellOutcome, StudyProgress, run_cell

JOURNAL_FORMAT = "vdcbench-cell-jobs"
JOURNAL_VERSION = 1
# Job states as ``vdcbench sweep status`` says them, besides a cell's own "done" and "to run".
PENDING, RUNNING, SUCCEEDED = "pending", "running", "succeeded"
FAILED, UNKNOWN = "failed", "unknown"
_NO_SACCT = "NO_SACCT"
# sacct's states (``man sacct``, JOB STATE CODES), by what they mean for a cell.
_SLURM_WAITING = {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD",
                  "CONFIGURING", "SPECIAL_EXIT"}
_SLURM_RUNNING = {"RUNNING", "COMPLETING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "RESIZING",
                  "STOPPED"}


def cell_id(cell: StudyCell) -> str:
    """The cell's name on the command line (``--only``) and in the journal: its archive's name
    (method, settings digest, data set, track, labels, formation, condensation seed), then
    variant, net and evaluation seed. Stable across edits of the file that lists it."""
    return f"{cell.archive_name().removesuffix('.tar')}-{cell.variant}-{cell.net}-seed{cell.seed}"


# ------------------------------------------------------------------------------ in the job
def run_chunk(commands: Sequence[CellCommand],
              progress_factory: Callable[[], StudyProgress] | None = None) -> list[dict[str, Any]]:
    """What a job runs: its cells one after another; one plain entry per cell (its id, its
    record as stored, or the one-line reason it failed). ``progress_factory`` makes the
    progress the job reports to its log (the CLI's plain lines); a context manager is entered."""
    progress = progress_factory() if progress_factory is not None else StudyProgress()
    results = []
    with contextlib.ExitStack() as stack:
        if hasattr(progress, "__enter__"):
            stack.enter_context(progress)
        for index, command in enumerate(commands):
            progress.cell_started(index, len(commands), command)
            outcome = run_cell(command, progress)
            progress.cell_finished(index, len(commands), outcome)
            results.append({"cell": cell_id(command.cell), "error": outcome.error,
                            "condensed": outcome.condensed,
                            "record": None if outcome.record is None else outcome.record.to_dict()})
    return results


# ------------------------------------------------------------------------------ the journal
@dataclass(frozen=True)
class Submission:
    """The job a cell was last submitted in."""

    cell: str                   # the cell's id
    job_id: str                 # a local job's controller pid; Slurm's ("123_4" in an array)
    kind: str                   # "local" or "slurm"
    folder: Path                # submitit's folder: pickles and logs
    position: int               # the cell's place in its job's chunk
    log: Path                   # the job's stderr
    result: Path                # the job's result pickle (present once it returned or raised)
    submitted: str              # UTC, ISO 8601
    attempts: int = 1           # how many times this cell was submitted

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "kind": self.kind, "folder": str(self.folder),
                "position": self.position, "log": str(self.log), "result": str(self.result),
                "submitted": self.submitted, "attempts": self.attempts}

    @classmethod
    def from_dict(cls, cell: str, data: Mapping[str, Any]) -> "Submission":
        return cls(cell=cell, job_id=str(data["job_id"]), kind=str(data["kind"]),
                   folder=Path(data["folder"]), position=int(data["position"]),
                   log=Path(data["log"]), result=Path(data["result"]),
                   submitted=str(data["submitted"]), attempts=int(data.get("attempts", 1)))


class Journal:
    """``jobs.json``: each cell's last submission. Two submitters of one sweep at once each add
    theirs (read, merge and write under a lock); a cell's later submission replaces its earlier."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> dict[str, Submission]:
        if not self.path.is_file():
            return {}
        data = load_json_strict(self.path.read_bytes(), f"job journal {self.path}")
        try:
            if (data.get("format") != JOURNAL_FORMAT
                    or data.get("format_version") != JOURNAL_VERSION):
                raise ValueError(f"not a {JOURNAL_FORMAT} v{JOURNAL_VERSION} file")
            return {cell: Submission.from_dict(cell, body) for cell, body in data["cells"].items()}
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise VdcError(f"job journal {self.path} is unreadable ({exc}); remove it to forget "
                           f"which jobs ran (records are kept)") from None

    def record(self, submissions: Sequence[Submission]) -> None:
        with exclusive(self.path.parent, self.path.name, what="the sweep's job journal"):
            cells = self.read()
            for submission in submissions:
                previous = cells.get(submission.cell)
                attempts = 1 if previous is None else previous.attempts + 1
                cells[submission.cell] = dataclasses.replace(submission, attempts=attempts)
            write_json_atomic(self.path, {
                "format": JOURNAL_FORMAT, "format_version": JOURNAL_VERSION,
                "cells": {cell: cells[cell].to_dict() for cell in sorted(cells)}})


# ------------------------------------------------------------------------------ reading back
@dataclass(frozen=True)
class JobReading:
    """What a cell's last job says of it: a state and, for a failure, its one-line reason."""

    state: str                          # pending, running, succeeded, failed, unknown
    reason: str | None = None
    record: Mapping[str, Any] | None = None     # the record the job returned for the cell


def read_jobs(submissions: Sequence[Submission]) -> dict[str, JobReading]:
    """Each submission's job as its folder and the scheduler say it is now, by cell id. Slurm
    is asked once (one sacct call) for every job that left no result yet."""
    waiting = [s for s in submissions if not s.result.is_file()]
    states = _slurm_states({s.job_id for s in waiting if s.kind == "slurm"})
    return {s.cell: read_job(s, states.get(s.job_id)) for s in submissions}


def read_job(submission: Submission, slurm_state: str | None = None) -> JobReading:
    """The cell's job as its folder and the scheduler say it is now (``slurm_state``: sacct's
    word for it, when already asked)."""
    if submission.result.is_file():
        return _from_result(submission)
    if submission.kind == "local":
        if _local_job_alive(submission):
            return JobReading(RUNNING)
        return JobReading(FAILED, "its job ended without a result (killed, or out of memory)")
    if slurm_state is None:
        slurm_state = _slurm_states({submission.job_id})[submission.job_id]
    base = slurm_state.split()[0] if slurm_state else "UNKNOWN"
    if base == _NO_SACCT:
        return JobReading(UNKNOWN, "no sacct on this machine to ask Slurm (run status on the "
                                   "cluster)")
    if base in _SLURM_WAITING:
        return JobReading(PENDING)
    if base in _SLURM_RUNNING:
        return JobReading(RUNNING)
    if base == "UNKNOWN":
        return JobReading(UNKNOWN, f"sacct does not know job {submission.job_id} (yet)")
    return JobReading(FAILED, f"Slurm says {slurm_state} and the job left no result")


def _from_result(submission: Submission) -> JobReading:
    from submitit.core.utils import pickle_load
    try:
        outcome, value = pickle_load(submission.result)
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign pickle is the job's failure
        return JobReading(FAILED, f"its result file {submission.result} is unreadable ({exc})")
    if outcome != "success":
        lines = [line for line in str(value).strip().splitlines() if line.strip()]
        return JobReading(FAILED, f"the job raised {lines[-1].strip() if lines else 'an error'}")
    try:
        entry = value[submission.position]
        if entry["cell"] != submission.cell:
            raise KeyError(entry["cell"])
    except (IndexError, KeyError, TypeError):
        return JobReading(FAILED, f"job {submission.job_id}'s result does not hold this cell")
    if entry["error"] is not None:
        return JobReading(FAILED, entry["error"])
    return JobReading(SUCCEEDED, record=entry["record"])


def _local_job_alive(submission: Submission) -> bool:
    """Whether the local job's controller (its pid is the job id) still runs: a process of that
    pid running submitit's local controller on this job's folder, so a reused pid is not it."""
    try:
        pid = int(submission.job_id)
    except ValueError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        return "submitit.local._local" in text and str(submission.folder) in text
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _slurm_states(job_ids: set[str]) -> dict[str, str]:
    """sacct's state of each job, from one call (submitit's watcher asks for all it knows);
    UNKNOWN where sacct is missing, fails, or does not list the job."""
    if not job_ids:
        return {}
    if shutil.which("sacct") is None:
        return {job_id: _NO_SACCT for job_id in job_ids}
    import submitit
    watcher = submitit.SlurmJob.watcher
    for job_id in job_ids:
        watcher.register_job(job_id)
    with quiet_submitit():
        watcher.update()    # a failing sacct is logged, not raised: its jobs stay UNKNOWN
    return {job_id: str(watcher.get_state(job_id, mode="cache")) for job_id in job_ids}


@contextlib.contextmanager
def quiet_submitit() -> Iterator[None]:
    """submitit logs warnings to stdout and stderr and prints a failed sbatch's stderr; in this
    process what it says reaches the user as vdcbench's one line instead (its jobs still log)."""
    logger = logging.getLogger("submitit")
    disabled, logger.disabled = logger.disabled, True
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logger.disabled = disabled


# ------------------------------------------------------------------------------ submitting
@dataclass(frozen=True)
class SubmittedJob:
    job: Any                            # submitit's Job
    commands: tuple[CellCommand, ...]
    first: int                          # the index of its first command among those submitted

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)

    @property
    def log(self) -> Path:
        return Path(self.job.paths.stderr)


class SubmititExecutor:
    """Cells through submitit: ``run`` submits every command (one job per ``array_chunk`` of
    them) and yields their outcomes in order as the jobs finish. A job that ends without a
    result (killed, out of time or memory) is an outcome naming its log, not the end of the
    run; the other jobs go on."""

    def __init__(self, options: ClusterOptions, folder: Path, *, device: str = "cpu",
                 journal: Journal | None = None,
                 job_progress: Callable[[], StudyProgress] | None = None,
                 poll_seconds: float = 1.0):
        self.options = options
        self.folder = Path(folder).resolve()
        self.device = device
        self.journal = journal
        self.job_progress = job_progress
        self.poll_seconds = poll_seconds

    def submit(self, commands: Sequence[CellCommand]) -> list[SubmittedJob]:
        """Submit the commands, one job per chunk; the journal (if any) records each cell's job."""
        if not commands:
            return []
        executor = submitit_executor(self.options, self.folder, self.device)
        chunk = self.options.chunk_size(len(commands))
        chunks = [tuple(commands[i:i + chunk]) for i in range(0, len(commands), chunk)]
        handles = []
        try:
            with quiet_submitit(), executor.batch():
                for part in chunks:
                    handles.append(executor.submit(run_chunk, part, self.job_progress))
        except (OSError, RuntimeError) as exc:
            # sbatch's refusal (a bad partition or account) comes back as submitit's error.
            reason = str(exc).strip().splitlines()
            raise VdcError(f"submitting {len(chunks)} job(s) failed: "
                           f"{reason[-1] if reason else type(exc).__name__}") from None
        submitted, first = [], 0
        for handle, part in zip(handles, chunks):
            submitted.append(SubmittedJob(handle, part, first))
            first += len(part)
        if self.journal is not None:
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            self.journal.record([
                Submission(cell=cell_id(command.cell), job_id=job.job_id, kind=self.options.kind,
                           folder=self.folder, position=position, log=job.log,
                           result=Path(job.job.paths.result_pickle), submitted=now)
                for job in submitted for position, command in enumerate(job.commands)])
        return submitted

    def collect(self, submitted: Sequence[SubmittedJob],
                progress: StudyProgress | None = None) -> Iterator[CellOutcome]:
        """Each submitted cell's outcome, in order, waiting for its job."""
        progress = progress or StudyProgress()
        total = sum(len(job.commands) for job in submitted)
        for job in submitted:
            for position, outcome in enumerate(self._outcomes(job)):
                progress.cell_finished(job.first + position, total, outcome)
                yield outcome

    def run(self, commands: Sequence[CellCommand],
            progress: StudyProgress | None = None) -> Iterator[CellOutcome]:
        progress = progress or StudyProgress()
        submitted = self.submit(commands)
        for job in submitted:
            progress.job_submitted(job.job_id, job.commands, job.log)
        yield from self.collect(submitted, progress)

    def _outcomes(self, submitted: SubmittedJob) -> list[CellOutcome]:
        from submitit.core.utils import FailedJobError, UncompletedJobError
        job = submitted.job
        while not job.done():
            time.sleep(self.poll_seconds)
        try:
            entries = job.result()
        except FailedJobError:
            reading = _from_result(Submission(
                cell="", job_id=submitted.job_id, kind=self.options.kind, folder=self.folder,
                position=0, log=submitted.log, result=Path(job.paths.result_pickle),
                submitted=""))
            return [CellOutcome(c, None, f"{reading.reason}; its log: {submitted.log}")
                    for c in submitted.commands]
        except UncompletedJobError:
            reason = (f"job {submitted.job_id} ended without a result (killed, or out of time "
                      f"or memory); its log: {submitted.log}")
            return [CellOutcome(c, None, reason) for c in submitted.commands]
        from vdcbench.evaluation.records import EvalRecord
        return [CellOutcome(command, None if entry["record"] is None
                            else EvalRecord.from_dict(entry["record"]),
                            entry["error"], bool(entry["condensed"]))
                for command, entry in zip(submitted.commands, entries)]
