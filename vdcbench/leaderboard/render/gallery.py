"""The leaderboard's gallery: a contact sheet of every archive committed under ``submissions/``.

The picture of an entry is a function of its archive, not of its method: every clip of the set
(a row per class, up to ``GALLERY_PER_CLASS`` clips in it) as ``GALLERY_FRAMES`` key frames at
a small tile, under a header naming the archive (method, track, label strategy, hash). So a
method's entries at IPC 1, 5 and 10 show their 10, 50 and 100 clips, and two archives that hold
the same clips under two label strategies still get two pictures, each saying which it is. The
file is keyed by the archive's hash (``gallery/<dataset>-<sha12>.png``); entries measured on one
archive share it. Sheets are stored with a 256-colour palette, so the page stays light;
``vdcbench show`` draws every frame of a set (:mod:`vdcbench.leaderboard.gallery`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vdcbench.leaderboard.entry import Entry
from vdcbench.leaderboard.validate import archive_file
from vdcbench.leaderboard.gallery import contact_sheet, png_bytes

GALLERY_TILE = 24          # pixels per frame in the page's gallery
GALLERY_CLASSES = 12       # classes shown per archive
GALLERY_PER_CLASS = 10     # clips shown per class (every clip of the official tracks)
GALLERY_FRAMES = 3         # key frames per clip: first, middle, last


@dataclass(frozen=True)
class GalleryImage:
    path: str                    # relative to leaderboard/
    png: bytes
    entries: tuple[Entry, ...]   # every entry measured on the archive drawn

    @property
    def first(self) -> Entry:
        return self.entries[0]


def gallery_images(root: Path, entries: Sequence[Entry]) -> tuple[GalleryImage, ...]:
    """A grid per archive committed under ``root``, in (data set, method, IPC, labels) order."""
    from vdcbench.archive import read_archive

    by_archive: dict[str, list[Entry]] = {}
    for entry in entries:
        if archive_file(root, entry) is not None:
            by_archive.setdefault(entry.archive.sha256, []).append(entry)
    ordered = sorted(by_archive.items(), key=lambda item: (
        item[1][0].dataset, item[1][0].method.name, item[1][0].ipc, item[1][0].label_strategy,
        item[0]))
    images = []
    for sha, members in ordered:
        first = members[0]
        loaded = read_archive(archive_file(root, first))
        sheet = contact_sheet(loaded.condensed, archive_sha256=loaded.sha256,
                              num_classes=loaded.track.num_classes,
                              per_class=GALLERY_PER_CLASS, max_classes=GALLERY_CLASSES,
                              frames=GALLERY_FRAMES, tile=GALLERY_TILE)
        images.append(GalleryImage(f"gallery/{first.dataset}-{sha[:12]}.png",
                                   png_bytes(sheet, palette=True), tuple(members)))
    return tuple(images)
