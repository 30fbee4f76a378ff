"""What makes two results the same measurement is RecordKey's list, kept once: entries and diffs
take it from there, and every field has the words submit and diff report it with."""

from __future__ import annotations

import dataclasses
from importlib.resources import files

from vdcbench.evaluation.records import RecordKey
from vdcbench.leaderboard.entry import Entry
from vdcbench.leaderboard.measurement import (FIELD_LABELS, FIELD_NAMES, PER_RESULT_FIELDS,
                                              Measurement, shown)


def test_measurement_is_the_record_key_without_net_and_seed():
    key_fields = [f.name for f in dataclasses.fields(RecordKey)]
    assert set(PER_RESULT_FIELDS) <= set(key_fields)
    assert list(FIELD_NAMES) == [n for n in key_fields if n not in PER_RESULT_FIELDS]
    # A field added to RecordKey needs its words here, or submit's refusals would not name it.
    assert set(FIELD_LABELS) == set(FIELD_NAMES)


def test_measurement_of_a_key_and_entries_read_through_it():
    key = RecordKey(archive_sha256="ab" * 32, protocol_version=1, protocol_sha256="cd" * 32,
                    dataset="synthetic", dataset_sha256="ef" * 32, track="ipc1-t8",
                    label_strategy="hard", variant="official", net="minic3d",
                    teacher_sha256=None, seed=3)
    m = Measurement.of(key)
    assert m.track == "ipc1-t8" and m.teacher_sha256 is None and not hasattr(m, "seed")
    assert dataclasses.replace(m) == m and hash(m) == hash(Measurement.of(key))
    entry = Entry.__new__(Entry)
    object.__setattr__(entry, "measurement", m)
    assert entry.dataset == "synthetic" and entry.archive_sha256 == "ab" * 32
    try:
        entry.no_such_field
    except AttributeError as exc:
        assert "no_such_field" in str(exc)
    else:
        raise AssertionError("an unknown attribute must raise AttributeError")


def test_shown_shortens_hashes_only():
    assert shown("ab" * 32) == "ab" * 6 and shown("ipc1-t8") == "ipc1-t8" and shown(1) == "1"


def test_page_assets_are_package_data():
    assets = files("vdcbench.leaderboard.render") / "assets"
    css = (assets / "leaderboard.css").read_text(encoding="utf-8")
    js = (assets / "leaderboard.js").read_text(encoding="utf-8")
    assert css.startswith(":root") and "[hidden]" in css
    assert js.startswith("(function () {") and js.endswith("}());\n")
