"""Cross-process locks for the few writes that two vdcbench runs may race on.

Atomic files already make every single write all-or-nothing; what they cannot do is stop two
processes from doing the same long work twice, or one from deleting what the other is writing
(``prepare`` clears stale temporary parts, ``write_store`` replaces a store's files). Three
places therefore take a lock: the per-seed record of an evaluation, the generation of a
``synthetic`` split, and the prepare of one store. The second process waits for the first and
then finds its result (a record to reuse, a cached split, a complete store) instead of redoing it.

The locks are ``filelock`` locks (``flock`` on POSIX): the kernel releases one when its holder
exits, SIGKILL included, so a killed run never leaves a lock that blocks the next. Lock files are
empty, hidden (``.<name>.lock``) and left in place: deleting a lock file while another process
waits on it would let a third one take a lock on a new inode.

Waiting: up to ``VDCBENCH_LOCK_TIMEOUT`` seconds (default :data:`DEFAULT_TIMEOUT_S`, a day,
since an evaluation seed of the full schedule may run for hours on a CPU); after that a
one-line :class:`~vdcbench.core.errors.VdcError` names the lock file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from vdcbench.core.errors import VdcError

DEFAULT_TIMEOUT_S = 24 * 3600.0
TIMEOUT_ENV = "VDCBENCH_LOCK_TIMEOUT"
LOCK_SUFFIX = ".lock"


def lock_timeout() -> float:
    """Seconds a process waits for another's lock: ``$VDCBENCH_LOCK_TIMEOUT`` or a day."""
    text = os.environ.get(TIMEOUT_ENV)
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        raise VdcError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds") from None
    if value < 0 or value != value:
        raise VdcError(f"{TIMEOUT_ENV}={text!r} must be a non-negative number of seconds")
    return value


def lock_path(folder: Path, name: str) -> Path:
    """The lock file guarding ``name`` inside ``folder``: ``folder/.name.lock``."""
    return Path(folder) / f".{name}{LOCK_SUFFIX}"


@contextmanager
def exclusive(folder: Path, name: str, *, what: str,
              timeout: float | None = None) -> Iterator[Path]:
    """Hold the lock ``folder/.name.lock`` for the body, waiting for another holder to finish.

    ``what`` says in the error what the lock guards ("the record of seed 0"). Raises
    ``VdcError`` when the folder cannot hold a lock file or the lock is not free within
    ``timeout`` seconds (default :func:`lock_timeout`).
    """
    path = lock_path(folder, name)
    wait = lock_timeout() if timeout is None else timeout
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path), timeout=wait)
        lock.acquire()
    except Timeout:
        raise VdcError(f"another vdcbench process still holds {path} ({what}) after {wait:g} s; "
                       f"wait for it or raise {TIMEOUT_ENV}") from None
    except OSError as exc:
        raise VdcError(f"cannot lock {path} ({what}): {exc.strerror or exc}") from None
    try:
        yield path
    finally:
        lock.release()
