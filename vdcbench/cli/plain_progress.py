"""Progress as plain lines, for output that is not a terminal: a log, ``nohup``, a Slurm file.

A rich bar redraws itself with carriage returns and escape codes, which a log either shows as
garbage or (rich's choice when the stream is not a terminal) does not get at all until the bar
stops: ten minutes of ``prepare`` wrote nothing. These lines say what, done/total, rate and ETA,
at most once every ``interval`` seconds per task, plus the first and the last, so a log grows
slowly however fast the work reports.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from vdcbench.core.errors import VdcError

INTERVAL_ENV = "VDCBENCH_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 10.0


def interval_from_env() -> float:
    """Seconds between two lines of one task: ``$VDCBENCH_PROGRESS_INTERVAL``, else 10."""
    text = os.environ.get(INTERVAL_ENV, "").strip()
    if not text:
        return DEFAULT_INTERVAL
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise VdcError(f"{INTERVAL_ENV}={text!r} must be a number of seconds, 0 or more")
    return seconds


def clock_text(seconds: float) -> str:
    """``h:mm:ss``, as rich's elapsed and remaining columns show it."""
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def rate_text(per_second: float) -> str:
    """Units per second, or seconds per unit when a unit takes longer than a second (an epoch)."""
    return f"{per_second:.1f}/s" if per_second >= 1 else f"{1 / per_second:.1f} s each"


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float
    info: str
    started: float
    # The rate counts from the task's first report: work already done by then (a resumed
    # prepare's videos, a resumed teacher's epochs) would make the ETA far too short.
    base: float | None = None
    base_time: float = 0.0
    last_line: float = -math.inf
    last_text: str = ""
    finished: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.total is not None and self.completed >= self.total


class PlainProgress:
    """The calls of ``rich.progress.Progress`` that vdcbench makes, writing lines to ``stream``."""

    def __init__(self, stream: TextIO, *, interval: float = DEFAULT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic):
        self._stream = stream
        self._interval = interval
        self._clock = clock
        self._tasks: dict[int, _Task] = {}

    def __enter__(self) -> "PlainProgress":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        """Nothing to draw until a task reports (rich starts its refresh thread here)."""

    def stop(self) -> None:
        """The last line of every task whose state was not written yet (one cut short, or whose
        total was never known), so a log ends with where each task stood."""
        for task in self._tasks.values():
            if not task.finished and self._line(task) != task.last_text:
                self._write(task)

    def add_task(self, description: str, total: float | None = None, completed: float = 0,
                 info: str = "", **fields) -> int:
        task_id = len(self._tasks)
        now = self._clock()
        task = _Task(description=description, total=total, completed=completed, info=info,
                     started=now, extra=dict(fields))
        self._tasks[task_id] = task
        self._write(task)
        return task_id

    def update(self, task_id: int, *, completed: float | None = None, total: float | None = None,
               advance: float | None = None, description: str | None = None,
               info: str | None = None, **fields) -> None:
        task = self._tasks[task_id]
        now = self._clock()
        # One task can carry phases one after another (a distillation's initial selection over
        # classes, then its iterations): a new total or a count going back starts a new phase,
        # which is reported again and whose rate counts afresh.
        if ((total is not None and total != task.total)
                or (completed is not None and completed < task.completed)):
            task.finished, task.base = False, None
        if total is not None:
            task.total = total
        if advance is not None:
            task.completed += advance
        if completed is not None:
            task.completed = completed
        if description is not None:
            task.description = description
        if info is not None:
            task.info = info
        task.extra.update(fields)
        if task.base is None and (completed is not None or advance is not None):
            task.base, task.base_time = task.completed, now
        if task.finished:
            return
        if task.done or now - task.last_line >= self._interval:
            self._write(task)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def _write(self, task: _Task) -> None:
        text = self._line(task)
        task.last_line, task.last_text = self._clock(), text
        task.finished = task.done
        self._stream.write(text + "\n")
        self._stream.flush()

    def _line(self, task: _Task) -> str:
        now = self._clock()
        done = _number(task.completed)
        if task.total is None:
            parts = [f"{task.description}: {done} done"]
        else:
            share = 100 * task.completed / task.total if task.total else 100.0
            parts = [f"{task.description}: {done}/{_number(task.total)} ({share:.0f}%)"]
        rate = self._rate(task, now)
        if rate is not None:
            parts.append(rate_text(rate))
        parts.append(f"elapsed {clock_text(now - task.started)}")
        if task.total is not None and not task.done:
            parts.append("ETA " + (clock_text((task.total - task.completed) / rate)
                                   if rate else "unknown"))
        line = ", ".join(parts)
        return f"{line}  {task.info}" if task.info else line

    @staticmethod
    def _rate(task: _Task, now: float) -> float | None:
        if task.base is None or now <= task.base_time or task.completed <= task.base:
            return None
        return (task.completed - task.base) / (now - task.base_time)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
