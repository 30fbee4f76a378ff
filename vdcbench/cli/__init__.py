"""Layer 9: the ``vdcbench`` command, a package of click commands.

The only layer that prints, renders progress with rich, or exits.
"""

from vdcbench.cli.app import main

__all__ = ["main"]
