"""Study tracks: budgets the study measured that its protocol version does not declare.

Protocol v1 declares the official tracks (IPC 1, 5, 10 at 8 frames) and Table 4b's equal-frame
grid (``ipc8-t4`` ... ``ipc1-t32``). Two of the study's experiments use other budgets: Tables 5
and 9 compare formations of 16-frame instances at IPC 1 (``ipc1-t16``), and Table 4a keeps every
training video of a class at 4 to 32 frames. Adding them to ``v1.toml`` would change the hash
that every committed archive, record and entry pins, so they are declared beside it, in
``protocol/study-tracks.toml``, as the teacher profiles are: each declaration names the
experiment it serves, the protocol versions it extends, the IPCs and the frame counts it admits.

A track admitted this way is never official (``Track.official`` is False and ``Track.study``
names its declaration); its records rank in their own tables like every temporal track, and its
id (``ipcK-tT``) alone fixes its budget, so no other hash is needed to tell two of them apart.
An ``ipc = "all"`` declaration admits, at its frame counts, the IPC of every training video of a
class: for a generated data set (``synthetic``) the count its generator declares; for a collection
on disk, whose class sizes this layer does not read, any IPC (the study command resolves it from
the split).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from vdcbench.core.errors import VdcError
from vdcbench.protocol.declarations import declared_tables, read_declarations, refusal

STUDY_TRACKS_FILE = "study-tracks.toml"
ALL_VIDEOS = "all"
_KEYS = frozenset({"description", "protocol_versions", "ipc", "frames"})


@dataclass(frozen=True)
class StudyTracks:
    """One declaration: which ``ipcK-tT`` a study experiment may evaluate under a protocol."""

    name: str
    description: str
    protocol_versions: tuple[int, ...]
    ipc: tuple[int, ...] | None           # None: "all" (any IPC, resolved by the study)
    frames: tuple[int, ...]

    def admits(self, version: int, ipc: int, frames: int,
               videos_per_class: int | None = None) -> bool:
        """Whether ``ipcK-tT`` is one of this declaration's budgets under protocol ``version``.

        ``videos_per_class`` pins "all" where the data set declares it (a generated one); for a
        collection on disk it is None and "all" admits any IPC."""
        if version not in self.protocol_versions or frames not in self.frames:
            return False
        if self.ipc is None:
            return videos_per_class is None or ipc == videos_per_class
        return ipc in self.ipc

    def describe(self) -> str:
        ipcs = "every video" if self.ipc is None else "IPC " + ", ".join(map(str, self.ipc))
        return f"{self.name}: {ipcs} at {', '.join(map(str, self.frames))} frames"


_WHAT = "study tracks"


def _refuse(source: str, detail: str) -> VdcError:
    return refusal(_WHAT, source, detail)


def _integers(value: Any) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value))


def _declaration(name: str, table: Any, source: str) -> StudyTracks:
    where = f"[tracks.{name}]"
    if not isinstance(table, Mapping):
        raise _refuse(source, f"{where} must be a table")
    unknown, missing = sorted(set(table) - _KEYS), sorted(_KEYS - set(table))
    if unknown or missing:
        raise _refuse(source, f"{where}: {'unknown' if unknown else 'missing'} key "
                              f"{(unknown or missing)[0]!r}")
    for key in ("protocol_versions", "frames"):
        if not _integers(table[key]):
            raise _refuse(source, f"{where}: {key} must be a list of positive integers")
    ipc = table["ipc"]
    if ipc != ALL_VIDEOS and not _integers(ipc):
        raise _refuse(source, f"{where}: ipc must be a list of positive integers or "
                              f"{ALL_VIDEOS!r}")
    return StudyTracks(name=name, description=str(table["description"]),
                       protocol_versions=tuple(table["protocol_versions"]),
                       ipc=None if ipc == ALL_VIDEOS else tuple(ipc),
                       frames=tuple(table["frames"]))


def study_tracks_from_toml(raw: Mapping[str, Any], source: str = "(in memory)"
                           ) -> Mapping[str, StudyTracks]:
    """The declarations of a parsed study-tracks file; a one-line ``VdcError`` for another shape."""
    tracks = declared_tables(raw, "tracks", _WHAT, source)
    return MappingProxyType({n: _declaration(n, t, source) for n, t in tracks.items()})


@functools.lru_cache(maxsize=None)
def load_study_tracks(directory: Path) -> Mapping[str, StudyTracks]:
    """Every declaration in ``directory`` by name (none when the file is absent)."""
    path = Path(directory) / STUDY_TRACKS_FILE
    raw = read_declarations(path, _WHAT)
    return MappingProxyType({}) if raw is None else study_tracks_from_toml(raw, str(path))
