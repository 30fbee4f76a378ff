"""submission.tar -> CondensedSet, treating every archive as hostile.

Members are read from the tar stream into memory, never extracted. Every byte the decompressor
yields (tar headers, skipped members, padding included) is counted by ``_MeteredStream``, which
refuses as soon as the count passes the smaller of two ceilings: ``max_compression_ratio`` x the
file's size, and the track's allowance (``max_expansion`` x its float32 frame and label budget).

``manifest.json`` must be the first member (``MANIFEST_NOT_FIRST`` otherwise), so the track is
known before a tensor byte is read: until then only the manifest's 1 MiB and tar structure may
pass. Memory is bounded by the declared track, whatever the upload (``memory_bound``):

    peak <= F + L + max_manifest_bytes + WORKING_MEMORY       (above the process's baseline)

with F = 8 + 64 KiB + IPC x classes x 3 x T x H x W x 4 (the largest valid videos member: the
frame budget as float32 plus its safetensors header), L = 8 + 64 KiB + IPC x classes x
(8 + 4 x classes) (the largest valid labels member) and WORKING_MEMORY = 128 MiB (read chunks,
tar and gzip state, the parsed manifest, one instance of the value checks). A tensor member
larger than its F or L is refused from its tar header, before its data is read; the members are
read into one buffer each, and the tensors are views of those buffers, never copies. The bound
is 132 MiB for synthetic ipc1-t8 and 1.26 GiB for UCF101 ipc10-t8, the largest track of protocol
v1; ``protocol/FORMAT.md`` states the same figure for writers, and
``tests/test_archive_memory.py`` holds ``vdcbench validate`` under it on a 1.5 GiB member.

Every failure leaves as an ``ArchiveError`` with an ``ArchiveErrorCode``; any other exception
escaping ``read_archive`` is a bug.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import re
import stat
import sys
import tarfile
import zlib
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import torch

from vdcbench.archive.errors import ArchiveError, ArchiveErrorCode
from vdcbench.archive.ledger import StorageLedger, budget_track, check_budget
from vdcbench.archive.manifest import (LABELS_MEMBER, MANIFEST_MEMBER, MEMBERS, SAFETENSORS_DTYPES,
                                       TENSOR_MEMBERS, VIDEOS_MEMBER, Manifest, parse_manifest,
                                       reject_duplicate_keys)
from vdcbench.archive.condensed import CondensedSet
from vdcbench.core.errors import VdcError
from vdcbench.protocol import ArchiveLimits, Protocol, Track, load_protocol

Code = ArchiveErrorCode

# Tar headers, padding and safetensors headers on top of the tensor payloads; far above what
# three members need, far below anything that matters for memory.
STRUCTURE_ALLOWANCE = 1 << 20
# A safetensors header for the two or three tensors of an archive is a few hundred bytes.
MAX_SAFETENSORS_HEADER = 64 << 10
# Also the largest single read: tarfile reads a pax or GNU long-name header whole, so a larger
# request is a header claiming more than any archive needs.
READ_CHUNK = 8 << 20
# What the reader holds besides the members' buffers: a few read chunks, gzip and tar state, the
# parsed manifest (Python objects of up to 1 MiB of JSON) and one instance under value checks.
WORKING_MEMORY = 128 << 20
HASH_CHUNK = 4 << 20
GZIP_MAGIC = b"\x1f\x8b"
OTHER_COMPRESSIONS = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
BLOCK = tarfile.BLOCKSIZE
EXPECTED_TENSORS = {VIDEOS_MEMBER: ({"videos"}, set()),
                    LABELS_MEMBER: ({"labels"}, {"soft_labels"})}
_ITEM_BYTES = {"uint8": 1, "float16": 2, "float32": 4, "int64": 8}
_TORCH_DTYPES = {"uint8": torch.uint8, "float16": torch.float16, "float32": torch.float32,
                 "int64": torch.int64}
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class LoadedArchive:
    condensed: CondensedSet
    manifest: Manifest
    sha256: str               # of the archive file's bytes
    ledger: StorageLedger
    track: Track
    protocol: Protocol        # the one the manifest names, resolved and hash-checked


def read_archive(path: str | os.PathLike[str], *,
                 protocol: Protocol | None = None) -> LoadedArchive:
    """Read, verify and budget-check an archive. ``protocol=None``: use the protocol version the
    manifest names (an unknown version is refused)."""
    label = f"archive {os.fspath(path)}"
    raw = _open_raw(os.fspath(path), label)
    try:
        size, digest, head = _hash_file(raw, label)
        return _Reading(raw, label=label, file_bytes=size, sha256=digest,
                        protocol=protocol).run(head)
    finally:
        raw.close()


def _open_raw(path: str, label: str) -> BinaryIO:
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ArchiveError(Code.FILE_NOT_FOUND, f"{label}: no such file") from None
    except IsADirectoryError:
        raise ArchiveError(Code.NOT_A_FILE,
                           f"{label}: is a directory, not an archive file") from None
    except OSError as err:
        raise ArchiveError(Code.UNREADABLE,
                           f"{label}: cannot open ({err.strerror or err})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise ArchiveError(Code.NOT_A_FILE, f"{label}: is {kind}, not an archive file")
    return os.fdopen(fd, "rb")


def _hash_file(raw: BinaryIO, label: str) -> tuple[int, str, bytes]:
    """Size, sha256 and first bytes (for sniffing the compression) of the open file."""
    # Hashed through the same open descriptor that is parsed next: a writer that replaces the
    # path (os.replace, as ours does) cannot swap the bytes between hashing and parsing.
    sha = hashlib.sha256()
    size = 0
    head = b""
    try:
        while chunk := raw.read(HASH_CHUNK):
            head = head or chunk[:8]
            sha.update(chunk)
            size += len(chunk)
        raw.seek(0)
    except OSError as err:
        raise ArchiveError(Code.UNREADABLE,
                           f"{label}: cannot read ({err.strerror or err})") from None
    return size, sha.hexdigest(), head


def expansion_allowance(track: Track, limits: ArchiveLimits) -> int:
    """Decompressed bytes an archive for ``track`` may hold: ``max_expansion`` x (the track's
    frame budget as float32 + its labels as int64 hard and float32 soft), plus the manifest and
    container structure."""
    n = track.max_instances
    frames = n * 3 * track.frames * track.height * track.width * 4
    labels = n * (8 + 4 * track.num_classes)
    return (limits.max_expansion * (frames + labels) + limits.max_manifest_bytes
            + STRUCTURE_ALLOWANCE)


def member_limit(track: Track, member: str) -> int:
    """The largest ``member`` a valid archive for ``track`` can hold: its full instance budget at
    the widest dtype (float32 frames; int64 labels and float32 soft labels), plus the largest
    safetensors header the reader accepts."""
    n = track.max_instances
    payload = (n * 3 * track.frames * track.height * track.width * 4 if member == VIDEOS_MEMBER
               else n * (8 + 4 * track.num_classes))
    return 8 + MAX_SAFETENSORS_HEADER + payload


def memory_bound(track: Track, limits: ArchiveLimits) -> int:
    """Bytes ``read_archive`` holds at its peak, above the process's baseline, for any archive
    whose manifest declares ``track`` (see the module docstring)."""
    return (member_limit(track, VIDEOS_MEMBER) + member_limit(track, LABELS_MEMBER)
            + limits.max_manifest_bytes + WORKING_MEMORY)


class _MeteredStream:
    """The decompressed tar stream, as the seekable file object ``tarfile`` wants, refusing as
    soon as its position passes a ceiling. Counting positions (not trusting header sizes) covers
    reads and seeks alike: a forward seek in gzip data decompresses everything it skips."""

    def __init__(self, source: BinaryIO, *, label: str, file_bytes: int, compressed: bool,
                 ratio: int, allowance: int, allowance_reason: str):
        self._source = source
        self._label = label
        self._file_bytes = file_bytes
        self._compressed = compressed
        self._ratio = ratio
        self._ratio_cap = ratio * max(file_bytes, 1)
        self._pos = 0
        self.allowance = allowance
        self.allowance_reason = allowance_reason
        # The last read, kept so the end of the archive can be inspected without seeking back
        # (a backward seek in gzip data restarts decompression from the beginning).
        self.last_read_at = -1
        self.last_read = b""

    def set_allowance(self, allowance: int, reason: str) -> None:
        self.allowance, self.allowance_reason = allowance, reason
        self._charge(self._pos)

    def _ceiling(self) -> int:
        return min(self._ratio_cap, self.allowance)

    def _charge(self, position: int) -> None:
        if position <= self._ceiling():
            return
        if self._ratio_cap <= self.allowance:
            raise ArchiveError(Code.COMPRESSION_RATIO,
                               f"{self._label}: decompresses to more than {self._ratio}x its "
                               f"{self._file_bytes} bytes (a compression bomb?)")
        raise ArchiveError(Code.EXPANSION_LIMIT,
                           f"{self._label}: contents exceed {self.allowance} bytes, "
                           f"{self.allowance_reason}")

    def _guard(self, call, *args):
        try:
            return call(*args)
        except EOFError:
            raise ArchiveError(Code.TRUNCATED, f"{self._label}: compressed data ends "
                                               "unexpectedly (truncated?)") from None
        except (gzip.BadGzipFile, zlib.error) as err:
            raise ArchiveError(Code.BAD_COMPRESSION,
                               f"{self._label}: corrupt gzip data ({err})") from None
        except OSError as err:
            raise ArchiveError(Code.UNREADABLE, f"{self._label}: cannot read ({err})") from None

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            offset += self._pos
        elif whence != os.SEEK_SET:
            raise ArchiveError(Code.CORRUPT_TAR, f"{self._label}: unsupported seek while reading")
        if offset < 0:
            raise ArchiveError(Code.CORRUPT_TAR, f"{self._label}: negative offset in tar headers")
        if not self._compressed and offset > self._file_bytes:
            raise ArchiveError(Code.TRUNCATED,
                               f"{self._label}: tar headers point past the end of the file "
                               f"(offset {offset} of {self._file_bytes} bytes; truncated?)")
        # Charged before seeking: for gzip, seeking is decompressing.
        self._charge(offset)
        self._guard(self._source.seek, offset)
        self._pos = offset
        return offset

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > READ_CHUNK:
            # Only tarfile asks for more, for an extended (pax, GNU long-name) header it would
            # hold whole: no archive needs one this large.
            raise ArchiveError(Code.CORRUPT_TAR,
                               f"{self._label}: a tar extended header claims "
                               f"{'all remaining' if size is None or size < 0 else size} bytes "
                               f"(more than {READ_CHUNK})")
        room = self._ceiling() - self._pos
        # One byte beyond the ceiling is enough to prove it is crossed, without decompressing
        # (or allocating) whatever a header claims.
        want = min(size, room + 1)
        data = self._guard(self._source.read, max(want, 0))
        self.last_read_at, self.last_read = self._pos, data
        self._pos += len(data)
        self._charge(self._pos)
        return data

    def check_ahead(self, end: int) -> None:
        """Refuse now if bytes up to ``end`` would pass a ceiling (a member's claimed size)."""
        if not self._compressed and end > self._file_bytes:
            raise ArchiveError(Code.TRUNCATED,
                               f"{self._label}: a member runs past the end of the file "
                               f"({end} > {self._file_bytes} bytes; truncated?)")
        self._charge(end)

    def drain(self) -> None:
        while self.read(READ_CHUNK):
            pass


@dataclass
class _Member:
    """A tensor member as read: its safetensors framing (length and JSON header, when the length
    is plausible) and the tensor data in one buffer that the loaded tensors share."""

    head: bytes
    body: bytearray
    sha256: str

    @property
    def size(self) -> int:
        return len(self.head) + len(self.body)


@dataclass
class _Reading:
    raw: BinaryIO
    label: str
    file_bytes: int
    sha256: str
    protocol: Protocol | None
    limits: ArchiveLimits | None = None      # the gate protocol's, then the manifest's
    stream: _MeteredStream | None = None
    members: dict[str, _Member] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    unexpected: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    manifest_bytes: int = 0
    resolved: Protocol | None = None
    track: Track | None = None

    def refuse(self, code: ArchiveErrorCode, detail: str) -> ArchiveError:
        return ArchiveError(code, f"{self.label}: {detail}")

    # -- the container -------------------------------------------------------------------------

    def run(self, head: bytes) -> LoadedArchive:
        gate = self.protocol if self.protocol is not None else load_protocol()
        self.limits = gate.archive
        compressed = head.startswith(GZIP_MAGIC)
        for magic, name in OTHER_COMPRESSIONS.items():
            if head.startswith(magic):
                raise self.refuse(Code.NOT_A_TAR, f"is {name}-compressed; only plain tar and gzip "
                                                  "tar are accepted")
        source: BinaryIO = gzip.GzipFile(fileobj=self.raw, mode="rb") if compressed else self.raw
        # Until the manifest names the track, only the manifest and tar structure may pass.
        self.stream = _MeteredStream(
            source, label=self.label, file_bytes=self.file_bytes, compressed=compressed,
            ratio=self.limits.max_compression_ratio,
            allowance=self.limits.max_manifest_bytes + STRUCTURE_ALLOWANCE,
            allowance_reason=f"the most allowed before {MANIFEST_MEMBER} is read")
        try:
            self._scan(compressed)
        except tarfile.ReadError as err:
            raise self._tar_error(err) from None
        except (tarfile.TarError, ValueError, OverflowError, UnicodeError) as err:
            raise self.refuse(Code.CORRUPT_TAR, f"corrupt tar structure ({err})") from None
        return self._assemble()

    def _tar_error(self, err: tarfile.ReadError) -> ArchiveError:
        text = str(err)
        if "unexpected end of data" in text:
            return self.refuse(Code.TRUNCATED, "a member's data ends early (truncated?)")
        if not self.seen:
            return self.refuse(Code.NOT_A_TAR, f"is not a tar archive ({text})")
        return self.refuse(Code.CORRUPT_TAR, f"corrupt tar header after {len(self.seen)} "
                                             f"member(s) ({text})")

    def _scan(self, compressed: bool) -> None:
        tar = tarfile.TarFile(fileobj=self.stream, mode="r")
        while (member := tar.next()) is not None:
            self._admit(member)
            if member.name == MANIFEST_MEMBER:
                self._take_manifest(tar, member)
            elif member.name in MEMBERS:
                self._take_tensors(tar, member)
        self._check_end(tar.offset)
        if compressed:
            # Verifies the gzip trailer (CRC, length) and refuses data hidden after the tar.
            self.stream.drain()
        if self.unexpected:
            raise self.refuse(Code.UNEXPECTED_MEMBER,
                              f"unexpected member {self.unexpected[0]!r} (an archive holds exactly "
                              f"{', '.join(MEMBERS)})")
        if self.manifest is None:
            raise self.refuse(Code.MISSING_MEMBER, f"member {MANIFEST_MEMBER!r} is missing")
        for name in TENSOR_MEMBERS:
            if name not in self.members:
                raise self.refuse(Code.MISSING_MEMBER, f"member {name!r} is missing")

    def _admit(self, member: tarfile.TarInfo) -> None:
        """Header checks, before a byte of the member's data is read."""
        name = member.name
        if len(self.seen) + 1 > self.limits.max_members:
            raise self.refuse(Code.TOO_MANY_MEMBERS,
                              f"has more than {self.limits.max_members} members")
        if name.startswith(("/", "\\")) or _DRIVE.match(name):
            raise self.refuse(Code.ABSOLUTE_PATH, f"member {name!r} has an absolute path")
        if ".." in re.split(r"[/\\]", name):
            raise self.refuse(Code.PARENT_PATH, f"member {name!r} has a '..' path component")
        if member.issym() or member.islnk():
            raise self.refuse(Code.LINK_MEMBER, f"member {name!r} is a link to {member.linkname!r}")
        if not member.isreg() or member.issparse():
            raise self.refuse(Code.SPECIAL_MEMBER,
                              f"member {name!r} is a {_kind(member)}, not a regular file")
        if not self.seen and name != MANIFEST_MEMBER:
            # The manifest names the track, and with it how much may be read: nothing is read
            # before it, so a large member ahead of it cannot cost memory.
            raise self.refuse(Code.MANIFEST_NOT_FIRST,
                              f"first member is {name!r}; {MANIFEST_MEMBER} must be the first "
                              "member")
        if name in self.seen:
            raise self.refuse(Code.DUPLICATE_MEMBER, f"member {name!r} appears more than once")
        if member.size < 0:
            raise self.refuse(Code.CORRUPT_TAR, f"member {name!r} has a negative size")
        self.seen.add(name)
        # Unexpected names are reported after the scan (their data skipped, though still
        # counted), so that a flood of members is reported as such, not by its first name.
        if name not in MEMBERS:
            self.unexpected.append(name)

    def _take_manifest(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        if member.size > self.limits.max_manifest_bytes:
            raise self.refuse(Code.MANIFEST_TOO_LARGE,
                              f"{MANIFEST_MEMBER} is {member.size} bytes; the limit is "
                              f"{self.limits.max_manifest_bytes}")
        self.stream.check_ahead(member.offset_data + member.size)
        fh = tar.extractfile(member)
        data = self._read_exact(fh, member.name, member.size)
        self.manifest_bytes = member.size
        self._accept_manifest(data)

    def _take_tensors(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name, size = member.name, member.size
        limit = member_limit(self.track, name)
        if size > limit:
            raise self.refuse(Code.EXPANSION_LIMIT,
                              f"member {name!r} is {size} bytes; no valid archive for "
                              f"{self.track.dataset.name}/{self.track.id} needs more than {limit}")
        self._check_size(name, size)
        self.stream.check_ahead(member.offset_data + size)
        fh = tar.extractfile(member)
        sha = hashlib.sha256()
        head = self._read_exact(fh, name, min(size, 8))
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if 0 <= length <= min(MAX_SAFETENSORS_HEADER, size - 8):
            head += self._read_exact(fh, name, length)
        sha.update(head)
        # One buffer of the member's exact (already bounded) size, filled in place: the tensors
        # become views of it, so the data is held once.
        body = bytearray(size - len(head))
        view, position = memoryview(body), 0
        while position < len(body):
            got = fh.readinto(view[position:position + READ_CHUNK])
            if not got:
                raise self.refuse(Code.TRUNCATED, f"member {name!r} ends early (truncated?)")
            sha.update(view[position:position + got])
            position += got
        view.release()
        self.members[name] = _Member(head=head, body=body, sha256=sha.hexdigest())

    def _read_exact(self, fh: BinaryIO, name: str, size: int) -> bytes:
        chunks, remaining = [], size
        while remaining:
            chunk = fh.read(min(remaining, READ_CHUNK))
            if not chunk:
                raise self.refuse(Code.TRUNCATED, f"member {name!r} ends early (truncated?)")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _check_end(self, offset: int) -> None:
        # tarfile ends quietly at a short or invalid header; only an all-zero block is the
        # end-of-archive marker our writer (and every tar tool) puts there.
        block = self.stream.last_read if self.stream.last_read_at == offset else b""
        if len(block) < BLOCK:
            raise self.refuse(Code.TRUNCATED, f"ends at byte {offset} without the end-of-archive "
                                              "marker (truncated?)")
        if block.count(0) != BLOCK:
            raise self.refuse(Code.CORRUPT_TAR, f"invalid tar header at byte {offset}")

    # -- the manifest --------------------------------------------------------------------------

    def _accept_manifest(self, data: bytes) -> None:
        manifest = parse_manifest(data, subject=self.label)
        version = manifest["protocol"]["version"]
        if self.protocol is not None:
            if version != self.protocol.version:
                raise self.refuse(Code.PROTOCOL_MISMATCH,
                                  f"was made under protocol v{version}; reading under "
                                  f"v{self.protocol.version}")
            protocol = self.protocol
        else:
            try:
                protocol = load_protocol(version)
            except VdcError as err:
                raise self.refuse(Code.UNKNOWN_PROTOCOL_VERSION, str(err)) from None
        if manifest["protocol"]["sha256"] != protocol.sha256:
            raise self.refuse(Code.PROTOCOL_MISMATCH,
                              f"names protocol v{version} with sha256 "
                              f"{manifest['protocol']['sha256'][:12]}, but this vdcbench's "
                              f"v{version} is {protocol.short_hash}")
        track = budget_track(protocol, manifest["dataset"], manifest["track"],
                             manifest["num_classes"], subject=self.label)
        self.manifest, self.resolved, self.track = manifest, protocol, track
        self.limits = protocol.archive
        self.stream.set_allowance(
            expansion_allowance(track, protocol.archive),
            f"{protocol.archive.max_expansion}x the float32 budget of "
            f"{track.dataset.name}/{track.id}")

    def _check_size(self, name: str, size: int) -> None:
        declared = self.manifest["members"][name]["bytes"]
        if size != declared:
            raise self.refuse(Code.SIZE_MISMATCH, f"member {name!r} is {size} bytes; the manifest "
                                                  f"says {declared}")

    # -- the tensors ---------------------------------------------------------------------------

    def _assemble(self) -> LoadedArchive:
        manifest, protocol, track = self.manifest, self.resolved, self.track
        for name in TENSOR_MEMBERS:
            if self.members[name].sha256 != manifest["members"][name]["sha256"]:
                raise self.refuse(Code.HASH_MISMATCH,
                                  f"member {name!r} sha256 does not match the manifest")
        tensors: dict[str, torch.Tensor] = {}
        for name in TENSOR_MEMBERS:
            tensors.update(self._load_tensors(name, self.members[name]))
        typed = Manifest.from_dict(manifest)
        cs = CondensedSet(
            videos=tensors["videos"],
            labels=tensors["labels"],
            soft_labels=tensors.get("soft_labels"),
            label_strategy=typed.label_strategy,
            dataset=typed.dataset,
            track=typed.track,
            method=typed.method,
            external_data=typed.external_data,
            external_weights=typed.external_weights,
        )
        check_budget(cs, track, protocol, subject=self.label)
        stored = self.manifest_bytes + sum(m.size for m in self.members.values())
        ledger = StorageLedger.measure(cs, num_classes=track.num_classes, stored_bytes=stored,
                                       archive_bytes=self.file_bytes)
        return LoadedArchive(condensed=cs, manifest=typed, sha256=self.sha256, ledger=ledger,
                             track=track, protocol=protocol)

    def _load_tensors(self, member: str, data: _Member) -> dict[str, torch.Tensor]:
        header = self._safetensors_header(member, data)
        required, optional = EXPECTED_TENSORS[member]
        names = set(header)
        if not required <= names or not names <= required | optional:
            raise self.refuse(Code.BAD_TENSOR_FILE,
                              f"member {member!r} holds tensors {sorted(names)}; expected "
                              f"{sorted(required)}" + (f" and optionally {sorted(optional)}"
                                                       if optional else ""))
        declared = self.manifest["tensors"]
        for name, (dtype, shape, _) in sorted(header.items()):
            if name not in declared:
                raise self.refuse(Code.BAD_TENSOR_FILE,
                                  f"tensor {name!r} in {member!r} is not listed in the manifest")
            if dtype != declared[name]["dtype"]:
                raise self.refuse(Code.BAD_DTYPE, f"tensor {name!r} is {dtype}; the manifest says "
                                                  f"{declared[name]['dtype']}")
            if shape != declared[name]["shape"]:
                raise self.refuse(Code.BAD_SHAPE, f"tensor {name!r} has shape {shape}; the "
                                                  f"manifest says {declared[name]['shape']}")
        for name in declared:
            if name not in header and member == _member_of(name):
                raise self.refuse(Code.BAD_TENSOR_FILE,
                                  f"tensor {name!r} is listed in the manifest but not in "
                                  f"{member!r}")
        return {name: _view(data.body, dtype, shape, begin)
                for name, (dtype, shape, begin) in header.items()}

    def _safetensors_header(self, member: str, data: _Member
                            ) -> dict[str, tuple[str, list[int], int]]:
        """Parse and check the header, so that each malformation gets a precise refusal:
        name -> (manifest dtype, shape, offset of its data)."""
        def bad(detail: str) -> ArchiveError:
            return self.refuse(Code.BAD_TENSOR_FILE,
                               f"member {member!r} is not a valid safetensors file ({detail})")

        if data.size < 8:
            raise bad("shorter than its 8-byte header length")
        n = int.from_bytes(data.head[:8], "little")
        if n > MAX_SAFETENSORS_HEADER or n > data.size - 8:
            raise bad(f"header length {n} exceeds the file or the "
                      f"{MAX_SAFETENSORS_HEADER}-byte limit")
        try:
            header = json.loads(data.head[8:8 + n].decode("utf-8"),
                                object_pairs_hook=reject_duplicate_keys)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise bad("header is not JSON, or repeats a key") from None
        if not isinstance(header, dict):
            raise bad("header is not a JSON object")
        metadata = header.pop("__metadata__", {})
        if not (isinstance(metadata, dict)
                and all(isinstance(v, str) for v in metadata.values())):
            raise bad("__metadata__ is not a map of strings to strings")
        out, spans = {}, []
        for name, entry in header.items():
            dtype, shape, begin, end = self._header_entry(member, name, entry, bad)
            spans.append((begin, end))
            out[name] = (dtype, shape, begin)
        position = 0
        for begin, end in sorted(spans):
            if begin != position:
                raise bad("tensor data overlap or leave gaps")
            position = end
        if position != len(data.body):
            raise bad(f"tensor data cover {position} of {len(data.body)} bytes")
        return out

    def _header_entry(self, member: str, name: str, entry: Any,
                      bad) -> tuple[str, list[int], int, int]:
        if not (isinstance(entry, dict) and isinstance(entry.get("dtype"), str)
                and _int_list(entry.get("shape")) and _int_list(entry.get("data_offsets"))
                and len(entry["data_offsets"]) == 2):
            raise bad(f"tensor {name!r} has a malformed entry")
        dtype = SAFETENSORS_DTYPES.get(entry["dtype"])
        if dtype is None:
            raise self.refuse(Code.BAD_DTYPE, f"tensor {name!r} in {member!r} has dtype "
                                              f"{entry['dtype']!r}; expected one of "
                                              f"{', '.join(SAFETENSORS_DTYPES)}")
        shape = entry["shape"]
        begin, end = entry["data_offsets"]
        if end - begin != math.prod(shape) * _ITEM_BYTES[dtype]:
            raise bad(f"tensor {name!r} spans {end - begin} bytes; its shape needs "
                      f"{math.prod(shape) * _ITEM_BYTES[dtype]}")
        return dtype, shape, begin, end


def _view(body: bytearray, dtype: str, shape: list[int], begin: int) -> torch.Tensor:
    """The tensor at ``begin`` of ``body`` (little-endian, as safetensors stores it), sharing
    the buffer unless its offset is misaligned for the dtype (then a copy, of labels only: a
    videos member holds one tensor, at offset 0)."""
    kind, count = _TORCH_DTYPES[dtype], math.prod(shape)
    if count == 0:
        return torch.empty(shape, dtype=kind)
    item = _ITEM_BYTES[dtype]
    if begin % item:
        source, begin = bytearray(body[begin:begin + count * item]), 0
    else:
        source = body
    tensor = torch.frombuffer(source, dtype=kind, count=count, offset=begin).reshape(shape)
    if sys.byteorder != "little":
        tensor = _from_little_endian(tensor)
    return tensor


def _from_little_endian(tensor: torch.Tensor) -> torch.Tensor:
    # Big-endian hosts are rare enough to pay a copy: reverse each element's bytes.
    item = tensor.element_size()
    if item == 1:
        return tensor
    raw = tensor.contiguous().view(torch.uint8).reshape(-1, item).flip(1).contiguous()
    return raw.view(tensor.dtype).reshape(tensor.shape)


def _member_of(tensor: str) -> str:
    return VIDEOS_MEMBER if tensor == "videos" else LABELS_MEMBER


def _int_list(value: Any) -> bool:
    return (isinstance(value, list)
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 48
                    for v in value))


def _kind(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "directory"
    if member.isfifo():
        return "FIFO"
    if member.ischr() or member.isblk():
        return "device"
    if member.issparse():
        return "sparse file"
    return f"member of tar type {member.type!r}"
