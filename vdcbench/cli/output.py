"""What every vdcbench command shares: the consoles, and the rule that user errors are one line.

Any ``VdcError`` becomes one line on stderr and exit code 2; nothing below the CLI prints.
"""

from __future__ import annotations

import functools
import sys

import click
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from vdcbench.core.errors import VdcError

console = Console(stderr=True)
# Piped output (logs, CI) gets wide tables instead of rich's 80-column default.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def user_errors(fn):
    """Run a command, turning user errors into one line and exit 2 (never a traceback)."""
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
            fail("interrupted; finished seeds are kept and a rerun resumes from them", 130)
    return wrapper


def progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=False)
