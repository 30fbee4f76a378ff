"""Issue 16 items 1-2: the reader's peak memory is bounded by the declared track, whatever the
upload. A 23 MB gzip archive holding 1.5 GiB of zeros ahead of its manifest once drove
``vdcbench validate`` to 3.5 GB; it is now refused at that member's header."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest
import safetensors.torch
import torch

from vdcbench.archive import write_archive
from vdcbench.archive.condensed import CondensedSet, MethodInfo
from vdcbench.archive.manifest import build_manifest
from vdcbench.archive.reader import memory_bound
from vdcbench.protocol import load_protocol

PROTOCOL = load_protocol(1)
TRACK = PROTOCOL.track("synthetic", "ipc1-t8")
HUGE = 3 << 29                   # 1.5 GiB
CHUNK = 8 << 20

# Runs ``vdcbench validate`` as the only child of a fresh interpreter, so the peak it reports
# (ru_maxrss of the children, in KiB on Linux) is that command's alone.
_PEAK = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-c", "from vdcbench.cli import main; main()",
                       "validate", sys.argv[1]],
                      capture_output=True, text=True)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
print(done.stderr.strip())
"""


def _small_set() -> CondensedSet:
    return CondensedSet(videos=torch.zeros((1, 3, 8, 56, 56), dtype=torch.uint8),
                        labels=torch.tensor([0]), dataset="synthetic", track="ipc1-t8",
                        method=MethodInfo("crafted", "selection"))


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(tarfile.GNU_FORMAT)


def _pad(size: int) -> bytes:
    return bytes(-size % tarfile.BLOCKSIZE)


def _crafted(path: Path, *, manifest_first: bool) -> None:
    """A gzip tar whose videos member is 1.5 GiB of zeros, declared as such in a manifest that
    is otherwise valid; streamed, never held in memory. Gzip readers read concatenated gzip
    members as one stream, so one compressed chunk of zeros, written again and again, builds it
    in a fraction of a second."""
    cs = _small_set()
    labels = safetensors.torch.save({"labels": cs.labels})
    manifest = build_manifest(cs, protocol=PROTOCOL, num_classes=10, members={
        "videos.safetensors": ("0" * 64, HUGE),
        "labels.safetensors": (hashlib.sha256(labels).hexdigest(), len(labels))})
    text = json.dumps(manifest).encode()
    small = [("manifest.json", text), ("labels.safetensors", labels)]
    zeros = gzip.compress(bytes(CHUNK), compresslevel=1, mtime=0)
    # Twenty chunks coded without string matching (1 MiB each) make the upload about 27 MB, so
    # the 100x compression-ratio cap (2.7 GB) does not stop 1.5 GiB: only the bound can.
    huffman = zlib.compressobj(1, zlib.DEFLATED, 31, 9, zlib.Z_HUFFMAN_ONLY)
    loose = huffman.compress(bytes(CHUNK)) + huffman.flush()
    with path.open("wb") as fh:
        head = b""
        if manifest_first:
            head = _header("manifest.json", len(text)) + text + _pad(len(text))
            small = small[1:]
        fh.write(gzip.compress(head + _header("videos.safetensors", HUGE), mtime=0))
        for i in range(HUGE // CHUNK):
            fh.write(loose if i < 20 else zeros)
        tail = b"".join(_header(name, len(data)) + data + _pad(len(data)) for name, data in small)
        fh.write(gzip.compress(tail + bytes(2 * tarfile.BLOCKSIZE), mtime=0))


def _validate_peak(archive: Path) -> tuple[int, int, str]:
    out = subprocess.run([sys.executable, "-c", _PEAK, str(archive)], capture_output=True,
                         text=True, timeout=300, check=True).stdout.splitlines()
    code, peak = (int(v) for v in out[0].split())
    return code, peak, "\n".join(out[1:])


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> int:
    """Peak of ``vdcbench validate`` on a small valid archive: the interpreter, torch, the CLI."""
    path = tmp_path_factory.mktemp("baseline") / "ok.tar"
    write_archive(_small_set(), path, protocol=PROTOCOL)
    code, peak, _ = _validate_peak(path)
    assert code == 0
    return peak


@pytest.mark.parametrize("manifest_first", [False, True], ids=["manifest-last", "manifest-first"])
def test_a_huge_member_stays_under_the_documented_bound(tmp_path, baseline, manifest_first):
    archive = tmp_path / "crafted.tar.gz"
    _crafted(archive, manifest_first=manifest_first)
    assert 16 << 20 < archive.stat().st_size < 40 << 20
    code, peak, stderr = _validate_peak(archive)
    bound = memory_bound(TRACK, PROTOCOL.archive)
    print(f"\n{archive.stat().st_size} byte upload: validate peaked at {peak / 2**20:.0f} MiB; "
          f"baseline {baseline / 2**20:.0f} MiB + bound {bound / 2**20:.0f} MiB")
    assert code == 2 and len(stderr.splitlines()) == 1
    expected = ("manifest.json must be the first member" if not manifest_first
                else "no valid archive for synthetic/ipc1-t8 needs more than")
    assert expected in stderr
    assert peak <= baseline + bound
