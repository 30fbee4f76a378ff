"""What every layout reader shares: checking the root, reading list files, finding video files on
disk, and assembling the sorted :class:`SourceListing` they all return.

Readers never decode. Anything wrong with what the user pointed at (no root, no videos, a list
naming a class the layout does not have) is a ``VdcError`` of one line naming the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from vdcbench.data.listing import SourceListing, VideoEntry
from vdcbench.data.sources.group_split import SeededSplit
from vdcbench.core.errors import NotBuiltError, VdcError
from vdcbench.protocol import Dataset

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".mpg", ".mpeg")


def require_root(root: str | os.PathLike[str], what: str) -> Path:
    """``root`` as an absolute path, or a VdcError when it is not a readable folder."""
    path = Path(root).expanduser()
    if not path.exists():
        raise VdcError(f"{what} root {path} does not exist")
    if not path.is_dir():
        raise VdcError(f"{what} root {path} is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise VdcError(f"{what} root {path} is not readable")
    return path.resolve()


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise VdcError(f"{what} {path} not found")
    return path


def expect_protocol(ds: Dataset, *, class_order: str, split: str | None = None) -> None:
    """Refuse a protocol whose class order or split this reader does not implement, so that a
    future protocol changing either fails loudly instead of silently relabelling videos."""
    if ds.class_order != class_order:
        raise NotBuiltError(f"class order {ds.class_order!r} of data set {ds.name!r}")
    if split is not None and ds.split != split:
        raise NotBuiltError(f"split {ds.split!r} of data set {ds.name!r}")


def split_number(ds: Dataset) -> int:
    """The N of a protocol split named ``splitN`` (UCF101 and HMDB51 ship three)."""
    match = re.fullmatch(r"split(\d)", ds.split)
    if not match:
        raise NotBuiltError(f"split {ds.split!r} of data set {ds.name!r}")
    return int(match.group(1))


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines of a text list as (1-based line number, stripped text).

    The official lists mix CRLF and LF and some carry a BOM or trailing blanks; all are tolerated.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise VdcError(f"{path} is not a UTF-8 text file") from None
    except OSError as exc:
        raise VdcError(f"cannot read {path}: {exc.strerror or exc}") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def is_video(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def video_files(folder: Path) -> list[str]:
    """Names of the video files directly in ``folder``, sorted."""
    try:
        with os.scandir(folder) as it:
            return sorted(e.name for e in it if e.is_file() and is_video(e.name))
    except OSError as exc:
        raise VdcError(f"cannot list {folder}: {exc.strerror or exc}") from None


def class_folders(root: Path, skip: Iterable[Path] = ()) -> list[str]:
    """Sorted names of the sub-folders of ``root`` holding at least one video file."""
    skipped = {p.resolve() for p in skip}
    try:
        with os.scandir(root) as it:
            folders = sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))
    except OSError as exc:
        raise VdcError(f"cannot list {root}: {exc.strerror or exc}") from None
    return [name for name in folders
            if (root / name).resolve() not in skipped and video_files(root / name)]


class CaseFoldIndex:
    """Video files of class folders, found by file name regardless of case.

    The official lists and the files on disk disagree in case (UCF101's ``HandstandPushups``
    folder holds ``v_HandStandPushups_*``); the list names the video, the disk names the class.
    """

    def __init__(self, root: Path, folders: Iterable[str]):
        self._by_name: dict[str, list[tuple[str, str]]] = {}
        for folder in folders:
            for name in video_files(root / folder):
                self._by_name.setdefault(name.casefold(), []).append((folder, name))

    def find(self, folder_hint: str, name: str) -> tuple[str, str] | None:
        """(folder, file name) on disk of the video ``name``; among several of that name, the one
        whose folder matches ``folder_hint`` regardless of case, else the first."""
        found = self._by_name.get(name.casefold())
        if not found:
            return None
        for folder, disk_name in found:
            if folder.casefold() == folder_hint.casefold():
                return folder, disk_name
        return found[0]


def build_listing(dataset: str, root: Path, classes: Iterable[str], entries: Iterable[VideoEntry],
                  *, missing: Iterable[tuple[str, str]] = (), split_description: str,
                  options: dict | None = None,
                  seeded_split: SeededSplit | None = None) -> SourceListing:
    """The listing, sorted by key, refusing duplicate keys and a listing with no video."""
    ordered = tuple(sorted(entries, key=lambda e: e.key))
    if not ordered:
        raise VdcError(f"no videos found for {dataset} under {root}")
    for before, after in zip(ordered, ordered[1:]):
        if before.key == after.key:
            raise VdcError(f"{dataset} under {root} lists {before.key!r} twice")
    return SourceListing(dataset=dataset, root=root, classes=tuple(classes), entries=ordered,
                         missing=tuple(sorted(missing)), split_description=split_description,
                         options=dict(options or {}), seeded_split=seeded_split)
