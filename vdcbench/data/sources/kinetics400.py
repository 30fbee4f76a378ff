"""Kinetics-400: video files plus the annotation CSVs (``label,youtube_id,time_start,time_end,
split``), the files named ``<youtube_id>_<start:06d>_<end:06d>.<ext>``.

The CSVs are read from the root and ``<root>/annotations`` (or from ``annotations``, a folder or
one CSV); the rows of split ``train`` form the training side and those of ``val``/``validate``/
``validation`` the validation side; test rows (no label) are not used. Videos may sit anywhere
under the root (``<split>/<label>/`` folders or flat, any of mp4/mkv/webm/avi/...): the root is
walked once and files are matched by name. Many videos are gone from the web, so a row without a
file is counted in ``missing``, never fatal. Classes are the sorted label names; keys are
``<label>/<youtube_id>_<start>_<end>``, the same whatever folders or container the copy uses.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from vdcbench.data.listing import SourceListing, VideoEntry
from vdcbench.data.sources.layout import (build_listing, expect_protocol, is_video,
                                          require_root)
from vdcbench.core.errors import VdcError
from vdcbench.protocol import Protocol

COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")
_SIDES = {"train": "train", "val": "val", "validate": "val", "validation": "val", "test": None}


def _csv_files(root: Path, annotations: str | Path | None) -> list[Path]:
    if annotations is not None:
        where = Path(annotations).expanduser()
        where = where if where.is_absolute() else root / where
        if where.is_file():
            return [where]
        if not where.is_dir():
            raise VdcError(f"Kinetics-400 annotations {where} not found")
        places = [where]
    else:
        places = [root, root / "annotations"]
    return sorted(p for place in places if place.is_dir() for p in place.glob("*.csv"))


def _rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            # The test CSV has no label column; other CSVs in the folder are not annotations.
            if not all(c in header for c in COLUMNS):
                return []
            return [(n, {k.strip(): (v or "").strip() for k, v in row.items() if k})
                    for n, row in enumerate(reader, 2)]
    except UnicodeDecodeError:
        raise VdcError(f"{path} is not a UTF-8 CSV file") from None
    except OSError as exc:
        raise VdcError(f"cannot read {path}: {exc.strerror or exc}") from None
    except csv.Error as exc:
        raise VdcError(f"{path} is not a readable CSV file: {exc}") from None


def _index_videos(root: Path) -> dict[str, Path]:
    """Every video file under ``root`` by stem; of two with one stem, the first path in sorted
    order, so the choice does not depend on the file system's listing order."""
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if is_video(name):
                found.setdefault(os.path.splitext(name)[0], Path(folder) / name)
    return found


def _seconds(value: str, path: Path, n: int) -> int:
    try:
        return int(float(value))
    except ValueError:
        raise VdcError(f"{path}:{n}: time {value!r} is not a number") from None


def list_kinetics400(root: Path, *, protocol: Protocol, annotations: str | Path | None = None
                     ) -> SourceListing:
    ds = protocol.dataset("kinetics400")
    expect_protocol(ds, class_order="sorted label names of the annotation CSVs")
    root = require_root(root, "Kinetics-400")
    files = _csv_files(root, annotations)
    clips: dict[str, tuple[str, str, Path, int]] = {}  # stem -> (label, side, csv, line)
    for path in files:
        for n, row in _rows(path):
            side = _SIDES.get(row["split"].lower(), "unknown")
            if side == "unknown":
                raise VdcError(f"{path}:{n}: unknown split {row['split']!r}")
            if side is None or not row["label"]:
                continue
            stem = (f"{row['youtube_id']}_{_seconds(row['time_start'], path, n):06d}"
                    f"_{_seconds(row['time_end'], path, n):06d}")
            seen = clips.get(stem)
            if seen is not None and seen[:2] != (row["label"], side):
                raise VdcError(f"{path}:{n}: clip {stem} is {row['label']!r}/{side} here but "
                               f"{seen[0]!r}/{seen[1]} in {seen[2].name}:{seen[3]}")
            clips.setdefault(stem, (row["label"], side, path, n))
    if not clips:
        raise VdcError(f"no Kinetics-400 annotation CSV (columns {','.join(COLUMNS)}) in "
                       f"{root} or {root / 'annotations'}; pass annotations=PATH")
    classes = sorted({label for label, *_ in clips.values()})
    label_of = {c: i for i, c in enumerate(classes)}
    videos = _index_videos(root)
    entries, missing = [], []
    for stem, (label, side, _, _) in clips.items():
        key = f"{label}/{stem}"
        if stem not in videos:
            missing.append((key, "no video file under the root"))
            continue
        entries.append(VideoEntry(key=key, path=videos[stem], label=label_of[label], split=side))
    if not entries:
        raise VdcError(f"no videos found for kinetics400 under {root}: none of the "
                       f"{len(clips)} annotated clips has a file")
    return build_listing(
        "kinetics400", root, classes, entries, missing=missing,
        split_description=(f"Kinetics-400 official train / validation lists "
                           f"({', '.join(p.name for p in files)}); {len(missing)} of "
                           f"{len(clips)} annotated clips missing on disk; classes are the sorted "
                           "label names"),
        options={} if annotations is None else {"annotations": str(annotations)})
