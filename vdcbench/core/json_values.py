"""Typed objects written as JSON hold frozen mappings and tuples; ``json`` wants dicts and lists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def plain_json(value: Any) -> Any:
    """Mappings and tuples as the dicts and lists ``json`` writes, recursively."""
    if isinstance(value, Mapping):
        return {k: plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    return value
