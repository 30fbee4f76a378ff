"""Something-Something v2: ``20bn-something-something-v2/<id>.webm`` with the label files
``something-something-v2-labels.json`` (class name -> index string) and
``something-something-v2-{train,validation}.json`` (entries with ``id``, ``template``, ``label``,
``placeholders``).

The JSON files are looked for in the root and ``<root>/labels`` (or in ``labels_dir``); the
videos in ``<root>/20bn-something-something-v2`` or the root itself. A video's class is its
template with the square brackets removed (``Putting [something] on a surface`` -> ``Putting
something on a surface``), numbered by the labels file. The test list has no labels and is not
used. Keys are the video ids.
"""

from __future__ import annotations

from pathlib import Path

from vdcbench.data.listing import SourceListing, VideoEntry
from vdcbench.data.sources.layout import build_listing, expect_protocol, require_root
from vdcbench.core.errors import VdcError
from vdcbench.core.json_values import load_json_strict
from vdcbench.protocol import Protocol

VIDEO_FOLDER = "20bn-something-something-v2"
PREFIX = "something-something-v2"
_SIDES = (("train", "train"), ("validation", "val"))


def _load_json(path: Path):
    if not path.is_file():
        raise VdcError(f"Something-Something v2 file {path} not found")
    try:
        return load_json_strict(path.read_bytes(), str(path))
    except OSError as exc:
        raise VdcError(f"cannot read {path}: {exc.strerror or exc}") from None


def _labels_folder(root: Path, labels_dir: str | Path | None) -> Path:
    if labels_dir is not None:
        folder = Path(labels_dir).expanduser()
        return folder if folder.is_absolute() else root / folder
    for folder in (root, root / "labels"):
        if (folder / f"{PREFIX}-labels.json").is_file():
            return folder
    raise VdcError(f"no {PREFIX}-labels.json in {root} or {root / 'labels'}; "
                   "pass labels_dir=PATH")


def _class_order(path: Path) -> tuple[str, ...]:
    table = _load_json(path)
    if not isinstance(table, dict) or not table:
        raise VdcError(f"{path} must map class names to index strings")
    try:
        by_index = {int(v): k for k, v in table.items()}
    except (TypeError, ValueError):
        raise VdcError(f"{path} must map class names to index strings") from None
    if sorted(by_index) != list(range(len(table))):
        raise VdcError(f"{path} must number its {len(table)} classes 0..{len(table) - 1}")
    return tuple(by_index[i] for i in range(len(table)))


def class_of(template: str) -> str:
    return template.replace("[", "").replace("]", "")


def list_ssv2(root: Path, *, protocol: Protocol, labels_dir: str | Path | None = None
              ) -> SourceListing:
    ds = protocol.dataset("ssv2")
    expect_protocol(ds, class_order=f"{PREFIX}-labels.json")
    root = require_root(root, "Something-Something v2")
    labels = _labels_folder(root, labels_dir)
    classes = _class_order(labels / f"{PREFIX}-labels.json")
    label_of = {c: i for i, c in enumerate(classes)}
    videos = root / VIDEO_FOLDER if (root / VIDEO_FOLDER).is_dir() else root
    entries, missing = [], []
    for part, side in _SIDES:
        path = labels / f"{PREFIX}-{part}.json"
        items = _load_json(path)
        if not isinstance(items, list):
            raise VdcError(f"{path} must hold a list of videos")
        for n, item in enumerate(items):
            if not isinstance(item, dict) or "id" not in item or "template" not in item:
                raise VdcError(f"{path}: entry {n} lacks an id or a template")
            vid, cls = str(item["id"]), class_of(str(item["template"]))
            if cls not in label_of:
                raise VdcError(f"{path}: video {vid} has class {cls!r}, which "
                               f"{PREFIX}-labels.json does not list")
            file = videos / f"{vid}.webm"
            if not file.is_file():
                missing.append((vid, f"listed in {path.name} but not on disk"))
                continue
            entries.append(VideoEntry(key=vid, path=file, label=label_of[cls], split=side))
    return build_listing(
        "ssv2", root, classes, entries, missing=missing,
        split_description=(f"Something-Something v2 official lists ({PREFIX}-train.json / "
                           f"{PREFIX}-validation.json); classes numbered by {PREFIX}-labels.json"),
        options={} if labels_dir is None else {"labels_dir": str(labels_dir)})
