"""CondensedSet -> submission.tar, deterministically and atomically.

Deterministic: the same set gives the same bytes (fixed member order, zeroed tar metadata, gzip
without name or time, and no wall time in the manifest), so an archive's sha256 identifies its
content; the condensation's wall time goes to ``<archive>.timing.json`` (``timing``). Atomic:
the archive appears complete under its name or not at all. The manifest is the first member,
as the reader requires, so that it learns the track, and with it the byte allowance, before
the large members arrive.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile

import safetensors.torch
import torch

from vdcbench.archive.errors import ArchiveError, ArchiveErrorCode
from vdcbench.archive.ledger import budget_track, check_budget
from vdcbench.archive.manifest import (LABELS_MEMBER, MANIFEST_MEMBER, VIDEOS_MEMBER,
                                       encode_manifest, manifest_of)
from vdcbench.archive.condensed import CondensedSet
from vdcbench.archive.timing import write_timing
from vdcbench.protocol import Protocol

GZIP_SUFFIXES = (".tar.gz", ".tgz")
# Level 6 is zlib's default trade-off; level 9 costs several times the time for a few percent on
# pixel data. Fixed, because the level is part of the bytes.
GZIP_LEVEL = 6
MEMBER_MODE = 0o644
FILE_MODE = 0o644


def write_archive(cs: CondensedSet, path: str | os.PathLike[str], *, protocol: Protocol,
                  overwrite: bool = False, num_classes: int | None = None) -> str:
    """Write ``cs`` to ``path`` (gzip when it ends in .tar.gz or .tgz) and return the file's sha256.

    When ``cs.method.wall_seconds`` is set it is written to ``<path>.timing.json``, never into
    the archive.

    ``num_classes`` is needed only for a data set whose class count comes from the user's
    collection (the ``folder`` source); otherwise the protocol's count is used.
    """
    target = os.fspath(path)
    subject = f"condensed set for {cs.dataset}/{cs.track}"
    track = budget_track(protocol, cs.dataset, cs.track, num_classes, subject=subject)
    check_budget(cs, track, protocol, subject=subject)
    _check_destination(target, overwrite)

    tensors = {VIDEOS_MEMBER: {"videos": cs.videos},
               LABELS_MEMBER: {"labels": cs.labels}}
    if cs.soft_labels is not None:
        tensors[LABELS_MEMBER]["soft_labels"] = cs.soft_labels
    payloads = {name: safetensors.torch.save({k: _portable(v) for k, v in group.items()})
                for name, group in tensors.items()}
    manifest = manifest_of(
        cs, protocol=protocol, num_classes=track.num_classes,
        members={name: (hashlib.sha256(data).hexdigest(), len(data))
                 for name, data in payloads.items()})
    members = [(MANIFEST_MEMBER, encode_manifest(manifest.to_dict(), subject=subject))]
    members += sorted(payloads.items())
    sha = _write_atomically(target, members, gzipped=target.lower().endswith(GZIP_SUFFIXES),
                            overwrite=overwrite)
    write_timing(target, sha, cs.method)
    return sha


def _portable(tensor: torch.Tensor) -> torch.Tensor:
    # safetensors wants dense, contiguous CPU memory; detach so autograd state never matters.
    return tensor.detach().to("cpu").contiguous()


def _check_destination(target: str, overwrite: bool) -> None:
    if os.path.isdir(target):
        raise ArchiveError(ArchiveErrorCode.DESTINATION_UNWRITABLE,
                           f"cannot write archive {target}: it is a directory")
    if os.path.lexists(target) and not overwrite:
        raise ArchiveError(ArchiveErrorCode.DESTINATION_EXISTS,
                           f"archive {target} already exists; pass overwrite=True (--overwrite) "
                           "to replace it")
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise ArchiveError(ArchiveErrorCode.DESTINATION_UNWRITABLE,
                           f"cannot write archive {target}: directory {directory} does not exist")


class _HashingSink:
    """Write-through to a file, hashing and counting what passes, so the returned sha256 is of
    exactly the bytes written, without reading the file back."""

    def __init__(self, fh: io.BufferedWriter):
        self._fh = fh
        self._sha = hashlib.sha256()
        self._pos = 0

    def write(self, data: bytes) -> int:
        self._fh.write(data)
        self._sha.update(data)
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        self._fh.flush()

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def _tar_into(sink: _HashingSink | gzip.GzipFile, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = MEMBER_MODE
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(data))


def _write_atomically(target: str, members: list[tuple[str, bytes]], *, gzipped: bool,
                      overwrite: bool) -> str:
    directory = os.path.dirname(os.path.abspath(target))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".partial",
                                   dir=directory)
    except OSError as err:
        raise ArchiveError(ArchiveErrorCode.DESTINATION_UNWRITABLE,
                           f"cannot write archive {target}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            sink = _HashingSink(fh)
            if gzipped:
                # filename="" and mtime=0: the gzip header would otherwise record both.
                with gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0,
                                   compresslevel=GZIP_LEVEL) as gz:
                    _tar_into(gz, members)
            else:
                _tar_into(sink, members)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        # Re-checked at the last moment: another process may have created the file meanwhile.
        if os.path.lexists(target) and not overwrite:
            raise ArchiveError(ArchiveErrorCode.DESTINATION_EXISTS,
                               f"archive {target} already exists; pass overwrite=True "
                               "(--overwrite) to replace it")
        os.replace(tmp, target)
    except OSError as err:
        _discard(tmp)
        raise ArchiveError(ArchiveErrorCode.DESTINATION_UNWRITABLE,
                           f"cannot write archive {target}: {err.strerror or err}") from None
    except BaseException:
        _discard(tmp)
        raise
    return sink.hexdigest()


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
