"""A full disk (issue 16): a record, entry or store write that fails with ENOSPC leaves the previous
file intact, no temporary file behind, and the command exits 2 with one line naming the file.

The disk fills up inside ``vdcbench.core.atomic_file``'s write: half of the first chunk reaches the
temporary file, then ``write`` raises ``OSError(ENOSPC)``, as a real full disk does mid-file.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
from pathlib import Path

import pytest

import vdcbench.core.atomic_file as atomic_file
from process_fixtures import copy_cache, invoke, prepare_args, shared_collection
from vdcbench.core.errors import VdcError

REPO = Path(__file__).resolve().parents[1]
PART_FRAMES = "?" * 32 + ".npy"


class _FullDisk:
    """A file whose every write stores half its bytes and then fails as a full disk does."""

    def __init__(self, fh):
        self._fh = fh

    def write(self, data) -> int:
        data = bytes(data)
        self._fh.write(data[: len(data) // 2])
        self._fh.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._fh.close()


def fill_disk_at(monkeypatch, pattern: str, nth: int = 1) -> None:
    """The ``nth`` atomic write of a file whose name matches ``pattern`` hits a full disk."""
    seen = [0]

    def opener(path, mode="r", *args, **kwargs):
        fh = open(path, mode, *args, **kwargs)
        if "w" in mode and fnmatch.fnmatch(Path(path).name, f".{pattern}.*.tmp"):
            seen[0] += 1
            if seen[0] == nth:
                return _FullDisk(fh)
        return fh

    monkeypatch.setattr(atomic_file, "open", opener, raising=False)


def _one_error_line(result, path_part: str) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    assert path_part in errors[0] and "no space left" in errors[0], errors[0]
    return errors[0]


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in Path(folder).rglob("*.tmp")]


def test_an_atomic_write_on_a_full_disk_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "record.json"
    atomic_file.write_json_atomic(target, {"top1": 1.0})
    before = target.read_bytes()
    fill_disk_at(monkeypatch, "record.json")
    with pytest.raises(VdcError, match=r"cannot write .*record\.json: no space left on device"):
        atomic_file.write_json_atomic(target, {"top1": 2.0})
    assert target.read_bytes() == before
    assert not _temporaries(tmp_path)


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    return shared_collection(tmp_path_factory)


def test_evaluate_on_a_full_disk_keeps_earlier_records(collection, tmp_path, monkeypatch):
    base, _, archive = collection
    cache, results = copy_cache(base, tmp_path / "cache"), tmp_path / "results"
    args = ["evaluate", archive, "--epochs", "1", "--results-dir", results]
    assert invoke(*args, "--seeds", "0", env=cache).exit_code == 0
    (seed0,) = results.rglob("seed0.json")
    before = seed0.read_bytes()
    fill_disk_at(monkeypatch, "seed1.json")
    _one_error_line(invoke(*args, "--seeds", "0,1", env=cache), "seed1.json")
    assert seed0.read_bytes() == before
    assert not list(results.rglob("seed1.json")) and not _temporaries(results)


def test_submit_on_a_full_disk_keeps_the_previous_entry(tmp_path, monkeypatch):
    args = ["submit", REPO / "submissions" / "records", "--pick", "--variant", "official",
            "--archive", REPO / "submissions" / "archives" / "random-synthetic-ipc1-hard-s0.tar",
            "--submissions", tmp_path / "subs"]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    (entry,) = (tmp_path / "subs").rglob("entry.json")
    before = entry.read_bytes()
    fill_disk_at(monkeypatch, "entry.json")
    _one_error_line(invoke(*args, "--replace", "--author", "Someone Else"), "entry.json")
    assert entry.read_bytes() == before
    assert not _temporaries(tmp_path / "subs")


def test_prepare_on_a_full_disk_keeps_its_parts_and_never_a_half_store(collection, tmp_path,
                                                                       monkeypatch):
    base, folder, _ = collection
    cache = tmp_path / "cache"
    store = cache / "stores" / "full"
    args = prepare_args(folder, "full")
    fill_disk_at(monkeypatch, PART_FRAMES, nth=3)
    _one_error_line(invoke(*args, env=cache), ".npy")
    parts = sorted((store / "parts").glob("?" * 32 + ".json"))
    assert len(parts) == 2 and all(json.loads(p.read_text())["key"] for p in parts)
    kept = {p: p.read_bytes() for p in (store / "parts").iterdir()}
    assert not _temporaries(store)

    fill_disk_at(monkeypatch, "manifest.json")
    _one_error_line(invoke(*args, env=cache), "manifest.json")
    assert not (store / "manifest.json").exists(), "a store without its manifest is absent"
    assert all(p.read_bytes() == data for p, data in kept.items() if p.exists())
    assert not _temporaries(store)

    monkeypatch.undo()
    done = invoke(*args, env=cache)
    assert done.exit_code == 0, done.output
    expected = json.loads((base / "stores" / "acts" / "manifest.json").read_text())["sha256"]
    assert json.loads((store / "manifest.json").read_text())["sha256"] == expected
