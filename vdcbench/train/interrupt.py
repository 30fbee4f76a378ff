"""Stopping a long fit between two optimiser steps, on request.

A fit asked to stop (``StopRequest.request``, which the CLI calls from its SIGINT handler: the
library installs no signal handler) finishes the step it is in and raises ``FitInterrupted``
before the next one. Nothing of the unfinished epoch is saved: a checkpointed fit keeps its
state after the last whole epoch (``FitCheckpoint``), which a rerun resumes from with the same
numbers as an unbroken run. Stopping between steps, not inside one, also keeps a checkpoint from
being interrupted half-way through its write.
"""

from __future__ import annotations

from vdcbench.core.errors import VdcError

INTERRUPTED_EXIT_CODE = 130     # 128 + SIGINT, what a shell reports for a Ctrl-C


class StopRequest:
    """A flag a signal handler sets and the trainer reads after every step."""

    def __init__(self) -> None:
        self._requested = False

    def request(self) -> None:
        self._requested = True

    @property
    def requested(self) -> bool:
        return self._requested


class FitInterrupted(VdcError):
    """A fit stopped on request; ``epochs_saved`` whole epochs are in its checkpoint (if any)."""

    exit_code = INTERRUPTED_EXIT_CODE

    def __init__(self, epoch: int, epochs: int, step: int, steps: int, epochs_saved: int,
                 checkpointed: bool):
        self.epoch, self.epochs, self.step, self.steps = epoch, epochs, step, steps
        self.epochs_saved, self.checkpointed = epochs_saved, checkpointed
        kept = (f"{epochs_saved} finished epoch{'s are' if epochs_saved != 1 else ' is'} saved"
                if checkpointed and epochs_saved else "no finished epoch is saved")
        super().__init__(f"interrupted in epoch {epoch + 1} of {epochs} after step {step} of "
                         f"{steps}; {kept}")
