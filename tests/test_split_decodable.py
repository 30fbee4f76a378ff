"""The seeded split of a collection is planned over the videos that decode: a file that fails
neither moves good files to the other side nor leaves its side short of its target."""

from __future__ import annotations

from collections import Counter

from video_fixtures import encode_video, write_corrupt

from vdcbench.data.prepare import prepare_listing
from vdcbench.data.sources import list_source
from vdcbench.data.sources.group_split import class_target

CLASSES = ("hop", "skip")
PER_CLASS = 7


def _collection(root):
    seed = 0
    for cls in CLASSES:
        for k in range(PER_CLASS):
            encode_video(root / cls / f"v{k:02d}.avi", 10, seed=seed)
            seed += 1
    return root


def _prepare(root, directory):
    listing = list_source("folder", root, seed=3)
    report = prepare_listing(listing, directory=directory, name=directory.name,
                             dataset="folder", resize=(24, 32))
    index = report.store.index
    return listing, report, dict(zip(index.keys, index.splits))


def test_a_broken_file_moves_no_good_file_and_each_side_gets_its_target(tmp_path):
    root = _collection(tmp_path / "moves")
    _, _, clean_sides = _prepare(root, tmp_path / "clean")

    write_corrupt(root / "hop" / "v03b.avi")
    listing, report, sides = _prepare(root, tmp_path / "broken")
    assert [key for key, _ in report.failed] == ["hop/v03b.avi"]
    assert sides == clean_sides
    # Planned before decoding, the broken file's group would have reshuffled the split.
    listed = {e.key: e.split for e in listing.entries if e.key in clean_sides}
    assert listed != clean_sides
    per_class = Counter((key.split("/")[0], side) for key, side in sides.items())
    for cls in CLASSES:
        assert per_class[(cls, "val")] == class_target(PER_CLASS, 0.3)
    description = report.store.manifest.split["description"]
    assert "planned over the 14 videos that decoded; 1 did not" in description
    assert "10 train / 4 val units" in description
