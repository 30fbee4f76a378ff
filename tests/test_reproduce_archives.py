"""The committed archives are the project's data: the same command and seed must write them again,
tensor for tensor and manifest field for field (all but the condensation's wall time, which the
committed archives carry in their manifest and archives written since issue 16 do not), and a
fresh archive is byte for byte what the same command wrote before."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from vdcbench.cli import main

ARCHIVES = Path(__file__).resolve().parents[1] / "submissions" / "archives"


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def _manifest_without_wall_time(data: bytes) -> dict:
    manifest = json.loads(data)
    manifest["method"].pop("wall_seconds", None)
    return manifest


@pytest.mark.parametrize("ipc", [1, 5])
def test_random_rewrites_the_committed_archive(ipc, tmp_path):
    committed = ARCHIVES / f"random-synthetic-ipc{ipc}-hard-s0.tar"
    output = tmp_path / committed.name
    result = CliRunner().invoke(main, ["run-baseline", "random", "--dataset", "synthetic",
                                       "--ipc", str(ipc), "-o", str(output)])
    assert result.exit_code == 0, result.output
    new, old = _members(output), _members(committed)
    assert list(new) == list(old)
    for name in old:
        if name == "manifest.json":
            assert _manifest_without_wall_time(new[name]) == _manifest_without_wall_time(old[name])
        else:
            assert new[name] == old[name], f"{name} differs from {committed.name}"
    assert "wall_seconds" not in json.loads(new["manifest.json"])["method"]


def test_the_same_command_writes_the_same_bytes(tmp_path):
    # Issue 16 item 8: the archive's sha256 is its content's; the time goes beside it.
    runs = []
    for name in ("a", "b"):
        output = tmp_path / name / "r.tar"
        output.parent.mkdir()
        result = CliRunner().invoke(main, ["run-baseline", "random", "--dataset", "synthetic",
                                           "--ipc", "1", "--seed", "4", "-o", str(output)])
        assert result.exit_code == 0, result.output
        runs.append(output)
    assert runs[0].read_bytes() == runs[1].read_bytes()
    timing = json.loads(Path(f"{runs[0]}.timing.json").read_text())
    assert timing["archive_sha256"] == hashlib.sha256(runs[0].read_bytes()).hexdigest()
    assert timing["wall_seconds"] >= 0 and timing["device"] == "cpu"
