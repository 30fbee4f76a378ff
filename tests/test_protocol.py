"""Protocol v1: the pinned hash, the values the TOML gives, tracks, recipes and name errors."""

from __future__ import annotations

import dataclasses
import math
import re
import shutil

import pytest

from vdcbench.core.errors import UnknownNameError, VdcError
from vdcbench.protocol import PROTOCOL_DIR, load_protocol

V1_SHA256 = "4ce4c51de80989720c5a4e8e7d82d49a3fa9d77d1fa51c4cbb05c17661fe9c6a"
P = load_protocol(1)


# --- the pin -------------------------------------------------------------------------------------

def test_v1_hash_is_pinned():
    assert P.sha256 == V1_SHA256, (
        "protocol/v1.toml changed a value: v1 is frozen. Changing the protocol requires a new "
        "version file (protocol/v2.toml) and a CHANGELOG.md entry, never an edit of v1; "
        f"got sha256 {P.sha256}")
    assert P.short_hash == V1_SHA256[:12]
    assert P.version == 1
    assert P.name == "vdcbench-v1"


def test_latest_is_v1():
    # Equal, not necessarily identical: lru_cache keys load_protocol() and load_protocol(1) apart.
    latest = load_protocol()
    assert latest.version == 1
    assert latest == P and latest.sha256 == V1_SHA256


def _copy_v1(directory, transform=lambda text: text):
    directory.mkdir(parents=True)
    text = (PROTOCOL_DIR / "v1.toml").read_text(encoding="utf-8")
    (directory / "v1.toml").write_text(transform(text), encoding="utf-8")
    return directory


def test_hash_ignores_comments_and_whitespace(tmp_path):
    def decorate(text: str) -> str:
        text = "# an extra comment line at the top\n\n\n" + text
        text = text.replace("lr = 1e-3\n", "lr    =   1e-3     # same value, other spacing\n", 1)
        text = text.replace("[sampling]\n", "[sampling]   # comment after a header\n\n", 1)
        return text + "\n# a trailing comment\n\n"

    folder = _copy_v1(tmp_path / "commented", decorate)
    assert (folder / "v1.toml").read_text() != (PROTOCOL_DIR / "v1.toml").read_text()
    copy = load_protocol(1, directory=folder)
    assert copy is not P
    assert copy.sha256 == V1_SHA256
    assert copy == P


def test_hash_ignores_key_order_within_a_table(tmp_path):
    folder = _copy_v1(tmp_path / "reordered",
                      lambda t: t.replace("frames = 8\ntau = 8\n", "tau = 8\nframes = 8\n", 1))
    assert load_protocol(1, directory=folder).sha256 == V1_SHA256


@pytest.mark.parametrize("old, new", [
    ("lr = 1e-3\n", "lr = 2e-3\n"),
    ("tau = 8\n", "tau = 4\n"),
    ('frozen = "2026-11-28"', 'frozen = "2026-11-29"'),
    ("hflip = false\n", "hflip = true\n"),
])
def test_hash_changes_when_one_value_changes(tmp_path, old, new):
    text = (PROTOCOL_DIR / "v1.toml").read_text()
    assert text.count(old) >= 1
    folder = _copy_v1(tmp_path / "changed", lambda t: t.replace(old, new, 1))
    changed = load_protocol(1, directory=folder)
    assert changed.sha256 != V1_SHA256
    assert re.fullmatch(r"[0-9a-f]{64}", changed.sha256)


def test_unknown_version_raises_vdc_error(tmp_path):
    with pytest.raises(VdcError, match=r"unknown protocol version 99 \(known: 1\)"):
        load_protocol(99)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VdcError, match=r"known: none"):
        load_protocol(1, directory=empty)


def test_protocol_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        P.version = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        P.datasets["x"] = P.datasets["synthetic"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        P.trainer.lr = 1.0  # type: ignore[misc]


# --- sampling and data sets ----------------------------------------------------------------------

def test_sampling():
    assert (P.sampling.frames, P.sampling.tau) == (8, 8)


EXPECTED_DATASETS = {
    # name: (classes, resize, crop, metrics, base batch, hflip, interval, teacher profile)
    "synthetic": (10, (64, 64), 56, ("top1",), 10, True, 1, "synthetic"),
    "ucf101": (101, (128, 170), 112, ("top1",), 10, True, None, "reference"),
    "hmdb51": (51, (128, 170), 112, ("top1",), 10, True, None, "reference"),
    "kinetics400": (400, (64, 64), 56, ("top1", "top5"), 40, True, None, "reference"),
    "ssv2": (174, (64, 64), 56, ("top1", "top5"), 40, False, None, "reference"),
    "miniucf": (50, (128, 170), 112, ("top1",), 10, True, None, "reference"),
    "folder": (0, (128, 170), 112, ("top1",), 10, True, None, "reference"),
}


def test_all_seven_datasets_exist():
    assert set(P.datasets) == set(EXPECTED_DATASETS)
    assert len(P.datasets) == 7


@pytest.mark.parametrize("name", sorted(EXPECTED_DATASETS))
def test_dataset_values(name):
    classes, resize, crop, metrics, batch, hflip, interval, profile = EXPECTED_DATASETS[name]
    ds = P.dataset(name)
    assert ds.name == name
    assert ds.num_classes == classes
    assert ds.resize == resize
    assert ds.crop == crop
    assert ds.metrics == metrics
    assert ds.base_batch_size == batch
    assert ds.hflip is hflip
    assert ds.interval == interval
    assert ds.teacher_profile == profile
    assert (ds.generator is not None) == (name == "synthetic")


def test_only_ssv2_has_no_flip():
    assert [n for n, d in P.datasets.items() if not d.hflip] == ["ssv2"]


def test_top5_only_for_kinetics_and_ssv2():
    assert sorted(n for n, d in P.datasets.items() if "top5" in d.metrics) == ["kinetics400", "ssv2"]


def test_miniucf_class_list():
    classes = P.dataset("miniucf").classes
    assert len(classes) == 50 == len(set(classes))
    assert classes[0] == "ApplyEyeMakeup" and classes[-1] == "WritingOnBoard"
    assert all(not P.dataset(n).classes for n in P.datasets if n != "miniucf")


def test_synthetic_generator_spec():
    g = P.dataset("synthetic").generator
    assert (g.version, g.seed, g.frames, g.height, g.width) == (1, 20261128, 32, 64, 64)
    assert (g.train_per_class, g.val_per_class) == (80, 30)
    assert g.train_sha256 == "b1f1fa362629f39aaa9f938f476cfe85ae218dde13b9be15b700532676cd4e27"
    assert g.val_sha256 == "73a27b1a0acd99764c3cc96eb68b58a722c47e77ecbee5c39f1d2ed7ab179442"


def test_unknown_dataset_suggests_close_name():
    with pytest.raises(UnknownNameError, match=r"unknown data set 'ucf100'; did you mean 'ucf101'\?") as err:
        P.dataset("ucf100")
    assert isinstance(err.value, VdcError)
    assert err.value.kind == "data set" and err.value.name == "ucf100"


def test_unknown_name_without_close_match_lists_known():
    with pytest.raises(UnknownNameError, match=r"; known: .*folder.*ucf101"):
        P.dataset("zzzzzzzz")


# --- tracks --------------------------------------------------------------------------------------

def test_track_ids():
    assert P.track_ids() == ["ipc1-t8", "ipc5-t8", "ipc10-t8"]
    assert P.track_ids(include_temporal=True) == [
        "ipc1-t8", "ipc5-t8", "ipc10-t8", "ipc8-t4", "ipc4-t8", "ipc2-t16", "ipc1-t32"]


def test_synthetic_ipc1_t8():
    track = P.track("synthetic", "ipc1-t8")
    assert track.official is True
    assert track.id == "ipc1-t8"
    assert (track.ipc, track.frames) == (1, 8)
    assert (track.height, track.width) == (56, 56)
    assert track.num_classes == 10
    assert track.max_instances == 10
    assert track.frame_budget == 80
    assert track.dataset is P.dataset("synthetic")


def test_track_accepts_dataset_object():
    assert P.track(P.dataset("ucf101"), "ipc10-t8").frame_budget == 10 * 101 * 8
    assert P.track("ucf101", "ipc10-t8").height == 112


@pytest.mark.parametrize("track_id", ["ipc1-t8", "ipc5-t8", "ipc10-t8"])
def test_official_tracks(track_id):
    assert P.track("kinetics400", track_id).official is True


@pytest.mark.parametrize("track_id, ipc, frames", [
    ("ipc8-t4", 8, 4), ("ipc4-t8", 4, 8), ("ipc2-t16", 2, 16), ("ipc1-t32", 1, 32)])
def test_declared_temporal_tracks_are_not_official(track_id, ipc, frames):
    track = P.track("synthetic", track_id)
    assert track.official is False
    assert (track.ipc, track.frames) == (ipc, frames)
    assert track.frame_budget == 32 * 10   # equal-frame grid: ipc x frames = 32 per class


def test_undeclared_track_raises_with_suggestion():
    with pytest.raises(UnknownNameError, match=r"unknown track 'ipc3-t8'; did you mean 'ipc[145]-t8'\?"):
        P.track("synthetic", "ipc3-t8")


@pytest.mark.parametrize("bad", ["ipc1t8", "IPC1-T8", "ipc1-t8 ", ""])
def test_malformed_track_id_raises(bad):
    with pytest.raises(UnknownNameError):
        P.track("synthetic", bad)


def test_track_of_unknown_dataset_raises():
    with pytest.raises(UnknownNameError, match="data set"):
        P.track("ucf100", "ipc1-t8")


# --- trainer -------------------------------------------------------------------------------------

def test_trainer_values():
    t = P.trainer
    assert t.optimizer == "adamw" and t.lr == 1e-3 and t.betas == (0.9, 0.999)
    assert t.weight_decay == 0.01 and t.weight_decay_min_ndim == 2
    assert t.epochs == 300 and t.schedule == "half-cosine"
    assert t.crop_scale == (0.08, 1.0)
    assert t.crop_ratio == (0.75, 4 / 3)
    assert t.normalize_mean == (0.485, 0.456, 0.406)
    assert t.normalize_std == (0.229, 0.224, 0.225)
    assert t.official_seeds == (0, 1, 2)
    assert t.reference_metric_epochs == tuple(range(209, 300, 10))


def test_trainer_lr_factor():
    t = P.trainer
    assert t.lr_factor(0) == 1.0
    assert t.lr_factor(300) == pytest.approx(0.5, abs=1e-12)
    assert t.lr_factor(150) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)), abs=1e-12)
    values = [t.lr_factor(e) for e in range(301)]
    assert all(a > b for a, b in zip(values, values[1:])), "lr_factor must decrease strictly"
    assert min(values) >= 0.5 - 1e-12


def test_trainer_batch_size():
    t = P.trainer
    assert t.batch_size_for(P.dataset("synthetic"), 10) == 100
    assert t.batch_size_for(P.dataset("synthetic"), 1) == 10
    assert t.batch_size_for(P.dataset("kinetics400"), 5) == 200
    assert t.batch_size_for(P.dataset("ssv2"), 1) == 40


# --- teacher recipes -----------------------------------------------------------------------------

def test_teacher_recipe_lookup():
    recipe = P.teacher_recipe("synthetic", "minic3d")
    assert recipe.name == "synthetic-minic3d"
    assert P.teacher_recipe(P.dataset("synthetic"), "minic3d-in") is recipe
    assert P.teacher_recipe("ucf101", "minic3d").name == "reference-minic3d"
    assert P.teacher_recipe("kinetics400", "slowonly_r18").name == "reference-slowonly_r18"
    assert (recipe.epochs, recipe.warmup_epochs, recipe.milestones) == (60, 3, (36, 52))
    assert recipe.crop_scale == (0.35, 1.0) and recipe.batch_size == 32 and recipe.seed == 0


def test_teacher_recipe_unknown_net():
    with pytest.raises(UnknownNameError, match="unknown net"):
        P.teacher_recipe("synthetic", "minic4d")


def test_teacher_lr_factor_warmup_and_milestones():
    r = P.teacher_recipe("synthetic", "minic3d")
    assert r.lr_factor(0) == pytest.approx(0.1, abs=1e-12)
    assert r.lr_factor(1) == pytest.approx(0.4, abs=1e-12)
    assert r.lr_factor(2) == pytest.approx(0.7, abs=1e-12)
    assert r.lr_factor(3) == pytest.approx(1.0, abs=1e-12)
    assert r.lr_factor(35) == pytest.approx(1.0, abs=1e-12)
    assert r.lr_factor(36) == pytest.approx(0.1, abs=1e-12)
    assert r.lr_factor(51) == pytest.approx(0.1, abs=1e-12)
    assert r.lr_factor(52) == pytest.approx(0.01, abs=1e-12)
    assert r.lr_factor(59) == pytest.approx(0.01, abs=1e-12)


def test_teacher_lr_factor_without_warmup():
    r = P.teacher_recipes["reference-r2plus1d_r18"]
    assert r.warmup_epochs == 0
    assert r.lr_factor(0) == 1.0
    assert r.lr_factor(20) == pytest.approx(0.1)
    assert r.lr_factor(40) == pytest.approx(0.01)


def test_protocol_from_copied_directory_matches(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    shutil.copy(PROTOCOL_DIR / "v1.toml", folder / "v1.toml")
    assert load_protocol(1, directory=folder).sha256 == V1_SHA256


# --- closed choices and unknown keys -------------------------------------------------------------

def test_closed_choices_are_enums_that_read_as_their_strings():
    import json

    from vdcbench.protocol import LabelSource, Loss, Optimizer, Schedule
    t = P.trainer
    assert t.schedule is Schedule.HALF_COSINE and t.optimizer is Optimizer.ADAMW
    assert P.label_strategy("hard").loss is Loss.CE
    assert P.label_strategy("soft").labels is LabelSource.ARCHIVE_LOGITS
    assert P.label_strategy("multi-sl").labels is LabelSource.TEACHER_ONLINE
    assert P.variant("kl").loss_override is Loss.KL
    assert P.variant("official").loss_override is None    # "" in the TOML
    for member in (Schedule.HALF_COSINE, Loss.MSE_GT, LabelSource.ARCHIVE_HARD):
        # What files and messages are built from must be the bare value on every Python.
        assert f"{member}" == str(member) == format(member, "") == member.value
        assert json.dumps(member) == json.dumps(member.value)
        assert json.dumps({"k": member}, indent=2) == json.dumps({"k": member.value}, indent=2)
        assert member == member.value


@pytest.mark.parametrize("old, new, key, table", [
    ('schedule = "half-cosine"', 'schedual = "half-cosine"', "schedual", "trainer"),
    ("gamma = 0.1\n\n[label_strategies.multi-sl]",
     "gamma = 0.1\ngama = 0.2\n\n[label_strategies.multi-sl]", "gama", "label_strategies.soft"),
    ("train_per_class = 80\n", "train_per_klass = 80\n", "train_per_klass",
     "datasets.synthetic.generator"),
    ('norm = "batch"\n', 'norm = "batch"\nnorms = "batch"\n', "norms", "nets.minic3d"),
    ("max_members = 16\n", "max_members = 16\nmax_memebers = 16\n", "max_memebers", "archive"),
    ('frozen = "2026-11-28"\n', 'frozen = "2026-11-28"\nfrozn = 1\n', "frozn", "protocol"),
])
def test_unknown_key_is_refused_naming_key_and_table(tmp_path, old, new, key, table):
    text = (PROTOCOL_DIR / "v1.toml").read_text()
    assert text.count(old) == 1
    folder = _copy_v1(tmp_path / "misspelt", lambda t: t.replace(old, new, 1))
    with pytest.raises(VdcError) as caught:
        load_protocol(1, directory=folder)
    message = str(caught.value)
    assert "\n" not in message
    assert f"unknown key {key!r} in [{table}]" in message
    assert "v1.toml" in message


def test_unknown_top_level_table_is_refused(tmp_path):
    folder = _copy_v1(tmp_path / "extra", lambda t: t + "\n[trainers]\nlr = 1\n")
    with pytest.raises(VdcError, match=r"unknown key 'trainers'"):
        load_protocol(1, directory=folder)


def test_missing_key_is_refused(tmp_path):
    folder = _copy_v1(tmp_path / "missing", lambda t: t.replace("tau = 8\n", "", 1))
    with pytest.raises(VdcError, match=r"missing key 'tau' in \[sampling\]"):
        load_protocol(1, directory=folder)


def test_value_outside_a_closed_choice_is_refused(tmp_path):
    folder = _copy_v1(tmp_path / "schedule",
                      lambda t: t.replace('"half-cosine"', '"cosine"', 1))
    with pytest.raises(VdcError, match=r"\[trainer\] schedule must be one of half-cosine, "
                                       r"not 'cosine'"):
        load_protocol(1, directory=folder)
