"""What a source layout lists: the videos of a data set, their classes and their split side.

A *source* (``vdcbench.data.sources``) reads a layout people download (UCF101's folders and
split lists, Kinetics' CSVs, a plain ``<root>/<class>/<video>`` tree, ...) and returns a
:class:`SourceListing`; it never decodes. ``vdcbench prepare`` decodes what a listing names into a
frame store. The two meet only here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # sources import this module; the split's settings are only carried here
    from vdcbench.data.sources.group_split import SeededSplit

SPLITS = ("train", "val")
KINDS = ("video", "rawframes")


@dataclass(frozen=True)
class VideoEntry:
    """One video of a data set, as its layout names it.

    ``key`` is unique within the data set and stable across machines (a path relative to the
    root, plus the cut for a clip of a long recording): the store is keyed and ordered by it.
    ``kind`` is ``"video"`` (a file PyAV decodes) or ``"rawframes"`` (a folder of
    ``img_00001.jpg``-style frames). ``start_seconds``/``end_seconds`` cut a clip out of a
    longer recording; both are None for a whole video.
    """

    key: str
    path: Path
    label: int
    split: str
    kind: str = "video"
    start_seconds: float | None = None
    end_seconds: float | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {self.split!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")


@dataclass(frozen=True)
class SourceListing:
    """All videos a layout lists for one data set, in a deterministic order (sorted by key).

    ``missing`` holds ``(what, reason)`` for videos the annotations name but the disk lacks
    (Kinetics-400 clips gone from the web): counted and reported, never fatal.
    ``split_description`` says how the split was made; the store records it.
    ``seeded_split`` is the rule of a seeded split (None for a fixed one: official lists, a split
    file), so that ``prepare`` can plan it again over the videos that decode.
    """

    dataset: str
    root: Path
    classes: tuple[str, ...]
    entries: tuple[VideoEntry, ...]
    missing: tuple[tuple[str, str], ...] = ()
    split_description: str = ""
    options: dict = field(default_factory=dict)
    seeded_split: SeededSplit | None = None

    def split(self, name: str) -> tuple[VideoEntry, ...]:
        return tuple(e for e in self.entries if e.split == name)
