"""The ``vdcbench`` command: the click group and its commands, one module per command family.

Each command parses its options, calls the library (``vdcbench.evaluation.api`` and the layers
below), and renders the result with rich. Any ``VdcError`` becomes one line on stderr and exit
code 2; nothing below this package prints. The command modules import torch and the library
inside the commands that need them, so listings and user errors answer before the heavy imports
(``tests/test_cli_startup.py`` holds them to that).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

import click

from vdcbench.cli import archives, baseline, data, evaluate, experts, importing, leaderboard, nets
from vdcbench.cli import protocol, study, sweep, teacher
from vdcbench.cli.output import Interrupted
from vdcbench.core.version import __version__


class StoppedByUser(KeyboardInterrupt):
    """What a Ctrl-C in a command becomes for a caller that runs the group itself."""


class VdcbenchGroup(click.Group):
    """The top-level group. A Ctrl-C in a command ends the ``vdcbench`` program with the
    command's resume hint and exit code 130; run any other way (``main.main(...)``, click's
    ``CliRunner``), the group hands the interrupt back as a ``KeyboardInterrupt``, so a Ctrl-C
    during the test suite stops the suite rather than failing one test with exit 130."""

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, **kwargs)
        except Interrupted as stop:
            raise StoppedByUser(stop.hint) from None

    def __call__(self, *args, **kwargs):
        # Only the program itself calls the group (the console script, ``python -m vdcbench``).
        try:
            with sigint_taken_back():
                return self.main(*args, **kwargs)
        except StoppedByUser as stop:
            click.echo(str(stop), err=True)
            sys.exit(130)


@contextlib.contextmanager
def sigint_taken_back() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt while the command runs, even where it was inherited
    ignored: a background job of a non-interactive shell (``vdcbench evaluate ... &`` in a
    script, some batch systems) starts with SIGINT ignored, and Python then installs no handler,
    so Ctrl-C and ``kill -INT`` did nothing to evaluate, prepare or run-baseline (issue 17).
    Every long command stops cleanly on KeyboardInterrupt and says how to resume."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@click.group(cls=VdcbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vdcbench")
def main() -> None:
    """vdcbench: score condensed video data sets under one frozen protocol."""


for command in (protocol.protocol_cmd, baseline.methods_cmd, archives.validate_cmd,
                teacher.teacher_group, experts.experts_group, baseline.run_baseline_cmd,
                evaluate.results_cmd,
                evaluate.evaluate_cmd, protocol.schema_docs_cmd, study.study_cmd,
                sweep.sweep_group):
    main.add_command(command)
# Families that attach several commands and groups of their own.
for family in (leaderboard, nets, importing, data):
    family.register(main)

if __name__ == "__main__":
    main()
