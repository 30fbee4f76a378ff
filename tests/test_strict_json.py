"""Issue 16 item 4: every JSON vdcbench reads refuses NaN and ±Infinity (spelt out, or a number
that overflows to infinity such as 1e400), and every JSON it writes is written with allow_nan=False."""

from __future__ import annotations

import pytest

from vdcbench.core.atomic_file import write_json_atomic
from vdcbench.core.errors import VdcError
from vdcbench.core.json_values import dumps_strict, load_json_strict

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
