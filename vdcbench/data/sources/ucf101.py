"""UCF101 as downloaded: ``UCF-101/<Class>/<video>.avi`` beside ``ucfTrainTestlist/``.

The root is either the folder holding both ``UCF-101`` and ``ucfTrainTestlist``, or the
``UCF-101`` folder itself with ``ucfTrainTestlist`` beside it. Classes are numbered by
``classInd.txt`` (``1 ApplyEyeMakeup``); the split is the protocol's (``split1`` reads
``trainlist01.txt`` and ``testlist01.txt``; the test list is the validation side).

A video's class is its folder on disk, never the list's spelling: the download's folder
``HandstandPushups`` holds ``v_HandStandPushups_*`` files, so list lines are matched to files
regardless of case, by file name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vdcbench.data.listing import SourceListing, VideoEntry
from vdcbench.data.sources.layout import (CaseFoldIndex, build_listing, class_folders,
                                          expect_protocol, read_lines, require_file, require_root,
                                          split_number)
from vdcbench.core.errors import VdcError
from vdcbench.protocol import Protocol

LIST_FOLDER = "ucfTrainTestlist"
VIDEO_FOLDER = "UCF-101"


@dataclass(frozen=True)
class UcfVideo:
    """One listed video found on disk, before labels are assigned."""

    folder: str
    name: str
    path: Path
    split: str


@dataclass(frozen=True)
class UcfLayout:
    root: Path
    class_index: tuple[str, ...]  # classInd.txt order, spelled as the folders on disk are
    videos: tuple[UcfVideo, ...]
    missing: tuple[tuple[str, str], ...]
    split: int


def _locate(root: Path) -> tuple[Path, Path]:
    """(videos folder, list folder) for either accepted root."""
    if (root / VIDEO_FOLDER).is_dir() and (root / LIST_FOLDER).is_dir():
        return root / VIDEO_FOLDER, root / LIST_FOLDER
    if (root.parent / LIST_FOLDER).is_dir() and not (root / LIST_FOLDER).is_dir():
        return root, root.parent / LIST_FOLDER
    if (root / LIST_FOLDER).is_dir():
        raise VdcError(f"UCF101 root {root} has {LIST_FOLDER}/ but no {VIDEO_FOLDER}/ folder")
    raise VdcError(f"UCF101 root {root} holds neither {VIDEO_FOLDER}/ with {LIST_FOLDER}/ nor "
                   f"has {LIST_FOLDER}/ beside it")


def read_layout(root: Path, split: int) -> UcfLayout:
    """Read the class index and split ``split`` of a UCF101 root (shared with miniUCF)."""
    root = require_root(root, "UCF101")
    videos_dir, lists_dir = _locate(root)
    folders = class_folders(videos_dir)
    if not folders:
        raise VdcError(f"no videos found for ucf101 under {videos_dir}")
    by_fold = {f.casefold(): f for f in folders}

    index_file = require_file(lists_dir / "classInd.txt", "UCF101 class index")
    class_index: list[str] = []
    for n, line in read_lines(index_file):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) != len(class_index) + 1:
            raise VdcError(f"{index_file}:{n}: expected '{len(class_index) + 1} <ClassName>', "
                           f"got {line!r}")
        # Spelled as on disk when the folder exists, so keys and class names agree.
        class_index.append(by_fold.get(parts[1].casefold(), parts[1]))
    known = {c.casefold() for c in class_index}
    stray = [f for f in folders if f.casefold() not in known]
    if stray:
        raise VdcError(f"{videos_dir} has class folder {stray[0]!r} that {index_file.name} "
                       "does not list")

    index = CaseFoldIndex(videos_dir, folders)
    found: list[UcfVideo] = []
    missing: list[tuple[str, str]] = []
    for side, file_name in (("train", f"trainlist{split:02d}.txt"),
                            ("val", f"testlist{split:02d}.txt")):
        list_file = require_file(lists_dir / file_name, "UCF101 split list")
        for n, line in read_lines(list_file):
            listed = line.split()[0].replace("\\", "/")
            if "/" not in listed:
                raise VdcError(f"{list_file}:{n}: expected '<Class>/<video>.avi', got {line!r}")
            listed_class, name = listed.rsplit("/", 1)
            if listed_class.casefold() not in known:
                raise VdcError(f"{list_file}:{n} names class {listed_class!r}, which "
                               f"{index_file.name} does not list")
            hit = index.find(listed_class, name)
            if hit is None:
                missing.append((listed, f"listed in {file_name} but not on disk"))
                continue
            folder, disk_name = hit
            found.append(UcfVideo(folder, disk_name, videos_dir / folder / disk_name, side))
    return UcfLayout(root=root, class_index=tuple(class_index), videos=tuple(found),
                     missing=tuple(missing), split=split)


def list_ucf101(root: Path, *, protocol: Protocol) -> SourceListing:
    ds = protocol.dataset("ucf101")
    expect_protocol(ds, class_order="classInd.txt")
    layout = read_layout(root, split_number(ds))
    label_of = {c.casefold(): i for i, c in enumerate(layout.class_index)}
    entries = [VideoEntry(key=f"{v.folder}/{v.name}", path=v.path,
                          label=label_of[v.folder.casefold()], split=v.split)
               for v in layout.videos]
    return build_listing(
        "ucf101", layout.root, layout.class_index, entries, missing=layout.missing,
        split_description=(f"UCF101 official split {layout.split} (trainlist{layout.split:02d}.txt "
                           f"/ testlist{layout.split:02d}.txt); classes numbered by classInd.txt"))
