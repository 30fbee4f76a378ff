"""CondensedSet <-> submission.tar: round trips, determinism, atomic writes, the ledger."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import pickle
import tarfile

import jsonschema
import pytest
import torch
from json_fixtures import repack_with_manifest

from vdcbench.archive import (ArchiveError, ArchiveErrorCode, StorageLedger, read_archive,
                              write_archive)
from vdcbench.archive.manifest import SCHEMA_PATH, TensorSpec
from vdcbench.archive.condensed import CondensedSet, MethodInfo
from vdcbench.archive.timing import condensation_timing, read_timing, timing_path
from vdcbench.core.errors import VdcError
from vdcbench.protocol import load_protocol

Code = ArchiveErrorCode
PROTOCOL = load_protocol(1)
K, T, S = 10, 8, 56   # the synthetic data set: classes, track ipc1-t8 frames, crop


def make_videos(n: int, dtype: torch.dtype = torch.uint8, *, seed: int = 0, frames: int = T,
                side: int = S) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, (n, 3, frames, side, side), dtype=torch.uint8, generator=g)
    # Unclamped on purpose: synthesised videos may leave [0, 1].
    return (torch.rand((n, 3, frames, side, side), generator=g) * 2.0 - 0.5).to(dtype)


def make_set(n: int = K, dtype: torch.dtype = torch.uint8, **overrides) -> CondensedSet:
    fields = dict(
        videos=make_videos(n, dtype),
        labels=torch.arange(n, dtype=torch.int64) % K,
        dataset="synthetic",
        track="ipc1-t8",
        method=MethodInfo("random", "selection", {"ipc": 1, "note": "é"}, seed=3,
                          wall_seconds=1.5, device="cpu"),
        external_data=("ImageNet-1k, teacher pretraining",),
    )
    fields.update(overrides)
    return CondensedSet(**fields)


def soft_set(n: int = K) -> CondensedSet:
    soft = torch.randn((n, K), generator=torch.Generator().manual_seed(1))
    return make_set(n, torch.float16, soft_labels=soft, label_strategy="soft")


def write(cs: CondensedSet, path, **kw) -> str:
    return write_archive(cs, path, protocol=PROTOCOL, **kw)


# -- round trips -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.uint8, torch.float16, torch.float32])
def test_round_trip_preserves_tensors_and_metadata(tmp_path, dtype):
    cs = make_set(dtype=dtype)
    path = tmp_path / "sub.tar"
    digest = write(cs, path)
    loaded = read_archive(path)
    out = loaded.condensed
    assert out.videos.dtype == dtype
    assert torch.equal(out.videos, cs.videos)
    assert torch.equal(out.labels, cs.labels)
    assert out.soft_labels is None
    assert (out.dataset, out.track, out.label_strategy) == ("synthetic", "ipc1-t8", "hard")
    # The wall time is not part of the archive (issue 16): it went to the timing sidecar.
    assert out.method == dataclasses.replace(cs.method, wall_seconds=None)
    assert read_timing(path, digest).wall_seconds == 1.5
    assert out.external_data == ("ImageNet-1k, teacher pretraining",) and out.external_weights == ()
    assert loaded.sha256 == digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.track.id == "ipc1-t8" and loaded.track.dataset.name == "synthetic"
    assert (loaded.manifest.protocol_version, loaded.manifest.protocol_sha256) == (
        1, PROTOCOL.sha256)
    assert loaded.manifest.tensors["videos"] == TensorSpec(
        dtype=str(dtype).removeprefix("torch."), shape=(K, 3, T, S, S))


def test_soft_labels_round_trip(tmp_path):
    cs = soft_set()
    write(cs, tmp_path / "soft.tar")
    out = read_archive(tmp_path / "soft.tar", protocol=PROTOCOL).condensed
    assert out.label_strategy == "soft"
    assert out.soft_labels.dtype == torch.float32
    assert torch.equal(out.soft_labels, cs.soft_labels)


def test_multi_soft_label_strategy_stores_hard_labels_only(tmp_path):
    write(make_set(label_strategy="multi-sl"), tmp_path / "m.tar")
    loaded = read_archive(tmp_path / "m.tar")
    assert loaded.condensed.label_strategy == "multi-sl"
    assert "soft_labels" not in loaded.manifest.tensors


def test_fewer_instances_than_the_budget_are_fine(tmp_path):
    cs = make_set(n=3)
    write(cs, tmp_path / "few.tar")
    assert read_archive(tmp_path / "few.tar").condensed.per_class_counts(K) == (1, 1, 1) + (0,) * 7


def test_gzip_by_suffix(tmp_path):
    cs = make_set(n=2)
    for name in ("sub.tar.gz", "sub.tgz"):
        path = tmp_path / name
        write(cs, path)
        raw = path.read_bytes()
        assert raw[:2] == b"\x1f\x8b"
        assert raw[4:8] == b"\0\0\0\0"          # gzip header mtime
        assert torch.equal(read_archive(path).condensed.videos, cs.videos)
    assert (tmp_path / "sub.tar.gz").read_bytes() == (tmp_path / "sub.tgz").read_bytes()


def test_folder_data_set_takes_class_count_from_the_writer(tmp_path):
    cs = make_set(n=3, videos=make_videos(3, side=112), labels=torch.tensor([0, 1, 2]),
                  dataset="folder")
    with pytest.raises(ArchiveError) as err:
        write(cs, tmp_path / "f.tar")
    assert err.value.code is Code.NUM_CLASSES_MISMATCH
    write(cs, tmp_path / "f.tar", num_classes=4)
    loaded = read_archive(tmp_path / "f.tar")
    assert loaded.track.num_classes == 4 and loaded.track.max_instances == 4
    assert loaded.ledger.per_class_counts == (1, 1, 1, 0)


# -- the bytes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a.tar", "a.tar.gz"])
def test_writing_is_deterministic(tmp_path, name):
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    d1 = write(make_set(), tmp_path / "1" / name)
    d2 = write(make_set(), tmp_path / "2" / name)
    assert d1 == d2
    assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()


@pytest.mark.parametrize("name", ["a.tar", "a.tar.gz"])
def test_the_same_set_gives_the_same_bytes_whatever_the_wall_time(tmp_path, name):
    # Issue 16 item 8: an archive's identity is what it holds, not how long it took to make.
    first, second = tmp_path / "1" / name, tmp_path / "2" / name
    first.parent.mkdir()
    second.parent.mkdir()
    method = make_set().method
    d1 = write(make_set(method=dataclasses.replace(method, wall_seconds=0.25)), first)
    d2 = write(make_set(method=dataclasses.replace(method, wall_seconds=97.0)), second)
    assert d1 == d2 and first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert "wall_seconds" not in manifest["method"]
    assert json.loads(timing_path(first).read_text()) == {
        "format": "vdcbench-condensation-timing", "format_version": 1, "archive_sha256": d1,
        "wall_seconds": 0.25, "device": "cpu"}
    assert read_timing(second, d2).wall_seconds == 97.0
    assert read_timing(second, "0" * 64) is None          # a sidecar of other bytes is not theirs


def test_a_set_without_a_wall_time_writes_no_sidecar(tmp_path):
    method = dataclasses.replace(make_set().method, wall_seconds=None)
    digest = write(make_set(method=method), tmp_path / "a.tar")
    assert not timing_path(tmp_path / "a.tar").exists()
    assert read_timing(tmp_path / "a.tar", digest) is None


def test_archives_with_the_wall_time_in_their_manifest_still_read(tmp_path):
    # Every archive written before issue 16 (all of submissions/archives) carries it.
    path = tmp_path / "a.tar"
    write(make_set(n=2), path)

    def with_wall_time(data: bytes) -> bytes:
        manifest = json.loads(data)
        manifest["method"]["wall_seconds"] = 2.75
        return (json.dumps(manifest, sort_keys=True, indent=2) + "\n").encode()

    legacy = repack_with_manifest(path, tmp_path / "legacy.tar", with_wall_time)
    loaded = read_archive(legacy)
    assert loaded.condensed.method.wall_seconds == 2.75
    assert loaded.manifest.to_dict()["method"]["wall_seconds"] == 2.75
    timing = condensation_timing(legacy, loaded.sha256, loaded.manifest.method)
    assert (timing.wall_seconds, timing.device) == (2.75, "cpu")


def test_tar_layout_is_canonical(tmp_path):
    write(soft_set(), tmp_path / "a.tar")
    with tarfile.open(tmp_path / "a.tar") as tar:
        members = tar.getmembers()
    # Manifest first, so a reader knows the budget before the large members.
    assert [m.name for m in members] == ["manifest.json", "labels.safetensors",
                                         "videos.safetensors"]
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) == (0, 0, 0, "", "", 0o644)
        assert m.isreg()


def test_manifest_matches_the_published_schema(tmp_path):
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    write(soft_set(), tmp_path / "a.tar")
    manifest = read_archive(tmp_path / "a.tar").manifest.to_dict()
    jsonschema.validate(manifest, schema)
    assert manifest["format"] == "vdcbench-submission" and manifest["format_version"] == 1
    assert manifest["num_classes"] == K
    assert set(manifest["members"]) == {"videos.safetensors", "labels.safetensors"}
    assert manifest["method"] == {"name": "random", "kind": "selection",
                                  "config": {"ipc": 1, "note": "é"}, "seed": 3, "device": "cpu"}
    assert set(manifest["created_with"]) == {"vdcbench", "torch"}


# -- writing safely ----------------------------------------------------------------------------

def test_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "a.tar"
    first = write(make_set(n=2), path)
    before = path.read_bytes()
    with pytest.raises(ArchiveError) as err:
        write(make_set(n=3), path)
    assert err.value.code is Code.DESTINATION_EXISTS and "already exists" in str(err.value)
    assert isinstance(err.value, VdcError) and err.value.exit_code == 2
    assert path.read_bytes() == before
    second = write(make_set(n=3), path, overwrite=True)
    assert second != first and read_archive(path).condensed.num_instances == 3


def test_missing_directory_is_a_user_error(tmp_path):
    with pytest.raises(ArchiveError) as err:
        write(make_set(n=2), tmp_path / "nowhere" / "a.tar")
    assert err.value.code is Code.DESTINATION_UNWRITABLE


def test_directory_as_destination_is_refused(tmp_path):
    with pytest.raises(ArchiveError) as err:
        write(make_set(n=2), tmp_path, overwrite=True)
    assert err.value.code is Code.DESTINATION_UNWRITABLE


def test_unwritable_directory_is_a_user_error(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    # Root ignores directory permissions, so the refusal is simulated where the OS would give it.
    monkeypatch.setattr("vdcbench.archive.writer.tempfile.mkstemp", denied)
    with pytest.raises(ArchiveError) as err:
        write(make_set(n=2), tmp_path / "a.tar")
    assert err.value.code is Code.DESTINATION_UNWRITABLE and "Permission denied" in str(err.value)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_directory_is_a_user_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(ArchiveError) as err:
            write(make_set(n=2), locked / "a.tar")
        assert err.value.code is Code.DESTINATION_UNWRITABLE
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("failure", [RuntimeError("boom"), OSError(28, "No space left on device")])
def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch, failure):
    path = tmp_path / "a.tar"
    path.write_bytes(b"previous")

    def broken(self, *args, **kwargs):
        raise failure

    monkeypatch.setattr(tarfile.TarFile, "addfile", broken)
    with pytest.raises((RuntimeError, ArchiveError)):
        write(make_set(n=2), path, overwrite=True)
    assert path.read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["a.tar"]


def test_writer_runs_the_readers_budget_checks(tmp_path):
    path = tmp_path / "a.tar"
    over = make_set(n=2, labels=torch.tensor([4, 4]))
    with pytest.raises(ArchiveError) as err:
        write(over, path)
    assert err.value.code is Code.BUDGET_IPC
    nan = make_videos(2, torch.float32)
    nan[1, 0, 0, 0, 0] = float("nan")
    with pytest.raises(ArchiveError) as err:
        write(make_set(n=2, videos=nan), path)
    assert err.value.code is Code.NON_FINITE
    with pytest.raises(ArchiveError) as err:
        write(make_set(n=2, track="ipc3-t8"), path)
    assert err.value.code is Code.UNKNOWN_TRACK
    assert not path.exists()


def test_method_config_must_be_json(tmp_path):
    cs = make_set(n=2, method=MethodInfo("x", "distillation", {"lr": float("nan")}))
    with pytest.raises(ArchiveError) as err:
        write(cs, tmp_path / "a.tar")
    assert err.value.code is Code.SCHEMA
    cs = make_set(n=2, method=MethodInfo("x", "distillation", {"obj": object()}))
    with pytest.raises(ArchiveError) as err:
        write(cs, tmp_path / "a.tar")
    assert err.value.code is Code.SCHEMA


def test_writer_accepts_tensors_that_need_copying(tmp_path):
    videos = make_videos(2, torch.float32).transpose(3, 4).requires_grad_()
    cs = make_set(n=2, videos=videos)
    write(cs, tmp_path / "a.tar")
    assert torch.equal(read_archive(tmp_path / "a.tar").condensed.videos, videos.detach())


# -- the ledger --------------------------------------------------------------------------------

def test_ledger_reports_bytes_per_part(tmp_path):
    cs = soft_set(n=4)
    path = tmp_path / "a.tar"
    write(cs, path)
    loaded = read_archive(path)
    ledger = loaded.ledger
    frame_bytes = 4 * 3 * T * S * S * 2
    assert ledger.instances == 4 and ledger.frames_total == 4 * T
    assert ledger.frame_dtype == "float16"
    assert ledger.frame_bytes == frame_bytes
    assert ledger.hard_label_bytes == 4 * 8
    assert ledger.soft_label_bytes == 4 * K * 4
    assert ledger.total_tensor_bytes == frame_bytes + 32 + 160
    with tarfile.open(path) as tar:
        stored = sum(m.size for m in tar.getmembers())
    assert ledger.other_bytes == stored - ledger.total_tensor_bytes > 0
    assert ledger.archive_bytes == path.stat().st_size
    assert ledger.per_class_counts == (1, 1, 1, 1, 0, 0, 0, 0, 0, 0)
    rows = dict(ledger.rows())
    assert rows["frame bytes"] == frame_bytes and rows["instances per class"] == "0-1"
    as_dict = ledger.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["per_class_counts"] == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]


def test_ledger_of_a_set_not_yet_written():
    ledger = StorageLedger.measure(make_set(n=2), num_classes=K)
    assert (ledger.other_bytes, ledger.archive_bytes) == (0, 0)
    assert ledger.frame_bytes == 2 * 3 * T * S * S


# -- the condensed set -------------------------------------------------------------------------

def test_condensed_set_checks_types_and_freezes_sequences():
    cs = make_set(n=2, external_weights=["teacher.pt"])
    assert cs.external_weights == ("teacher.pt",)
    assert cs.per_class_counts() == (1, 1) and cs.per_class_counts(4) == (1, 1, 0, 0)
    with pytest.raises(VdcError):
        make_set(n=2, videos=[[0]])
    with pytest.raises(VdcError):
        make_set(n=2, external_data="imagenet")
    with pytest.raises(VdcError):
        MethodInfo("x", "magic")
    with pytest.raises(Exception):
        cs.labels = torch.zeros(2)       # frozen


def test_archive_errors_keep_their_code_across_processes():
    err = ArchiveError(Code.HASH_MISMATCH, "archive a.tar: member 'x'\nsha256 differs")
    assert str(err) == "archive a.tar: member 'x' sha256 differs"
    again = pickle.loads(pickle.dumps(err))
    assert again.code is Code.HASH_MISMATCH and str(again) == str(err)


def test_reads_gzip_archives_made_by_other_tools(tmp_path):
    # A gzip archive made by another tool (tarfile's own w:gz, which records name and mtime)
    # reads the same: the reader does not depend on our writer's canonical form.
    write(make_set(n=2), tmp_path / "a.tar")
    with tarfile.open(tmp_path / "a.tar") as src, \
            tarfile.open(tmp_path / "b.tar.gz", "w:gz") as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m))
    assert read_archive(tmp_path / "b.tar.gz").condensed.num_instances == 2
    assert gzip.decompress((tmp_path / "b.tar.gz").read_bytes())[:13] == b"manifest.json"
