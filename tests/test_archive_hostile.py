"""Hostile and malformed archives, built here byte by byte: each must be refused with its exact
code, a one-line message, and never any exception other than ArchiveError."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import os
import random
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import safetensors.torch
import torch

from vdcbench.archive import ArchiveError, ArchiveErrorCode, read_archive, write_archive
from vdcbench.archive.manifest import build_manifest
from vdcbench.archive.condensed import CondensedSet, MethodInfo
from vdcbench.protocol import load_protocol

Code = ArchiveErrorCode
PROTOCOL = load_protocol(1)
K, T, S = 10, 8, 56
WRITER_CODES = {Code.DESTINATION_EXISTS, Code.DESTINATION_UNWRITABLE}
COVERED: set[ArchiveErrorCode] = set()


def refuses(*codes: ArchiveErrorCode) -> Callable:
    """Marks the codes a test proves; ``test_every_reader_code_has_a_hostile_archive`` checks
    that together they cover the enum."""
    def mark(fn: Callable) -> Callable:
        COVERED.update(codes)
        return fn
    return mark


# -- building archives -------------------------------------------------------------------------

def make_set(n: int = 2, *, videos: torch.Tensor | None = None, labels=None, soft=None,
             strategy: str = "hard", dataset: str = "synthetic", track: str = "ipc1-t8",
             dtype: torch.dtype = torch.uint8) -> CondensedSet:
    g = torch.Generator().manual_seed(0)
    if videos is None:
        videos = (torch.randint(0, 256, (n, 3, T, S, S), dtype=torch.uint8, generator=g)
                  if dtype == torch.uint8 else torch.rand((n, 3, T, S, S), generator=g).to(dtype))
    labels = torch.arange(n, dtype=torch.int64) if labels is None else labels
    return CondensedSet(videos=videos, labels=labels, soft_labels=soft, label_strategy=strategy,
                        dataset=dataset, track=track, method=MethodInfo("forger", "selection"))


def forge(cs: CondensedSet | None = None, *, edit: Callable[[dict], None] | None = None,
          videos_bytes: bytes | None = None, labels_bytes: bytes | None = None,
          num_classes: int = K) -> dict[str, bytes]:
    """Members of an archive for ``cs`` with a self-consistent manifest (hashes and sizes match),
    bypassing the writer's budget checks; ``edit`` then changes the manifest at will."""
    cs = cs or make_set()
    if videos_bytes is None:
        videos_bytes = safetensors.torch.save({"videos": cs.videos.contiguous()})
    if labels_bytes is None:
        group = {"labels": cs.labels}
        if cs.soft_labels is not None:
            group["soft_labels"] = cs.soft_labels
        labels_bytes = safetensors.torch.save(group)
    members = {"videos.safetensors": videos_bytes, "labels.safetensors": labels_bytes}
    manifest = build_manifest(cs, protocol=PROTOCOL, num_classes=num_classes,
                              members={k: (hashlib.sha256(v).hexdigest(), len(v))
                                       for k, v in members.items()})
    if edit is not None:
        edit(manifest)
    return {"manifest.json": json.dumps(manifest).encode(), **members}


def entry(name: str, data: bytes = b"", *, kind: bytes = tarfile.REGTYPE,
          linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(data) if kind in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
    return info, data


def tar_bytes(members: dict[str, bytes] | list[tuple[tarfile.TarInfo, bytes]], *,
              gz: bool = False) -> bytes:
    entries = [entry(k, v) for k, v in members.items()] if isinstance(members, dict) else members
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if gz else raw


def put(tmp_path: Path, data: bytes, name: str = "sub.tar") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refused(path, code: ArchiveErrorCode, **kw) -> ArchiveError:
    with pytest.raises(ArchiveError) as caught:
        read_archive(path, **kw)
    err = caught.value
    assert err.code is code, f"expected {code}, got {err.code}: {err}"
    message = str(err)
    assert "\n" not in message and message.startswith(f"archive {path}:")
    return err


def valid_members() -> dict[str, bytes]:
    return forge()


def test_the_forger_makes_valid_archives(tmp_path):
    # Every hostile case below is one change away from this.
    assert read_archive(put(tmp_path, tar_bytes(valid_members()))).condensed.num_instances == 2
    assert read_archive(put(tmp_path, tar_bytes(valid_members(), gz=True), "s.tgz"))


# -- the file ----------------------------------------------------------------------------------

@refuses(Code.FILE_NOT_FOUND)
def test_missing_file(tmp_path):
    refused(tmp_path / "absent.tar", Code.FILE_NOT_FOUND)


@refuses(Code.NOT_A_FILE)
def test_directory_is_not_an_archive(tmp_path):
    refused(tmp_path, Code.NOT_A_FILE)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_not_an_archive_and_does_not_block(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    refused(tmp_path / "pipe", Code.NOT_A_FILE)


@refuses(Code.UNREADABLE)
def test_unreadable_file(tmp_path, monkeypatch):
    path = put(tmp_path, tar_bytes(valid_members()))

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    # Root reads anything, so the refusal is simulated where the OS would give it.
    monkeypatch.setattr(os, "open", denied)
    refused(path, Code.UNREADABLE)


# -- the container -----------------------------------------------------------------------------

@refuses(Code.NOT_A_TAR)
@pytest.mark.parametrize("content", [
    b"",
    b"hello, this is plainly text and not a tar archive\n" * 40,
    bytes(random.Random(7).randrange(256) for _ in range(3000)),
    b"PK\x03\x04" + b"\0" * 600,                       # a zip
    gzip.compress(b"not a tar inside a gzip" * 50, mtime=0),
    bz2.compress(b"x" * 2000),
], ids=["empty", "text", "random", "zip", "gzip-of-text", "bzip2"])
def test_not_a_tar(tmp_path, content):
    refused(put(tmp_path, content), Code.NOT_A_TAR)


@refuses(Code.BAD_COMPRESSION)
def test_gzip_with_a_bad_crc(tmp_path):
    raw = bytearray(tar_bytes(valid_members(), gz=True))
    raw[-8] ^= 0xFF                                      # the CRC32 in the gzip trailer
    refused(put(tmp_path, bytes(raw), "s.tar.gz"), Code.BAD_COMPRESSION)


def test_gzip_with_a_bad_header(tmp_path):
    raw = bytearray(tar_bytes(valid_members(), gz=True))
    raw[2] = 99                                          # compression method
    refused(put(tmp_path, bytes(raw), "s.tar.gz"), Code.BAD_COMPRESSION)


def test_gzip_with_corrupt_deflate_data(tmp_path):
    raw = bytearray(tar_bytes(valid_members(), gz=True))
    raw[10:400] = b"\xff" * 390
    with pytest.raises(ArchiveError) as err:
        read_archive(put(tmp_path, bytes(raw), "s.tar.gz"))
    assert err.value.code in (Code.BAD_COMPRESSION, Code.NOT_A_TAR)


@refuses(Code.TRUNCATED)
@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_plain_tar(tmp_path, cut):
    raw = tar_bytes(valid_members())
    refused(put(tmp_path, raw[: int(len(raw) * cut)]), Code.TRUNCATED)


def test_truncated_gzip_tar(tmp_path):
    raw = tar_bytes(valid_members(), gz=True)
    refused(put(tmp_path, raw[: len(raw) // 2], "s.tgz"), Code.TRUNCATED)


def test_tar_without_its_end_of_archive_marker(tmp_path):
    members = valid_members()
    raw = tar_bytes(members)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        last = tar.getmembers()[-1]
    end = last.offset_data + -(-last.size // 512) * 512
    refused(put(tmp_path, raw[:end]), Code.TRUNCATED)


@refuses(Code.CORRUPT_TAR)
def test_garbage_where_the_end_of_archive_marker_belongs(tmp_path):
    raw = tar_bytes(valid_members())
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        last = tar.getmembers()[-1]
    end = last.offset_data + -(-last.size // 512) * 512
    refused(put(tmp_path, raw[:end] + b"\x7f" * 1024), Code.CORRUPT_TAR)


@refuses(Code.EXPANSION_LIMIT)
def test_member_larger_than_the_track_allows(tmp_path):
    # The synthetic ipc1-t8 allowance is 4 x 3 MB of float32 frames plus slack: 15 MB exceeds it
    # (a plain tar, so the compression ratio stays at 1).
    members = forge(videos_bytes=bytes(15 << 20))       # the manifest agrees: only size is wrong
    err = refused(put(tmp_path, tar_bytes(members)), Code.EXPANSION_LIMIT)
    assert "synthetic/ipc1-t8" in str(err)


@refuses(Code.COMPRESSION_RATIO)
def test_tar_bomb(tmp_path):
    # 2 MiB is within what ipc1-t8 may hold (3 MB), but compresses about 1000:1.
    members = forge(videos_bytes=bytes(2 << 20))
    path = put(tmp_path, tar_bytes(members, gz=True), "bomb.tar.gz")
    assert path.stat().st_size < 20 << 10
    refused(path, Code.COMPRESSION_RATIO)


@refuses(Code.MANIFEST_NOT_FIRST)
@pytest.mark.parametrize("gz", [False, True], ids=["tar", "gzip"])
def test_bomb_before_the_manifest_is_refused_at_its_header(tmp_path, gz):
    # Issue 16 items 1-2: nothing is read before the manifest names the track's budget.
    members = forge(videos_bytes=bytes(8 << 20))
    bomb = [entry("videos.safetensors", members["videos.safetensors"]),
            entry("manifest.json", members["manifest.json"]),
            entry("labels.safetensors", members["labels.safetensors"])]
    err = refused(put(tmp_path, tar_bytes(bomb, gz=gz), "bomb.tgz"), Code.MANIFEST_NOT_FIRST)
    assert "'videos.safetensors'; manifest.json must be the first member" in str(err)


@pytest.mark.parametrize("first", ["labels.safetensors", "notes.txt"])
def test_manifest_last_is_refused(tmp_path, first):
    members = valid_members()
    entries = [entry(first, members.get(first, b"hi"))]
    entries += [entry(k, v) for k, v in members.items() if k != first]
    entries.append(entries.pop(1))                      # the manifest, now last
    refused(put(tmp_path, tar_bytes(entries)), Code.MANIFEST_NOT_FIRST)


def test_a_member_larger_than_the_track_allows_is_refused_before_its_data(tmp_path):
    # The manifest agrees with the member (1 GiB declared), but no ipc1-t8 archive needs it: the
    # reader refuses from the tar header, so even a gzip stream of 1 GiB costs nothing.
    members = valid_members()
    manifest = json.loads(members["manifest.json"])
    manifest["members"]["videos.safetensors"]["bytes"] = 1 << 30
    text = json.dumps(manifest).encode()
    head, _ = entry("manifest.json", text)
    info, _ = entry("videos.safetensors")
    info.size = 1 << 30
    raw = (head.tobuf(tarfile.GNU_FORMAT) + text + bytes(-len(text) % 512)
           + info.tobuf(tarfile.GNU_FORMAT) + bytes(4096))
    path = put(tmp_path, raw, "big.tar")
    err = refused(path, Code.EXPANSION_LIMIT)
    assert "no valid archive for synthetic/ipc1-t8 needs more than" in str(err)


def test_a_huge_extended_header_is_refused_without_reading_it(tmp_path):
    members = valid_members()
    info, data = entry("videos.safetensors", members["videos.safetensors"])
    info.pax_headers = {"comment": "x" * (9 << 20)}
    entries = [entry("manifest.json", members["manifest.json"]), (info, data),
               entry("labels.safetensors", members["labels.safetensors"])]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i, d in entries:
            tar.addfile(i, io.BytesIO(d))
    err = refused(put(tmp_path, buf.getvalue()), Code.CORRUPT_TAR)
    assert "extended header" in str(err)


# -- members -----------------------------------------------------------------------------------

def with_extra(*extra: tuple[tarfile.TarInfo, bytes]) -> list[tuple[tarfile.TarInfo, bytes]]:
    return [entry(k, v) for k, v in valid_members().items()] + list(extra)


@refuses(Code.LINK_MEMBER)
@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE], ids=["symlink", "hardlink"])
def test_links_are_refused(tmp_path, kind):
    members = valid_members()
    del members["labels.safetensors"]
    entries = [entry(k, v) for k, v in members.items()]
    entries.append(entry("labels.safetensors", kind=kind, linkname="/etc/passwd"))
    refused(put(tmp_path, tar_bytes(entries)), Code.LINK_MEMBER)


@refuses(Code.SPECIAL_MEMBER)
@pytest.mark.parametrize("kind", [tarfile.DIRTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE,
                                  tarfile.BLKTYPE], ids=["dir", "fifo", "chr", "blk"])
def test_special_members_are_refused(tmp_path, kind):
    refused(put(tmp_path, tar_bytes(with_extra(entry("extra", kind=kind))),), Code.SPECIAL_MEMBER)


@refuses(Code.ABSOLUTE_PATH)
@pytest.mark.parametrize("name", ["/manifest.json", "/tmp/evil", "C:/evil", "\\evil"])
def test_absolute_paths_are_refused(tmp_path, name):
    refused(put(tmp_path, tar_bytes(with_extra(entry(name, b"x")))), Code.ABSOLUTE_PATH)


@refuses(Code.PARENT_PATH)
@pytest.mark.parametrize("name", ["../manifest.json", "a/../../evil", "..\\evil", "x/.."])
def test_parent_paths_are_refused(tmp_path, name):
    refused(put(tmp_path, tar_bytes(with_extra(entry(name, b"x")))), Code.PARENT_PATH)


@refuses(Code.DUPLICATE_MEMBER)
@pytest.mark.parametrize("name", ["manifest.json", "videos.safetensors"])
def test_duplicate_members_are_refused(tmp_path, name):
    members = valid_members()
    refused(put(tmp_path, tar_bytes(with_extra(entry(name, members[name])))),
            Code.DUPLICATE_MEMBER)


@refuses(Code.UNEXPECTED_MEMBER)
@pytest.mark.parametrize("name", ["notes.txt", "./manifest.json", "model.pt"])
def test_unexpected_members_are_refused(tmp_path, name):
    err = refused(put(tmp_path, tar_bytes(with_extra(entry(name, b"hello")))),
                  Code.UNEXPECTED_MEMBER)
    assert repr(name) in str(err)


@refuses(Code.MISSING_MEMBER)
@pytest.mark.parametrize("name", ["manifest.json", "videos.safetensors", "labels.safetensors"])
def test_missing_members_are_refused(tmp_path, name):
    members = valid_members()
    del members[name]
    # Without its manifest, an archive starts with some other member.
    code = Code.MANIFEST_NOT_FIRST if name == "manifest.json" else Code.MISSING_MEMBER
    refused(put(tmp_path, tar_bytes(members)), code)


def test_empty_tar_is_missing_everything(tmp_path):
    refused(put(tmp_path, tar_bytes({})), Code.MISSING_MEMBER)


@refuses(Code.TOO_MANY_MEMBERS)
def test_too_many_members(tmp_path):
    flood = [entry(f"x{i}", b"") for i in range(PROTOCOL.archive.max_members + 1)]
    refused(put(tmp_path, tar_bytes(with_extra(*flood))), Code.TOO_MANY_MEMBERS)


@refuses(Code.HASH_MISMATCH)
def test_tampered_tensor_bytes(tmp_path):
    members = valid_members()
    videos = bytearray(members["videos.safetensors"])
    videos[-1] ^= 0x01
    members["videos.safetensors"] = bytes(videos)
    err = refused(put(tmp_path, tar_bytes(members)), Code.HASH_MISMATCH)
    assert "'videos.safetensors' sha256 does not match the manifest" in str(err)


@refuses(Code.SIZE_MISMATCH)
@pytest.mark.parametrize("tensors_order", ["videos-first", "labels-first"])
def test_member_size_differs_from_the_manifest(tmp_path, tensors_order):
    members = valid_members()
    members["labels.safetensors"] += b"\0" * 8
    if tensors_order == "labels-first":
        members = {"manifest.json": members.pop("manifest.json"),
                   "labels.safetensors": members.pop("labels.safetensors"), **members}
    refused(put(tmp_path, tar_bytes(members)), Code.SIZE_MISMATCH)


# -- the manifest ------------------------------------------------------------------------------

@refuses(Code.MANIFEST_TOO_LARGE)
def test_manifest_too_large(tmp_path):
    members = valid_members()
    members["manifest.json"] = b" " * (PROTOCOL.archive.max_manifest_bytes + 1)
    refused(put(tmp_path, tar_bytes(members)), Code.MANIFEST_TOO_LARGE)


@refuses(Code.MANIFEST_NOT_JSON)
@pytest.mark.parametrize("text", [
    b"{not json", b"\xff\xfe{}", b'{"format": NaN}', b'{"a": 1, "a": 2}', b"[" * 100_000,
], ids=["syntax", "not-utf8", "nan", "duplicate-key", "deep"])
def test_manifest_not_json(tmp_path, text):
    members = valid_members()
    members["manifest.json"] = text
    refused(put(tmp_path, tar_bytes(members)), Code.MANIFEST_NOT_JSON)


@refuses(Code.SCHEMA)
@pytest.mark.parametrize("edit", [
    lambda m: m.pop("members"),
    lambda m: m.update(format="something-else"),
    lambda m: m.update(format_version=2),
    lambda m: m.update(surprise=True),
    lambda m: m["method"].update(kind="magic"),
    lambda m: m["members"]["videos.safetensors"].update(sha256="XYZ"),
    lambda m: m["members"].update({"../evil": {"sha256": "0" * 64, "bytes": 1}}),
    lambda m: m["tensors"]["videos"].update(dtype="float64"),
    lambda m: m.update(num_classes=True),
    lambda m: m.update(track="bogus"),
], ids=["no-members", "format", "format-version", "extra-key", "kind", "sha", "member-name",
        "dtype", "bool-int", "track-pattern"])
def test_manifest_breaks_the_schema(tmp_path, edit):
    refused(put(tmp_path, tar_bytes(forge(edit=edit))), Code.SCHEMA)


def test_manifest_that_is_not_an_object(tmp_path):
    members = valid_members()
    members["manifest.json"] = b"[1, 2, 3]"
    refused(put(tmp_path, tar_bytes(members)), Code.SCHEMA)


@refuses(Code.UNKNOWN_PROTOCOL_VERSION)
def test_unknown_protocol_version(tmp_path):
    path = put(tmp_path, tar_bytes(forge(edit=lambda m: m["protocol"].update(version=99))))
    refused(path, Code.UNKNOWN_PROTOCOL_VERSION)


@refuses(Code.PROTOCOL_MISMATCH)
def test_protocol_hash_mismatch(tmp_path):
    path = put(tmp_path, tar_bytes(forge(edit=lambda m: m["protocol"].update(sha256="0" * 64))))
    refused(path, Code.PROTOCOL_MISMATCH)
    refused(path, Code.PROTOCOL_MISMATCH, protocol=PROTOCOL)


def test_protocol_version_differs_from_the_one_asked_for(tmp_path):
    path = put(tmp_path, tar_bytes(forge(edit=lambda m: m["protocol"].update(version=2))))
    refused(path, Code.PROTOCOL_MISMATCH, protocol=PROTOCOL)


@refuses(Code.UNKNOWN_DATASET)
def test_unknown_dataset(tmp_path):
    refused(put(tmp_path, tar_bytes(forge(edit=lambda m: m.update(dataset="imagenet")))),
            Code.UNKNOWN_DATASET)


@refuses(Code.UNKNOWN_TRACK)
def test_unknown_track(tmp_path):
    refused(put(tmp_path, tar_bytes(forge(edit=lambda m: m.update(track="ipc3-t8")))),
            Code.UNKNOWN_TRACK)


@refuses(Code.NUM_CLASSES_MISMATCH)
def test_class_count_differs_from_the_protocol(tmp_path):
    refused(put(tmp_path, tar_bytes(forge(edit=lambda m: m.update(num_classes=11)))),
            Code.NUM_CLASSES_MISMATCH)


# -- tensors -----------------------------------------------------------------------------------

def st_header(header: dict | str, payload: bytes = b"") -> bytes:
    """A safetensors file from its parts; a str header is used verbatim."""
    text = (header if isinstance(header, str) else json.dumps(header)).encode()
    return len(text).to_bytes(8, "little") + text + payload


U8_PAIR = {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}


@refuses(Code.BAD_TENSOR_FILE)
@pytest.mark.parametrize("videos_bytes", [
    b"",
    b"\x07\x00",
    (2 ** 63).to_bytes(8, "little") + b"{}",
    st_header({"videos": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}})[:-1] + b"\xff",
    b"\x05\0\0\0\0\0\0\0[1,2]",
    st_header({"videos": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}, b"ab"),
    st_header({"videos": {"dtype": "U8", "shape": [4], "data_offsets": [0, 2]}}, b"abcd"),
    st_header({"videos": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
               "extra": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}}, b"abcd"),
    st_header({"videos": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}}, b"abcd"),
    st_header({"videos": {"dtype": "U8", "shape": [-2], "data_offsets": [0, 2]}}, b"ab"),
    st_header({"movies": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}, b"ab"),
    st_header('{"videos": %s, "videos": %s}' % ((json.dumps(U8_PAIR),) * 2), b"ab"),
    safetensors.torch.save({"x": torch.zeros(1)})[:-2],
], ids=["empty", "short", "huge-header", "bad-utf8", "array-header", "short-data", "span",
        "extra-tensor", "gap", "negative-dim", "wrong-name", "duplicate-key", "cut"])
def test_malformed_safetensors(tmp_path, videos_bytes):
    refused(put(tmp_path, tar_bytes(forge(videos_bytes=videos_bytes))), Code.BAD_TENSOR_FILE)


@refuses(Code.BAD_DTYPE)
def test_tensor_dtype_outside_the_contract(tmp_path):
    # Stored as float64, declared float32: the safetensors header gives it away.
    cs = make_set(dtype=torch.float32)
    videos_bytes = safetensors.torch.save({"videos": cs.videos.double()})
    refused(put(tmp_path, tar_bytes(forge(cs, videos_bytes=videos_bytes))), Code.BAD_DTYPE)


def test_integer_videos_are_refused(tmp_path):
    # The schema's dtype enum for videos leaves out int64, as the reader does.
    cs = make_set(videos=torch.zeros((2, 3, T, S, S), dtype=torch.int64))
    refused(put(tmp_path, tar_bytes(forge(cs))), Code.SCHEMA)
    manifest = forge(cs, edit=lambda m: m["tensors"]["videos"].update(dtype="uint8"))
    refused(put(tmp_path, tar_bytes(manifest)), Code.BAD_DTYPE)   # declared uint8, stored I64


@pytest.mark.parametrize("tensor,dtype", [("labels", "float32"), ("soft_labels", "int64")])
def test_the_schema_refuses_label_dtypes_the_reader_refuses(tmp_path, tensor, dtype):
    soft = torch.zeros((2, K)) if tensor == "soft_labels" else None
    cs = make_set(soft=soft, strategy="soft" if soft is not None else "hard")
    edit = lambda m: m["tensors"][tensor].update(dtype=dtype)     # noqa: E731
    refused(put(tmp_path, tar_bytes(forge(cs, edit=edit))), Code.SCHEMA)


def test_dtype_differs_from_the_manifest(tmp_path):
    members = forge(edit=lambda m: m["tensors"]["videos"].update(dtype="float16"))
    refused(put(tmp_path, tar_bytes(members)), Code.BAD_DTYPE)


def test_int32_labels_are_refused(tmp_path):
    cs = make_set()
    labels_bytes = safetensors.torch.save({"labels": cs.labels.int()})
    refused(put(tmp_path, tar_bytes(forge(cs, labels_bytes=labels_bytes))), Code.BAD_DTYPE)


@refuses(Code.BAD_SHAPE)
def test_single_channel_videos(tmp_path):
    cs = make_set(videos=torch.zeros((2, 1, T, S, S), dtype=torch.uint8))
    refused(put(tmp_path, tar_bytes(forge(cs))), Code.BAD_SHAPE)


def test_shape_differs_from_the_manifest(tmp_path):
    members = forge(edit=lambda m: m["tensors"]["videos"].update(shape=[1, 3, T, S, S]))
    refused(put(tmp_path, tar_bytes(members)), Code.BAD_SHAPE)


def test_label_count_differs_from_video_count(tmp_path):
    refused(put(tmp_path, tar_bytes(forge(make_set(labels=torch.tensor([0, 1, 2]))))),
            Code.BAD_SHAPE)


def test_four_dimensional_videos(tmp_path):
    cs = make_set(videos=torch.zeros((2, 3, T, S), dtype=torch.uint8))
    refused(put(tmp_path, tar_bytes(forge(cs))), Code.SCHEMA)         # the schema says 5 dims
    manifest = forge(cs, edit=lambda m: m["tensors"]["videos"].update(shape=[2, 3, T, S, 1]))
    refused(put(tmp_path, tar_bytes(manifest)), Code.BAD_SHAPE)       # the header says 4


@refuses(Code.FLOAT_RANGE)
@pytest.mark.parametrize("scale,shown", [(255.0, "255"), (-3.0, "-3")])
def test_float_frames_outside_pixel_scale(tmp_path, scale, shown):
    # Issue 16 item 3: a writer that forgot to divide by 255 (or normalised by mean and std).
    videos = torch.rand((2, 3, T, S, S))
    videos[1, 0, 0, 0, 0] = scale
    err = refused(put(tmp_path, tar_bytes(forge(make_set(videos=videos)))), Code.FLOAT_RANGE)
    assert f"float frames reach {shown}: store pixel scale [0, 1]" in str(err)
    with pytest.raises(ArchiveError) as caught:                   # nor can it be written
        write_archive(make_set(videos=videos), tmp_path / "w.tar", protocol=PROTOCOL)
    assert caught.value.code is Code.FLOAT_RANGE


@pytest.mark.parametrize("low,high", [(-1.0, 2.0), (-0.4, 1.3)])
def test_unclamped_synthesised_frames_within_the_tolerance_are_accepted(tmp_path, low, high):
    videos = torch.rand((2, 3, T, S, S), dtype=torch.float32).to(torch.float16)
    videos[0, 0, 0, 0, 0], videos[1, 2, 7, 55, 55] = low, high
    assert read_archive(put(tmp_path, tar_bytes(forge(make_set(videos=videos)))))


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity", "1" + "0" * 400])
def test_non_finite_numbers_in_the_manifest(tmp_path, number):
    # Issue 16 item 4: Python would read 1e400 as infinity.
    members = valid_members()
    text = members["manifest.json"].decode()
    members["manifest.json"] = text.replace('"seed": null', f'"seed": null, "wall_seconds": '
                                            f'{number}').encode()
    assert members["manifest.json"] != text.encode()
    refused(put(tmp_path, tar_bytes(members)), Code.MANIFEST_NOT_JSON)


@refuses(Code.NON_FINITE)
@pytest.mark.parametrize("value,dtype", [(float("nan"), torch.float32),
                                         (float("inf"), torch.float16),
                                         (float("-inf"), torch.float32)])
def test_non_finite_frames(tmp_path, value, dtype):
    videos = torch.rand((2, 3, T, S, S)).to(dtype)
    videos[1, 2, 3, 4, 5] = value
    refused(put(tmp_path, tar_bytes(forge(make_set(videos=videos)))), Code.NON_FINITE)


def test_non_finite_soft_labels(tmp_path):
    soft = torch.zeros((2, K))
    soft[0, 3] = float("nan")
    refused(put(tmp_path, tar_bytes(forge(make_set(soft=soft, strategy="soft")))),
            Code.NON_FINITE)


@refuses(Code.LABEL_OUT_OF_RANGE)
@pytest.mark.parametrize("bad", [K, -1, 2 ** 40])
def test_labels_out_of_range(tmp_path, bad):
    refused(put(tmp_path, tar_bytes(forge(make_set(labels=torch.tensor([0, bad]))))),
            Code.LABEL_OUT_OF_RANGE)


@refuses(Code.SOFT_LABEL_CLASSES)
@pytest.mark.parametrize("width", [K - 1, K + 1])
def test_soft_labels_with_the_wrong_class_count(tmp_path, width):
    cs = make_set(soft=torch.zeros((2, width)), strategy="soft")
    refused(put(tmp_path, tar_bytes(forge(cs))), Code.SOFT_LABEL_CLASSES)


@refuses(Code.LABEL_STRATEGY)
@pytest.mark.parametrize("strategy,soft", [("soft", None), ("hard", torch.zeros((2, K))),
                                           ("multi-sl", torch.zeros((2, K))), ("mixup", None)])
def test_label_strategy_inconsistent_or_unknown(tmp_path, strategy, soft):
    refused(put(tmp_path, tar_bytes(forge(make_set(soft=soft, strategy=strategy)))),
            Code.LABEL_STRATEGY)


# -- the budget --------------------------------------------------------------------------------

@refuses(Code.BUDGET_IPC)
def test_too_many_instances_of_one_class(tmp_path):
    err = refused(put(tmp_path, tar_bytes(forge(make_set(labels=torch.tensor([3, 3]))))),
                  Code.BUDGET_IPC)
    assert "class 3 has 2 instances" in str(err)


def test_more_instances_than_the_track_holds(tmp_path):
    labels = torch.arange(K + 1) % K
    refused(put(tmp_path, tar_bytes(forge(make_set(n=K + 1, labels=labels)))), Code.BUDGET_IPC)


@refuses(Code.BUDGET_FRAMES)
@pytest.mark.parametrize("frames", [4, 16])
def test_wrong_number_of_frames(tmp_path, frames):
    cs = make_set(videos=torch.zeros((2, 3, frames, S, S), dtype=torch.uint8))
    refused(put(tmp_path, tar_bytes(forge(cs))), Code.BUDGET_FRAMES)


@refuses(Code.BUDGET_RESOLUTION)
@pytest.mark.parametrize("hw", [(64, 64), (56, 48)])
def test_wrong_resolution(tmp_path, hw):
    cs = make_set(videos=torch.zeros((2, 3, T, *hw), dtype=torch.uint8))
    refused(put(tmp_path, tar_bytes(forge(cs))), Code.BUDGET_RESOLUTION)


# -- coverage and fuzzing ----------------------------------------------------------------------

def test_every_reader_code_has_a_hostile_archive():
    missing = set(ArchiveErrorCode) - WRITER_CODES - COVERED
    assert not missing, f"no hostile archive for {sorted(c.name for c in missing)}"


@pytest.mark.parametrize("gz", [False, True], ids=["tar", "gzip"])
def test_mutated_archives_raise_only_archive_errors(tmp_path, gz):
    # Byte flips and cuts anywhere in a small valid archive: each read either succeeds or
    # refuses with an ArchiveError; anything else escaping is a bug.
    path = tmp_path / ("a.tar.gz" if gz else "a.tar")
    write_archive(make_set(n=1), path, protocol=PROTOCOL)
    original = path.read_bytes()
    rng = random.Random(20261128 + gz)
    for _ in range(40):
        data = bytearray(original)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        else:
            # Bias towards the headers, where the structure lives.
            span = 3072 if rng.random() < 0.7 else len(data)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(min(span, len(data)))] = rng.randrange(256)
        path.write_bytes(bytes(data))
        try:
            read_archive(path)
        except ArchiveError as err:
            assert "\n" not in str(err)
