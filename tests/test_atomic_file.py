"""The one temp-file-and-rename writer that records, caches and pages go through."""

import json
import stat

import pytest

from vdcbench.core.atomic_file import atomic_path, write_atomic, write_json_atomic, write_text_atomic
from vdcbench.core.errors import VdcError


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "record.json"
    target.write_text("old\n")

    def half_then_fail(fh):
        fh.write(b"half a rec")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_atomic(target, half_then_fail)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


def test_json_is_stored_in_one_canonical_form(tmp_path):
    target = tmp_path / "deep" / "folder" / "r.json"
    write_json_atomic(target, {"b": 1, "a": [1, 2]})
    text = target.read_text()
    assert text == json.dumps({"a": [1, 2], "b": 1}, indent=2) + "\n"
    # Shared records must be readable by other users: mkstemp's 0600 is not kept.
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_atomic_path_renames_only_on_a_clean_exit(tmp_path):
    target = tmp_path / "weights.bin"
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise ValueError("writer failed")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"


def test_an_unwritable_folder_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(VdcError, match="cannot write"):
        write_text_atomic(blocker / "inside.txt", "y")
