"""mmaction-style frame folders: ``<frames_dir>/<video_dir>/img_00001.jpg``, ... with list files
of lines ``<video_dir> <num_frames> <label>`` (mmaction's rawframe lists; two-column
``<video_dir> <label>`` lines are read too).

Options: ``train_list`` and ``val_list`` (paths, relative to the root unless absolute; by default
the one ``*train*.txt`` and the one ``*val*.txt`` in the root), ``classes`` (a file of class
names, one a line, line i naming label i; without it classes are named by their label numbers),
``frames_dir`` (where the list's folders are; default ``<root>/rawframes`` if it exists, else the
root), and ``dataset`` (the protocol data set the frames are of, e.g. ``ucf101`` for mmaction's
UCF101 frames; default ``folder``). The frame count of a list line is not trusted: the store counts
the files. A listed folder absent on disk is reported in ``missing``.
"""

from __future__ import annotations

from pathlib import Path

from vdcbench.data.listing import SourceListing, VideoEntry
from vdcbench.data.sources.layout import build_listing, read_lines, require_root
from vdcbench.core.errors import VdcError
from vdcbench.protocol import Protocol


def _resolve(root: Path, value: str | Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def _find_list(root: Path, given: str | Path | None, side: str, option: str) -> Path:
    if given is not None:
        path = _resolve(root, given)
        if not path.is_file():
            raise VdcError(f"rawframes {option} {path} not found")
        return path
    found = sorted(p for p in root.glob(f"*{side}*.txt") if p.is_file())
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise VdcError(f"{what} *{side}*.txt list files in {root}; pass {option}=PATH")
    return found[0]


def _read_classes(root: Path, given: str | Path) -> tuple[str, ...]:
    path = _resolve(root, given)
    if not path.is_file():
        raise VdcError(f"rawframes classes file {path} not found")
    names = []
    for n, line in read_lines(path):
        parts = line.split(None, 1)
        # mmaction class files are plain names; classInd-style "<index> <name>" is accepted too.
        name = parts[1].strip() if len(parts) == 2 and parts[0].isdigit() else line
        if name in names:
            raise VdcError(f"{path}:{n}: class {name!r} listed twice")
        names.append(name)
    return tuple(names)


def _read_list(path: Path) -> list[tuple[int, str, int]]:
    rows = []
    for n, line in read_lines(path):
        parts = line.split()
        if len(parts) not in (2, 3) or not parts[-1].lstrip("-").isdigit():
            raise VdcError(f"{path}:{n}: expected '<video_dir> <num_frames> <label>', "
                           f"got {line!r}")
        label = int(parts[-1])
        if label < 0:
            raise VdcError(f"{path}:{n}: label {label} is negative")
        rows.append((n, parts[0].replace("\\", "/").strip("/"), label))
    return rows


def list_rawframes(root: Path, *, protocol: Protocol, train_list: str | Path | None = None,
                   val_list: str | Path | None = None, classes: str | Path | None = None,
                   frames_dir: str | Path | None = None, dataset: str = "folder"
                   ) -> SourceListing:
    protocol.dataset(dataset)  # an unknown name is refused with a suggestion
    root = require_root(root, "rawframes")
    if frames_dir is not None:
        frames = _resolve(root, frames_dir)
        if not frames.is_dir():
            raise VdcError(f"rawframes frames_dir {frames} is not a folder")
    else:
        frames = root / "rawframes" if (root / "rawframes").is_dir() else root
    lists = {"train": _find_list(root, train_list, "train", "train_list"),
             "val": _find_list(root, val_list, "val", "val_list")}
    rows = {side: _read_list(path) for side, path in lists.items()}
    top = max(label for side in rows.values() for _, _, label in side) if any(rows.values()) else -1
    names = (_read_classes(root, classes) if classes is not None
             else tuple(str(i) for i in range(top + 1)))
    entries, missing = [], []
    for side, side_rows in rows.items():
        for n, rel, label in side_rows:
            if label >= len(names):
                raise VdcError(f"{lists[side]}:{n} names label {label}, but the classes file "
                               f"lists {len(names)} classes")
            folder = frames / rel
            if not folder.is_dir():
                missing.append((rel, f"listed in {lists[side].name} but no such folder"))
                continue
            entries.append(VideoEntry(key=rel, path=folder, label=label, split=side,
                                      kind="rawframes"))
    options = {k: str(v) for k, v in (("train_list", train_list), ("val_list", val_list),
                                      ("classes", classes), ("frames_dir", frames_dir))
               if v is not None}
    if dataset != "folder":
        options["dataset"] = dataset
    return build_listing(
        dataset, root, names, entries, missing=missing,
        split_description=(f"rawframes lists {lists['train'].name} (train) / "
                           f"{lists['val'].name} (val); classes "
                           + ("from " + _resolve(root, classes).name if classes is not None
                              else "named by label number")),
        options=options)
