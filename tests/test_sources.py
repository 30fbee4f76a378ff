"""Source layouts: classes, splits, counts and refusals on tiny copies of each official layout
(``tests/video_fixtures.py``) and on the small real collections in ../shared/data/real."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest

import video_fixtures as fx
from vdcbench.data.sources import list_source, source_names, source_options
from vdcbench.core.errors import VdcError

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    base = tmp_path_factory.mktemp("layouts")
    return {name: getattr(fx, f"make_{name}")(base / name)
            for name in ("ucf101", "hmdb51", "kinetics400", "ssv2", "folder", "rawframes")}


def _keys(listing, split=None):
    return {e.key for e in listing.entries if split is None or e.split == split}


def _check_common(listing, name):
    expected = fx.EXPECTED[name]
    keys = [e.key for e in listing.entries]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert all(0 <= e.label < len(listing.classes) for e in listing.entries)
    for key in expected.corrupt + expected.empty + expected.short:
        assert key in keys, key
    assert len(listing.missing) == expected.missing
    assert listing.split_description


@pytest.mark.parametrize("name", ["ucf101", "hmdb51", "kinetics400", "ssv2", "rawframes"])
def test_official_layouts_list_their_classes_and_split(layouts, name):
    options = {"classes": "classes.txt"} if name == "rawframes" else {}
    listing = list_source(name, layouts[name], **options)
    expected = fx.EXPECTED[name]
    assert listing.dataset == ("folder" if name == "rawframes" else name)
    assert listing.classes == expected.classes
    assert len(listing.split("train")) == expected.train
    assert len(listing.split("val")) == expected.val
    _check_common(listing, name)
    # Every class has both sides in the fixtures.
    sides = {(e.label, e.split) for e in listing.entries}
    assert sides == {(c, s) for c in range(len(listing.classes)) for s in ("train", "val")}


def test_ucf101_class_is_the_folder_and_names_match_regardless_of_case(layouts):
    listing = list_source("ucf101", layouts["ucf101"])
    handstand = [e for e in listing.entries if e.label == 2]
    assert {e.key for e in handstand} == {
        "HandstandPushups/v_HandStandPushups_g01_c01.avi",
        "HandstandPushups/v_HandStandPushups_g08_c01.avi",
        # listed in lower case, found under its on-disk spelling
        "HandstandPushups/v_HandStandPushups_g09_c01.avi"}
    assert all(e.path.is_file() and e.path.parent.name == "HandstandPushups" for e in handstand)
    assert listing.classes[2] == "HandstandPushups"
    # The UCF-101 folder itself is an accepted root too.
    inner = list_source("ucf101", layouts["ucf101"] / "UCF-101")
    assert [e.key for e in inner.entries] == [e.key for e in listing.entries]


def test_ucf101_refuses_a_list_naming_an_unknown_class(tmp_path):
    root = fx.make_ucf101(tmp_path / "u")
    with (root / "ucfTrainTestlist" / "trainlist01.txt").open("a") as fh:
        fh.write("Juggling/v_Juggling_g01_c01.avi 4\r\n")
    with pytest.raises(VdcError, match="Juggling"):
        list_source("ucf101", root)


def test_ucf101_counts_listed_files_absent_on_disk(tmp_path):
    root = fx.make_ucf101(tmp_path / "u")
    (root / "UCF-101" / "Basketball" / "v_Basketball_g08_c01.avi").unlink()
    listing = list_source("ucf101", root)
    assert [m[0] for m in listing.missing] == ["Basketball/v_Basketball_g08_c01.avi"]


def test_hmdb51_leaves_unused_videos_out(layouts):
    listing = list_source("hmdb51", layouts["hmdb51"])
    assert not any(k.endswith("_goo_3.avi") for k in _keys(listing))  # the 0-marked videos
    assert "unused" in listing.split_description


def test_hmdb51_split_folder_can_be_named(tmp_path):
    root = fx.make_hmdb51(tmp_path / "h")
    moved = tmp_path / "elsewhere"
    (root / "testTrainMulti_7030_splits").rename(moved)
    with pytest.raises(VdcError, match="splits_dir"):
        list_source("hmdb51", root)
    assert len(list_source("hmdb51", root, splits_dir=moved).entries) == 12


def test_kinetics_counts_missing_videos_and_keys_ignore_folders(layouts):
    listing = list_source("kinetics400", layouts["kinetics400"])
    assert {m[0] for m in listing.missing} == {"abseiling/goneGONE001_000005_000015",
                                               "zumba/goneGONE002_000000_000010"}
    assert all(e.key.startswith(listing.classes[e.label] + "/") for e in listing.entries)
    suffixes = {e.path.suffix for e in listing.entries}
    assert {".mp4", ".mkv", ".webm", ".avi"} <= suffixes


def test_kinetics_with_no_annotations_is_refused(tmp_path):
    fx.encode_video(tmp_path / "k" / "abc_000001_000002.mp4", 4)
    with pytest.raises(VdcError, match="annotation CSV"):
        list_source("kinetics400", tmp_path / "k")


def test_ssv2_classes_follow_the_labels_file_and_drop_brackets(layouts):
    listing = list_source("ssv2", layouts["ssv2"])
    assert all("[" not in c for c in listing.classes)
    assert "3001" not in _keys(listing)  # the test list is not used
    by_key = {e.key: e for e in listing.entries}
    assert listing.classes[by_key["1000"].label] == "Holding something next to something"


def test_miniucf_takes_the_protocol_classes_in_listed_order(layouts, protocol):
    listing = list_source("miniucf", layouts["ucf101"])
    assert listing.classes == protocol.dataset("miniucf").classes
    labels = {e.key.split("/")[0]: e.label for e in listing.entries}
    assert labels == {"ApplyEyeMakeup": 0, "Basketball": 4}  # HandstandPushups is not miniUCF
    assert len(listing.entries) == 9
    assert len(listing.missing) == 48  # the listed classes this tiny root lacks


def test_rawframes_entries_are_frame_folders(layouts):
    listing = list_source("rawframes", layouts["rawframes"], classes="classes.txt",
                          dataset="ucf101")
    assert listing.dataset == "ucf101"
    assert all(e.kind == "rawframes" and e.path.is_dir() for e in listing.entries)
    assert [m[0] for m in listing.missing] == ["jump/v_jump_gone"]
    unnamed = list_source("rawframes", layouts["rawframes"])
    assert unnamed.classes == ("0", "1", "2")


def test_rawframes_label_beyond_the_classes_file_is_refused(tmp_path):
    root = fx.make_rawframes(tmp_path / "r")
    (root / "classes.txt").write_text("jump\nrun\n")
    with pytest.raises(VdcError, match="label 2"):
        list_source("rawframes", root, classes="classes.txt")


# -- folder ---------------------------------------------------------------------------------------

def test_folder_seeded_split_is_deterministic_and_keeps_groups_together(layouts):
    a = list_source("folder", layouts["folder"], group=r"person\d+", seed=3)
    b = list_source("folder", layouts["folder"], group=r"person\d+", seed=3)
    assert [(e.key, e.split) for e in a.entries] == [(e.key, e.split) for e in b.entries]
    assert a.classes == fx.FOLDER_CLASSES
    _check_common(a, "folder")
    sides = defaultdict(set)
    for e in a.entries:
        sides[e.group].add(e.split)
    assert all(len(s) == 1 for s in sides.values())
    assert set(sides) == {f"person{p:02d}" for p in range(1, 6)}
    per_class = Counter((e.label, e.split) for e in a.entries)
    assert all(per_class[(c, s)] > 0 for c in range(3) for s in ("train", "val"))
    assert "seed 3" in a.split_description and "person" in a.split_description
    assert a.options == {"seed": 3, "val_fraction": 0.3, "group": r"person\d+"}


def test_folder_without_group_splits_recordings(layouts):
    listing = list_source("folder", layouts["folder"], val_fraction=0.4)
    assert len(listing.entries) == 15
    per_class = Counter((e.label, e.split) for e in listing.entries)
    assert all(per_class[(c, "val")] == 2 for c in range(3))  # round(0.4 x 5)
    assert "each recording is its own group" in listing.split_description


def test_folder_clip_seconds_cuts_recordings_and_keeps_them_on_one_side(layouts):
    listing = list_source("folder", layouts["folder"], clip_seconds=0.5, group=r"person\d+")
    clips = [e for e in listing.entries if "#" in e.key]
    by_recording = defaultdict(list)
    for e in clips:
        by_recording[e.key.split("#")[0]].append(e)
    ordinary = [k for k in by_recording if "person05" not in k]
    assert len(ordinary) == 12
    for key in ordinary:
        cut = sorted(by_recording[key], key=lambda e: e.start_seconds)
        assert [(e.start_seconds, e.end_seconds) for e in cut] == [
            (0.0, 0.5), (0.5, 1.0), (1.0, 1.5), (1.5, 2.0)]
        assert len({e.split for e in cut}) == 1
    # The short recording (0.5 s) is one clip; corrupt and empty files stay whole for prepare.
    short = by_recording["handwaving/person05_handwaving_d1.avi"]
    assert len(short) == 1 and short[0].start_seconds == 0.0
    whole = {e.key for e in listing.entries if "#" not in e.key}
    assert whole == {"Boxing/person05_boxing_d1.avi", "Walking/person05_walking_d1.avi"}
    assert "0.5 s clips" in listing.split_description


def test_folder_split_file(tmp_path):
    root = fx.make_folder(tmp_path / "f")
    lines = [f"{c}/person{p:02d}_{c.lower()}_d1.avi {'val' if p == 4 else 'train'}"
             for c in fx.FOLDER_CLASSES for p in range(1, 5)]
    lines.append("Boxing/person09_boxing_d1.avi train")
    split = tmp_path / "split.txt"
    split.write_text("\n".join(lines) + "\n")
    listing = list_source("folder", root, split_file=split)
    assert len(listing.split("train")) == 9 and len(listing.split("val")) == 3
    assert [m[0] for m in listing.missing] == ["Boxing/person09_boxing_d1.avi"]
    split.write_text("\n".join(lines + ["Dancing/x.avi val"]) + "\n")
    with pytest.raises(VdcError, match="Dancing"):
        list_source("folder", root, split_file=split)
    split.write_text("\n".join(l for l in lines if "Walking" not in l or "train" in l) + "\n")
    with pytest.raises(VdcError, match="'Walking' without a validation"):
        list_source("folder", root, split_file=split)
    with pytest.raises(VdcError, match="exclude each other"):
        list_source("folder", root, split_file=split, seed=1)


def test_folder_refuses_a_split_leaving_a_class_without_a_side(tmp_path):
    for person in (1, 2, 3):
        fx.encode_video(tmp_path / "f" / "a" / f"person{person}_a.avi", 4, seed=person)
    fx.encode_video(tmp_path / "f" / "b" / "person1_b.avi", 4)
    # Class b's one video cannot be on both sides, whatever the seed.
    with pytest.raises(VdcError, match="class 'b' without a validation video"):
        list_source("folder", tmp_path / "f", group=r"person\d")
    with pytest.raises(VdcError, match="does not match"):
        list_source("folder", tmp_path / "f", group=r"P\d+(?=T)")
    with pytest.raises(VdcError, match="val_fraction"):
        list_source("folder", tmp_path / "f", val_fraction=1.5)


def test_missing_and_empty_roots_are_one_line_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    for name in source_names():
        with pytest.raises(VdcError) as err:
            list_source(name, tmp_path / "nope")
        assert "does not exist" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(VdcError, match="no videos"):
        list_source("folder", tmp_path / "empty")


def test_unknown_layout_and_option(layouts):
    with pytest.raises(VdcError, match="did you mean 'ucf101'"):
        list_source("ucf11", layouts["ucf101"])
    with pytest.raises(VdcError, match="no option 'grup'"):
        list_source("folder", layouts["folder"], grup="x")
    assert "clip_seconds" in source_options("folder")


# -- the real collections -------------------------------------------------------------------------

@pytest.mark.skipif(not (REAL / "kth-sample").is_dir(), reason="no ../shared/data/real/kth-sample")
def test_kth_sample_by_person_in_4_second_clips():
    listing = list_source("folder", REAL / "kth-sample", group=r"person\d+", clip_seconds=4)
    assert listing.classes == ("Boxing", "HandWaving", "Jogging", "Running", "Walking")
    assert all("#" in e.key and e.end_seconds - e.start_seconds == 4 for e in listing.entries)
    sides = defaultdict(set)
    for e in listing.entries:
        sides[e.group].add(e.split)
    assert all(len(s) == 1 for s in sides.values()) and len(sides) == 10
    per_class = Counter((e.label, e.split) for e in listing.entries)
    assert all(per_class[(c, s)] > 0 for c in range(5) for s in ("train", "val"))
    # 15 recordings of 13-28 s give several clips each.
    assert len(listing.entries) > 45


@pytest.mark.skipif(not (REAL / "gt-actions").is_dir(), reason="no ../shared/data/real/gt-actions")
def test_gt_actions_by_person():
    listing = list_source("folder", REAL / "gt-actions", group=r"P\d+(?=T)")
    assert listing.classes == ("A1", "A2", "A3")
    assert len(listing.entries) == 27
    sides = {e.group: e.split for e in listing.entries}
    assert set(sides) == {"P1", "P2", "P3"}
    assert sorted(sides.values()).count("val") == 1
    assert len(listing.split("val")) == 9
