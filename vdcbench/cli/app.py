"""The ``vdcbench`` command: the click group and its commands, one module per command family.

Each command parses its options, calls the library (``vdcbench.evaluation.api`` and the layers
below), and renders the result with rich. Any ``VdcError`` becomes one line on stderr and exit
code 2; nothing below this package prints.
"""

from __future__ import annotations

import click

from vdcbench.cli import archives, baseline, data, evaluate, importing, leaderboard, nets, protocol
from vdcbench.cli import teacher
from vdcbench.core.version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vdcbench")
def main() -> None:
    """vdcbench: score condensed video data sets under one frozen protocol."""


for command in (protocol.protocol_cmd, baseline.methods_cmd, archives.validate_cmd,
                teacher.teacher_group, baseline.run_baseline_cmd, evaluate.results_cmd,
                evaluate.evaluate_cmd, protocol.schema_docs_cmd):
    main.add_command(command)
# Families that attach several commands and groups of their own.
for family in (leaderboard, nets, importing, data):
    family.register(main)

if __name__ == "__main__":
    main()
