"""The committed archives are the project's data: the same command and seed must write them again,
tensor for tensor and manifest field for field (all but the condensation's wall time)."""

from __future__ import annotations

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
    manifest["method"].pop("wall_seconds")
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
