"""vdcbench: the open benchmark harness for video dataset condensation."""

__version__ = "0.1.0"
