"""Methods found through the ``vdcbench.methods`` entry-point group (built-ins included)."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from vdcbench.core.errors import UnknownNameError, VdcError

if TYPE_CHECKING:
    from vdcbench.methods.base import Method

GROUP = "vdcbench.methods"


def _entry_points() -> dict:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available_methods() -> dict[str, type[Method]]:
    methods = {}
    for name, ep in sorted(_entry_points().items()):
        methods[name] = get_method(name)
    return methods


def get_method(name: str) -> type[Method]:
    from vdcbench.methods.base import Method   # torch: imported when a method is asked for
    eps = _entry_points()
    if name not in eps:
        if not eps:
            raise VdcError("no condensation methods are registered: is vdcbench installed "
                           "(`pip install -e .`)?")
        raise UnknownNameError("method", name, eps)
    try:
        cls = eps[name].load()
    except Exception as exc:  # a broken plugin must not take the harness down with a traceback
        raise VdcError(f"method plugin {name!r} failed to load: {type(exc).__name__}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise VdcError(f"method plugin {name!r} is not a vdcbench.methods.Method subclass")
    return cls
