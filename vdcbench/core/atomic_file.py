"""Whole-file writes that readers never see half done: write a temporary file beside the target,
then rename it over the target (a rename within one folder is atomic on POSIX and Windows).

Every record, entry, cache part and generated page of vdcbench goes through here, so that a run
killed mid-write (the 180-minute session wall, a Ctrl-C) leaves either the old file or the new
one, never a truncated JSON that a later resume would trust.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from vdcbench.core.errors import VdcError

# mkstemp creates 0600; records and caches are shared between users of one machine.
FILE_MODE = 0o644


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it is renamed onto ``path``.

    For writers that want a file name rather than a handle (safetensors' ``save_file``).
    On any exception the temporary file is removed and the target is untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise VdcError(f"cannot write {path}: {_reason(exc)}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except OSError as exc:
        # A full disk is the user's environment, not a bug: one line naming the file, whose
        # previous version the rename never replaced.
        if exc.errno not in _DISK_FULL:
            raise
        raise VdcError(f"cannot write {path}: {_reason(exc)}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _reason(exc: OSError) -> str:
    if exc.errno in _DISK_FULL:
        return "no space left on device (the previous file, if any, is kept)"
    return exc.strerror or str(exc)


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Open a temporary file beside ``path`` for binary writing, let ``write`` fill it, rename it."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    write_atomic(path, lambda fh: fh.write(data))


def write_text_atomic(path: Path, text: str) -> None:
    """UTF-8 and the text's own newlines on every platform: the locale must not change the bytes."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, data: Any) -> None:
    """JSON as every vdcbench record is stored: two-space indent, sorted keys, final newline,
    so that the same content always has the same bytes (entries are compared byte for byte).

    A NaN or infinity is refused before anything is written: ``json`` would spell it ``NaN`` or
    ``Infinity``, which is not JSON, and the old file (if any) is kept."""
    try:
        text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
    except ValueError:
        raise VdcError(f"refusing to write {path}: it holds a NaN or infinite number, "
                       "which JSON cannot carry") from None
    write_text_atomic(path, text)
