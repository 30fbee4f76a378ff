"""Condensation methods as plugins: the built-in baselines register exactly like outside ones."""

from vdcbench.methods.base import CondensationTask, Method
from vdcbench.methods.registry import available_methods, get_method

__all__ = ["CondensationTask", "Method", "available_methods", "get_method"]
