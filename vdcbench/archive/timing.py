"""How long a condensation took, kept beside its archive in ``<archive>.timing.json``.

An archive's sha256 is its identity, so it holds only what the set is: the same method, inputs
and seed give the same bytes. The wall time differs from run to run, so the writer records it in
this sidecar, which names the archive's sha256 it belongs to. Archives written before issue 16
carry the time in their manifest (``method.wall_seconds``), and that stays their time.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vdcbench.archive.condensed import MethodInfo
from vdcbench.core.atomic_file import write_json_atomic
from vdcbench.core.errors import VdcError
from vdcbench.core.json_values import load_json_strict

TIMING_SUFFIX = ".timing.json"
TIMING_FORMAT = "vdcbench-condensation-timing"
TIMING_FORMAT_VERSION = 1


@dataclass(frozen=True)
class CondensationTiming:
    """The condensation cost of one archive's content."""

    archive_sha256: str
    wall_seconds: float
    device: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"format": TIMING_FORMAT, "format_version": TIMING_FORMAT_VERSION,
                "archive_sha256": self.archive_sha256, "wall_seconds": self.wall_seconds,
                "device": self.device}


def timing_path(archive: str | os.PathLike[str]) -> Path:
    return Path(os.fspath(archive) + TIMING_SUFFIX)


def write_timing(archive: str | os.PathLike[str], sha256: str, method: MethodInfo) -> Path | None:
    """Record ``method``'s wall time for the archive of ``sha256``; nothing when it has none."""
    if method.wall_seconds is None:
        return None
    path = timing_path(archive)
    write_json_atomic(path, CondensationTiming(sha256, float(method.wall_seconds),
                                               method.device).to_dict())
    return path


def read_timing(archive: str | os.PathLike[str], sha256: str) -> CondensationTiming | None:
    """The sidecar of the archive whose bytes hash to ``sha256``; ``None`` when there is none or
    it belongs to other bytes (an archive replaced by a run that recorded no time)."""
    path = timing_path(archive)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise VdcError(f"cannot read {path}: {err.strerror or err}") from None
    data = load_json_strict(text, str(path))
    if not (isinstance(data, dict) and data.get("format") == TIMING_FORMAT
            and data.get("format_version") == TIMING_FORMAT_VERSION
            and isinstance(data.get("archive_sha256"), str)
            and isinstance(data.get("wall_seconds"), (int, float))
            and not isinstance(data.get("wall_seconds"), bool)
            and math.isfinite(data["wall_seconds"]) and data["wall_seconds"] >= 0
            and (data.get("device") is None or isinstance(data.get("device"), str))):
        raise VdcError(f"{path}: not a {TIMING_FORMAT} v{TIMING_FORMAT_VERSION} file (it needs "
                       "archive_sha256, a non-negative wall_seconds and a device)")
    if data["archive_sha256"] != sha256:
        return None
    return CondensationTiming(sha256, float(data["wall_seconds"]), data["device"])


def condensation_timing(archive: str | os.PathLike[str], sha256: str,
                        method: MethodInfo) -> CondensationTiming | None:
    """The archive's condensation time: its manifest's (archives from before issue 16), else
    its sidecar's, else ``None``."""
    if method.wall_seconds is not None:
        return CondensationTiming(sha256, float(method.wall_seconds), method.device)
    return read_timing(archive, sha256)
