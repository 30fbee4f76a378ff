"""Issue 16 item 4: every JSON vdcbench reads refuses NaN and ±Infinity (spelt out, or a number
that overflows to infinity such as 1e400), and every JSON it writes is written with allow_nan=False."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from json_fixtures import json_with_number

from vdcbench.cli import main
from vdcbench.core.atomic_file import write_json_atomic
from vdcbench.core.errors import VdcError
from vdcbench.core.json_values import dumps_strict, load_json_strict
from vdcbench.data.store import MANIFEST_FILE, Store, StoredVideo, write_store
from vdcbench.evaluation.records import EvalRecord
from vdcbench.leaderboard.entry import Entry
from vdcbench.leaderboard.validate import validate_entries

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 400]


@pytest.mark.parametrize("number", NON_FINITE)
def test_the_strict_reader_refuses_non_finite_numbers_in_one_line(number):
    with pytest.raises(VdcError) as err:
        load_json_strict(f'{{"wall_seconds": {number}}}', "manifest.json")
    message = str(err.value)
    assert message.startswith("manifest.json: ") and "\n" not in message


def test_the_strict_reader_reads_ordinary_json_and_names_bad_json():
    assert load_json_strict('{"a": [1, 2.5, 1e300, -0.0, null]}', "x") == {
        "a": [1, 2.5, 1e300, -0.0, None]}
    with pytest.raises(VdcError, match=r"^x: not JSON \("):
        load_json_strict('{"a": ', "x")
    with pytest.raises(VdcError, match="not JSON"):
        load_json_strict(b"\xff\xfe", "x")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_writing_a_non_finite_number_refuses_and_keeps_the_old_file(tmp_path, value):
    target = tmp_path / "record.json"
    target.write_text("old\n")
    with pytest.raises(VdcError, match="NaN or infinite") as err:
        write_json_atomic(target, {"top1": 1.0, "nested": {"wall_seconds": value}})
    assert "\n" not in str(err.value)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]
    with pytest.raises(VdcError):
        dumps_strict([value])


# ------------------------------------------------------------ the readers that use it
ROOT = Path(__file__).resolve().parents[1]
RECORD = sorted((ROOT / "submissions" / "records").rglob("seed0.json"))[0]
ENTRY = sorted((ROOT / "submissions").glob("*/*/entry.json"))[0]


def _one_line(call) -> str:
    with pytest.raises(VdcError) as err:
        call()
    message = str(err.value)
    assert message and "\n" not in message
    return message


@pytest.mark.parametrize("spelling", ["NaN", "1e400", "-Infinity"])
def test_a_record_with_a_non_finite_number_is_refused(tmp_path, spelling):
    path = tmp_path / "seed0.json"
    path.write_text(json_with_number(json.loads(RECORD.read_text()), ("wall_seconds",), spelling))
    assert "result record" in _one_line(lambda: EvalRecord.from_disk(path))


@pytest.mark.parametrize("spelling", ["NaN", "1e400"])
def test_an_entry_with_a_non_finite_number_is_refused(tmp_path, spelling):
    path = tmp_path / ENTRY.parent.parent.name / ENTRY.parent.name / "entry.json"
    path.parent.mkdir(parents=True)
    path.write_text(json_with_number(json.loads(ENTRY.read_text()), ("condensation", "wall_seconds"),
                           spelling))
    assert str(path) in _one_line(lambda: validate_entries(tmp_path, read_archives=False))
    assert str(path) in _one_line(lambda: Entry.from_disk(path))


@pytest.mark.parametrize("spelling", ["NaN", "1e400"])
def test_a_store_manifest_with_a_non_finite_number_is_refused(tmp_path, spelling):
    write_store(tmp_path, name="tiny", dataset="folder", classes=("cat", "dog"), resize=(6, 8),
                videos=[StoredVideo("a", 0, "train", 3, 25.0)],
                read_frames=lambda i: np.zeros((3, 6, 8, 3), dtype=np.uint8), manifest_extra={})
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    (tmp_path / MANIFEST_FILE).write_text(json_with_number(manifest, ("size_bytes",), spelling))
    assert "frame store" in _one_line(lambda: Store(tmp_path))


def test_submit_refuses_a_record_carrying_infinity(tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    (records / "seed0.json").write_text(
        json_with_number(json.loads(RECORD.read_text()), ("final_loss",), "Infinity"))
    archive = next((ROOT / "submissions" / "archives").glob("*.tar"))
    result = CliRunner().invoke(main, ["submit", str(records), "--archive", str(archive),
                                       "--submissions", str(tmp_path / "subs")])
    assert result.exit_code == 2, result.output
    assert "Infinity" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "subs").exists()
