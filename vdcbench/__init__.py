"""vdcbench: the open benchmark harness for video dataset condensation."""

from vdcbench.core.version import __version__

__all__ = ["__version__"]
