"""HMDB51 as downloaded: ``<class>/<video>.avi`` with the split files
``<class>_test_split{1,2,3}.txt`` (lines ``<video>.avi <k>``; 1 = train, 2 = test, 0 = unused).

The split files are looked for in the root, in ``<root>/testTrainMulti_7030_splits`` and in
``testTrainMulti_7030_splits`` beside the root, unless ``splits_dir`` names their folder. The
protocol's split (``split1``) is read; test videos form the validation side and unused ones are
left out. Classes are the sorted class folder names.
"""

from __future__ import annotations

from pathlib import Path

from vdcbench.data.listing import SourceListing, VideoEntry
from vdcbench.data.sources.layout import (CaseFoldIndex, build_listing, class_folders,
                                          expect_protocol, read_lines, require_root, split_number)
from vdcbench.core.errors import VdcError
from vdcbench.protocol import Protocol

SPLITS_FOLDER = "testTrainMulti_7030_splits"
_SIDES = {"1": "train", "2": "val", "0": None}


def _split_folder(root: Path, split: int, splits_dir: str | Path | None) -> Path:
    pattern = f"*_test_split{split}.txt"
    if splits_dir is not None:
        folder = Path(splits_dir).expanduser()
        folder = folder if folder.is_absolute() else root / folder
        if not folder.is_dir() or not any(folder.glob(pattern)):
            raise VdcError(f"HMDB51 splits_dir {folder} holds no {pattern} files")
        return folder
    for folder in (root, root / SPLITS_FOLDER, root.parent / SPLITS_FOLDER):
        if folder.is_dir() and any(folder.glob(pattern)):
            return folder
    raise VdcError(f"no HMDB51 split files ({pattern}) in {root}, {root / SPLITS_FOLDER} or "
                   f"{root.parent / SPLITS_FOLDER}; pass splits_dir=PATH")


def list_hmdb51(root: Path, *, protocol: Protocol, splits_dir: str | Path | None = None
                ) -> SourceListing:
    ds = protocol.dataset("hmdb51")
    expect_protocol(ds, class_order="sorted class directory names")
    split = split_number(ds)
    root = require_root(root, "HMDB51")
    splits = _split_folder(root, split, splits_dir)
    classes = class_folders(root, skip=[splits])
    if not classes:
        raise VdcError(f"no videos found for hmdb51 under {root}")
    label_of = {c: i for i, c in enumerate(classes)}
    suffix = f"_test_split{split}.txt"
    split_files = sorted(splits.glob(f"*{suffix}"))
    listed = {p.name[: -len(suffix)] for p in split_files}
    for path in split_files:
        if path.name[: -len(suffix)] not in label_of:
            raise VdcError(f"split file {path} names class {path.name[: -len(suffix)]!r}, which "
                           f"has no video folder under {root}")
    unlisted = [c for c in classes if c not in listed]
    if unlisted:
        raise VdcError(f"class folder {unlisted[0]!r} under {root} has no split file "
                       f"{unlisted[0]}{suffix} in {splits}")

    index = CaseFoldIndex(root, classes)
    entries, missing, unused = [], [], 0
    for path in split_files:
        cls = path.name[: -len(suffix)]
        for n, line in read_lines(path):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in _SIDES:
                raise VdcError(f"{path}:{n}: expected '<video>.avi 0|1|2', got {line!r}")
            side = _SIDES[parts[1]]
            if side is None:
                unused += 1
                continue
            hit = index.find(cls, parts[0])
            if hit is None or hit[0] != cls:
                missing.append((f"{cls}/{parts[0]}", f"listed in {path.name} but not on disk"))
                continue
            entries.append(VideoEntry(key=f"{cls}/{hit[1]}", path=root / cls / hit[1],
                                      label=label_of[cls], split=side))
    return build_listing(
        "hmdb51", root, classes, entries, missing=missing,
        split_description=(f"HMDB51 official split {split} (*{suffix}: 1 = train, 2 = test as "
                           f"validation, 0 = unused; {unused} unused videos left out); classes "
                           "are the sorted class folder names"),
        options={} if splits_dir is None else {"splits_dir": str(splits_dir)})
