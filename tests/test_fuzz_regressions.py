"""Inputs the fuzzers (tests/test_fuzz_*.py) found bugs with, kept as plain tests.

Each names the fuzz target, the input and the symptom it had. The non-finite cases were xfail while the
strict-JSON change (issue 16, item 4) was landing; it has, and they pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from json_fixtures import json_with_number, repack_with_manifest
from vdcbench.core.errors import VdcError
from vdcbench.data.store import MANIFEST_FILE, Store, StoredVideo, write_store


def one_line_refusal(call) -> VdcError:
    with pytest.raises(VdcError) as caught:
        call()
    message = str(caught.value)
    assert message.strip() and "\n" not in message
    return caught.value


# ------------------------------------------------------------------------------ the store
def write_tiny_store(folder: Path) -> None:
    write_store(folder, name="tiny", dataset="folder", classes=("cat", "dog"), resize=(6, 8),
                videos=[StoredVideo("a", 0, "train", 3, 25.0)],
                read_frames=lambda i: np.zeros((3, 6, 8, 3), dtype=np.uint8), manifest_extra={})


@pytest.mark.parametrize("spelling", ["Infinity", "-Infinity", "1e400"])
def test_store_manifest_with_infinite_total_frames(tmp_path, spelling):
    # test_fuzz_store: "total_frames": Infinity made Store() raise OverflowError (int() of an
    # infinite float) instead of the one-line "not a readable frame store".
    write_tiny_store(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    text = json.dumps(manifest).replace(f'"total_frames": {manifest["total_frames"]}',
                                        f'"total_frames": {spelling}')
    assert spelling in text
    (tmp_path / MANIFEST_FILE).write_text(text)
    one_line_refusal(lambda: Store(tmp_path))


def test_store_manifest_nan_count_is_refused_not_crashed(tmp_path):
    # Same input family: NaN reaches int() as ValueError, already one line; kept beside the
    # Infinity case so both spellings stay covered.
    write_tiny_store(tmp_path)
    text = (tmp_path / MANIFEST_FILE).read_text()
    (tmp_path / MANIFEST_FILE).write_text(text.replace('"total_frames": 3', '"total_frames": NaN'))
    one_line_refusal(lambda: Store(tmp_path))


# --------------------------------------------------------- non-finite numbers
# The fuzzers' property held for these (a valid read, no crash), but the value read was NaN or
# infinity (issue 16 item 4): every reader now refuses them in one line.
SPELLINGS = ["NaN", "Infinity", "1e400"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_record_with_non_finite_wall_seconds_is_refused(tmp_path, spelling):
    from vdcbench.evaluation.records import EvalRecord
    committed = sorted(ROOT.glob("submissions/records/**/seed0.json"))[0]
    path = tmp_path / "seed0.json"
    path.write_text(json_with_number(json.loads(committed.read_text()), ("wall_seconds",), spelling))
    one_line_refusal(lambda: EvalRecord.from_disk(path))


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_entry_with_non_finite_condensation_time_is_refused(tmp_path, spelling):
    from vdcbench.leaderboard.validate import validate_entries
    committed = sorted(ROOT.glob("submissions/*/*/entry.json"))[0]
    path = tmp_path / committed.parent.parent.name / committed.parent.name / "entry.json"
    path.parent.mkdir(parents=True)
    path.write_text(json_with_number(json.loads(committed.read_text()),
                                 ("condensation", "wall_seconds"), spelling))
    one_line_refusal(lambda: validate_entries(tmp_path, read_archives=False))


@pytest.mark.parametrize("spelling", ["NaN", "1e400"])
def test_store_manifest_with_non_finite_size_is_refused(tmp_path, spelling):
    write_tiny_store(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    (tmp_path / MANIFEST_FILE).write_text(json_with_number(manifest, ("size_bytes",), spelling))
    one_line_refusal(lambda: Store(tmp_path))


def test_archive_manifest_with_infinite_wall_seconds_is_refused(tmp_path):
    # Issue 16 item 4 exactly: "wall_seconds": 1e400 in an archive's manifest is read as inf.
    import torch

    from vdcbench.archive import ArchiveError, read_archive, write_archive
    from vdcbench.archive.condensed import CondensedSet, MethodInfo
    from vdcbench.protocol import load_protocol

    cs = CondensedSet(videos=torch.zeros((1, 3, 8, 56, 56), dtype=torch.uint8),
                      labels=torch.tensor([0]), dataset="synthetic", track="ipc1-t8",
                      method=MethodInfo("fuzz", "selection", wall_seconds=1.0))
    valid = tmp_path / "valid.tar"
    write_archive(cs, valid, protocol=load_protocol(1))
    path = repack_with_manifest(valid, tmp_path / "infinite.tar", lambda data: json_with_number(
        json.loads(data), ("method", "wall_seconds"), "1e400").encode())
    with pytest.raises(ArchiveError) as caught:
        read_archive(path)
    assert "\n" not in str(caught.value)


def test_store_manifest_format_version_with_a_newline_is_one_line(tmp_path):
    # test_fuzz_store (long run): "format_version": "1\n" gave the two-line message
    # "format version 1\n is not 1; ..." (the value was printed, not repr'd).
    write_tiny_store(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    manifest["format_version"] = "1\n"
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(manifest))
    one_line_refusal(lambda: Store(tmp_path))


# Found by the long run of test_fuzz_records; both readers accept the number, and the crash
# comes after, where the numbers are averaged. Strict JSON reading now refuses both (NaN; an
# integer beyond a float's range).
def test_record_with_an_integer_beyond_float_range_aggregates_or_is_refused(tmp_path):
    # "reference_best_top1": 1 followed by 400 zeros: from_disk accepted it, aggregate() then
    # raised OverflowError (int too large to convert to float) in statistics.mean.
    from vdcbench.evaluation.records import EvalRecord, aggregate
    committed = sorted(ROOT.glob("submissions/records/**/seed0.json"))[0]
    path = tmp_path / "seed0.json"
    path.write_text(json_with_number(json.loads(committed.read_text()), ("reference_best_top1",),
                                 "1" + "0" * 400))
    try:
        record = EvalRecord.from_disk(path)
    except VdcError as err:
        assert "\n" not in str(err)
        return
    aggregate([record])


def test_entry_with_a_nan_seed_result_is_refused(tmp_path):
    # A seed's "top1": NaN: Entry.from_dict's summary check raised AttributeError ('float'
    # object has no attribute 'numerator', from statistics) instead of a one-line refusal.
    from vdcbench.leaderboard.validate import validate_entries
    committed = sorted(ROOT.glob("submissions/*/*/entry.json"))[0]
    path = tmp_path / committed.parent.parent.name / committed.parent.name / "entry.json"
    path.parent.mkdir(parents=True)
    entry = json.loads(committed.read_text())
    path.write_text(json_with_number(entry, ("results", 0, "seeds", 0, "top1"), "NaN"))
    one_line_refusal(lambda: validate_entries(tmp_path, read_archives=False))
