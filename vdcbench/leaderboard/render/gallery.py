"""The leaderboard's gallery: a frame grid of every archive committed under ``submissions/``.

Only the first instance of a class (of the first classes) is drawn, at a small tile, so the page
stays light; ``vdcbench show`` draws the whole set (:mod:`vdcbench.leaderboard.gallery`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vdcbench.leaderboard.entry import Entry
from vdcbench.leaderboard.validate import archive_file
from vdcbench.leaderboard.gallery import frame_grid, png_bytes

GALLERY_TILE = 48          # pixels per frame in the page's gallery
GALLERY_CLASSES = 12       # classes shown per archive in the page's gallery


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
        grid = frame_grid(loaded.condensed, num_classes=loaded.track.num_classes, per_class=1,
                          max_classes=GALLERY_CLASSES, tile=GALLERY_TILE)
        images.append(GalleryImage(f"gallery/{first.dataset}-{sha[:12]}.png", png_bytes(grid),
                                   tuple(members)))
    return tuple(images)
