"""JSON as vdcbench reads and writes it: finite numbers only, and plain dicts and lists.

Python's ``json`` accepts ``NaN``, ``Infinity`` and ``-Infinity`` (none of them JSON) and parses
``1e400`` as infinity; a record or entry carrying one would average to NaN, rank nowhere and be
written back as text no other JSON reader accepts. Every JSON the project reads goes through
:func:`load_json_strict`, and every JSON it writes is dumped with ``allow_nan=False``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from typing import Any

from vdcbench.core.errors import VdcError

_FLOAT_MAX = int(sys.float_info.max)


class NonFiniteJsonError(ValueError):
    """A NaN or infinite number in JSON text (a ValueError, as ``json``'s own errors are)."""


def _refuse_constant(name: str) -> float:
    raise NonFiniteJsonError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NonFiniteJsonError(f"{text[:40]} overflows to infinity")
    return value


def _float_sized_int(text: str) -> int:
    value = int(text)
    # An integer beyond a double's range is finite here but overflows in the first mean or sum.
    if len(text) > 300 and abs(value) > _FLOAT_MAX:
        raise NonFiniteJsonError(f"{text[:40]}... overflows a float")
    return value


def parse_json_strict(text: str | bytes, *, object_pairs_hook=None) -> Any:
    """``json.loads`` that refuses NaN and ±Infinity, spelt out or overflowing (``1e400``).

    Raises ``ValueError`` (``json.JSONDecodeError`` or :class:`NonFiniteJsonError`), for callers
    that already turn a ValueError into their own message."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                      parse_int=_float_sized_int, object_pairs_hook=object_pairs_hook)


def load_json_strict(text: str | bytes, what: str) -> Any:
    """The JSON value of ``text``, or a one-line :class:`VdcError` naming ``what`` (a path or a
    description such as ``"entry foo/entry.json"``) for bad JSON or a non-finite number."""
    try:
        return parse_json_strict(text)
    except NonFiniteJsonError as exc:
        raise VdcError(f"{what}: {exc} (NaN and infinity are refused)") from None
    except (ValueError, UnicodeDecodeError) as exc:   # JSONDecodeError is a ValueError
        raise VdcError(f"{what}: not JSON ({' '.join(str(exc).split())})") from None


def dumps_strict(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` with ``allow_nan=False``: a non-finite number is a one-line VdcError."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError as exc:
        raise VdcError(f"refusing to write JSON with a non-finite number ({exc})") from None


def plain_json(value: Any) -> Any:
    """Mappings and tuples as the dicts and lists ``json`` writes, recursively."""
    if isinstance(value, Mapping):
        return {k: plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    return value
