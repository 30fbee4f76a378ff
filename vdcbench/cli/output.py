"""What every vdcbench command shares: the consoles, the rule that user errors are one line, what
a Ctrl-C says, and progress bars that turn into plain lines in a log.

Any ``VdcError`` becomes one line on stderr and exit code 2; nothing below the CLI prints.
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING

import click
from rich.console import Console

from vdcbench.core.errors import VdcError

if TYPE_CHECKING:
    from vdcbench.cli.plain_progress import PlainProgress
    from rich.progress import Progress

console = Console(stderr=True)
# Piped output (logs, CI) gets wide tables instead of rich's 80-column default.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class Interrupted(BaseException):
    """A command stopped by Ctrl-C, carrying what the user should know to resume.

    Not a ``KeyboardInterrupt``: click's ``main`` turns those into "Aborted!" and exit 1. The
    ``vdcbench`` program prints ``hint`` and exits 130; a caller that runs the group itself (click's
    test runner) gets a ``KeyboardInterrupt`` back, so a Ctrl-C during the test suite stops the
    suite instead of failing one test (see ``vdcbench.cli.app.VdcbenchGroup``)."""

    def __init__(self, hint: str):
        super().__init__(hint)
        self.hint = hint


def user_errors(fn=None, *, interrupted: str | None = None):
    """Run a command, turning user errors into one line and exit 2 (never a traceback).

    ``interrupted`` is what a Ctrl-C says after "interrupted; ": what is kept and how to resume,
    which only the command knows. Use as ``@user_errors`` or ``@user_errors(interrupted="...")``.
    """
    if fn is None:
        return functools.partial(user_errors, interrupted=interrupted)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except VdcError as exc:
            fail(str(exc), exc.exit_code)
        except OSError as exc:  # the environment (disk full, permissions), not a vdcbench bug
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}")
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted; {interrupted}" if interrupted
                              else "interrupted") from None
    return wrapper


def progress_bar() -> Progress | PlainProgress:
    """Bars on a terminal; on anything else (a log, ``nohup``, a batch job) plain lines: what,
    done/total, rate and ETA, at most one every ``VDCBENCH_PROGRESS_INTERVAL`` seconds (10)
    besides the first and the last. Both take ``add_task(description, total=, info=)``,
    ``update(task, completed=, total=, info=)``, ``start``/``stop`` and ``with``."""
    if not console.is_terminal:
        from vdcbench.cli.plain_progress import PlainProgress, interval_from_env
        return PlainProgress(sys.stderr, interval=interval_from_env())
    # rich.progress is imported here, not at the top: commands that draw no bar start faster.
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=False)

