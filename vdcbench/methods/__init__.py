"""Condensation methods as plugins: the built-in baselines register exactly like outside ones."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vdcbench.methods.base import CondensationTask, Method
    from vdcbench.methods.registry import available_methods, get_method

# Public name -> the module that defines it. Resolved on first use: ``vdcbench.methods.base``
# imports torch, which ``vdcbench methods`` (vdcbench.methods.catalog) and every CLI start
# would otherwise pay for before printing a line.
_API = {
    "CondensationTask": "vdcbench.methods.base",
    "Method": "vdcbench.methods.base",
    "available_methods": "vdcbench.methods.registry",
    "get_method": "vdcbench.methods.registry",
}

__all__ = ["CondensationTask", "Method", "available_methods", "get_method"]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'vdcbench.methods' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
