"""Resuming a long fit at an epoch boundary: the trainer's state, kept in an artifact store.

Teachers on the ResNet nets train for hours on a CPU, Forgetting trains a whole MiniC3D before it
selects, and the distillation methods will train for longer still; a session that stops must not
lose that work. Every random draw of the trainer is keyed by (seed, epoch, clip) and torch's
generator is reseeded at each epoch start, so the net's and the optimiser's state after epoch
``e`` are all a resumed run needs to replay epochs ``e + 1 ...`` exactly: a resumed fit gives the
same losses and the same weights as an uninterrupted one.

A checkpoint names the run it belongs to by ``key`` (the caller puts everything that identifies
the run in it: method, protocol hash, seed, epochs), and stores a fingerprint of the fit (epochs,
batch size, seed, number of clips); a checkpoint whose fingerprint differs is ignored and
overwritten, never resumed from. A caller adds to that fingerprint through ``context`` what the
trainer cannot see but the numbers depend on (an evaluation's torch thread count and device: CPU
float sums are ordered by the thread count, so half a run at 4 threads and half at 1 would give a
record that neither thread count reproduces).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from vdcbench.core.artifacts import ArtifactStore


@dataclass(frozen=True)
class FitCheckpoint:
    """Where and how often a :class:`~vdcbench.train.trainer.Trainer` saves its resume state."""

    store: "ArtifactStore"
    key: str
    every: int = 1          # epochs between saves; the last epoch is always saved
    context: Mapping[str, Any] = field(default_factory=dict)   # joins the trainer's fingerprint

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"checkpoint every {self.every} epochs: must be at least 1")

    def _fingerprint(self, trainer_fingerprint: dict[str, Any]) -> dict[str, Any]:
        return {**trainer_fingerprint, **self.context}

    def load(self, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
        """The saved state of this very fit, or None (absent, unreadable, or another fit's)."""
        data = self.store.get_bytes(self.key)
        if data is None:
            return None
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception:   # a truncated or foreign file: start again rather than fail the run
            return None
        if not isinstance(state, dict) or state.get("fingerprint") != self._fingerprint(fingerprint):
            return None
        return state

    def save(self, state: dict[str, Any]) -> None:
        state = {**state, "fingerprint": self._fingerprint(state["fingerprint"])}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        self.store.put_bytes(self.key, buffer.getvalue())

    def clear(self) -> None:
        """Drop the state once the caller has stored what the fit produced."""
        self.store.delete(self.key)
