"""``python -m vdcbench``: the ``vdcbench`` command, for environments without its script."""

from vdcbench.cli import main

main(prog_name="vdcbench")
