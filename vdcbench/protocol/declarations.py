"""Files declared beside a protocol version, outside its hash: their one reading and shape check.

``protocol/teacher-profiles.toml`` and ``protocol/study-tracks.toml`` have the same outer shape,
``[format] version = 1`` and one table of named declarations; each module says what a declaration
holds. A file that is absent declares nothing; any other shape is a one-line ``VdcError`` that
names the file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Mapping

from vdcbench.core.errors import VdcError

FORMAT_VERSION = 1


def refusal(what: str, source: str, detail: str) -> VdcError:
    """``teacher profiles protocol/teacher-profiles.toml: <detail>``."""
    return VdcError(f"{what} {source}: {detail}")


def declared_tables(raw: Mapping[str, Any], section: str, what: str,
                    source: str) -> Mapping[str, Any]:
    """The ``[section]`` table of a parsed declarations file, its outer shape checked."""
    if set(raw) != {"format", section}:
        extra = sorted(set(raw) ^ {"format", section})
        raise refusal(what, source, f"unexpected or missing table {extra[0]!r}")
    if raw["format"] != {"version": FORMAT_VERSION}:
        raise refusal(what, source, f"[format] must be version = {FORMAT_VERSION}")
    if not isinstance(raw[section], Mapping):
        raise refusal(what, source, f"[{section}] must be a table")
    return raw[section]


def read_declarations(path: Path, what: str) -> dict[str, Any] | None:
    """The parsed file at ``path``; None when there is none."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise refusal(what, str(path), f"not TOML ({exc})") from None
