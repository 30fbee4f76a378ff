"""Ctrl-C for long commands: the first SIGINT asks the work to stop at its next safe point, a
second one interrupts at once.

Why a handler at all: a process started as a background job of a non-interactive shell
(``vdcbench teacher train ... &`` in a script, some batch systems) inherits SIGINT *ignored*, and
Python then installs no KeyboardInterrupt handler, so ``kill -INT`` and a terminal's Ctrl-C did
nothing while only SIGTERM stopped the run (issue 17). A command whose stop is clean and resumable
takes SIGINT back for the time it runs, whatever it inherited, and restores the previous
disposition afterwards.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from vdcbench.train.interrupt import StopRequest


@contextlib.contextmanager
def stop_on_sigint(stop: StopRequest) -> Iterator[StopRequest]:
    """While inside, SIGINT calls ``stop.request()``; a second SIGINT raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield stop           # signal handlers belong to the main thread (tests may run elsewhere)
        return

    def handler(signum, frame):
        if stop.requested:
            raise KeyboardInterrupt
        stop.request()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
