"""User-facing errors.

Everything below the CLI raises these instead of printing or exiting; the CLI turns one into a
single line on stderr and exit code 2. Any other exception escaping to the CLI is a bug.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class VdcError(Exception):
    """A problem with the user's input or environment, reported as one line, exit code 2."""

    exit_code = 2


class UnknownNameError(VdcError):
    """A name (data set, track, net, method, ...) that is not in its registry.

    ``hint`` replaces the spelling suggestion where spelling is the wrong guide (a track's
    numbers: ``ipc0-t8`` is spelt like ``ipc10-t8``); ``note`` follows it (where a name was
    looked for)."""

    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str | None = None,
                 note: str = ""):
        known = sorted(known)
        if hint is None:
            # A prefix is what people type ("i3d" for "i3d_r18"), and difflib may rank it below
            # a longer name that shares more letters; a unique prefix match wins.
            prefixed = [k for k in known if k.lower().startswith(name.lower())] if name else []
            close = prefixed if len(prefixed) == 1 else difflib.get_close_matches(
                name, known, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
        super().__init__(f"unknown {kind} {name!r}{hint}{note}")
        self.kind, self.name, self.known = kind, name, known


class NotBuiltError(VdcError):
    """Declared by the protocol, so its hash is stable, but not implemented in this release."""

    def __init__(self, what: str):
        super().__init__(f"{what} is declared by the protocol but not built in this vdcbench release")
