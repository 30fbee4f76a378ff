"""The condensed set: what a method produces and what an archive holds.

A plain container. It checks only what a constructor can check without a protocol (Python types,
the method kind); everything measured against a track's budget lives in
``vdcbench.archive.ledger.check_budget``, which the writer and the reader both run, so the one
place that defines "valid" is the one place that refuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from vdcbench.core.errors import VdcError
from vdcbench.protocol import Choice


class MethodKind(Choice):
    """What a method does to the data; manifests, entries and plugins spell it as the string."""

    SELECTION = "selection"          # picks real clips
    DISTILLATION = "distillation"    # synthesises clips


METHOD_KINDS = tuple(k.value for k in MethodKind)


@dataclass(frozen=True)
class MethodInfo:
    """Who made the set and how; recorded verbatim in the archive manifest."""

    name: str
    kind: MethodKind
    config: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    wall_seconds: float | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise VdcError(f"method name must be a non-empty string, not {self.name!r}")
        # Accepts the string a manifest or an importer holds; frozen, hence object.__setattr__.
        object.__setattr__(self, "kind", MethodKind.parse(self.kind, "method kind"))


# eq=False: dataclass equality would compare tensors element-wise and fail on truthiness.
@dataclass(frozen=True, eq=False, kw_only=True)
class CondensedSet:
    """Videos (N, 3, T, H, W) as uint8 pixels or float16/float32 in pixel scale [0, 1] (unclamped
    allowed), labels (N,) int64, and soft labels (N, K) float32 for the ``soft`` strategy only."""

    videos: torch.Tensor
    labels: torch.Tensor
    dataset: str
    track: str
    method: MethodInfo
    soft_labels: torch.Tensor | None = None
    label_strategy: str = "hard"
    external_data: tuple[str, ...] = ()
    external_weights: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("videos", "labels"):
            if not isinstance(getattr(self, name), torch.Tensor):
                raise VdcError(f"condensed set {name} must be a torch.Tensor, "
                               f"not {type(getattr(self, name)).__name__}")
        if self.soft_labels is not None and not isinstance(self.soft_labels, torch.Tensor):
            raise VdcError("condensed set soft_labels must be a torch.Tensor or None, "
                           f"not {type(self.soft_labels).__name__}")
        if not isinstance(self.method, MethodInfo):
            raise VdcError("condensed set method must be a MethodInfo, "
                           f"not {type(self.method).__name__}")
        for name in ("dataset", "track", "label_strategy"):
            if not isinstance(getattr(self, name), str):
                raise VdcError(f"condensed set {name} must be a string, "
                               f"not {getattr(self, name)!r}")
        for name in ("external_data", "external_weights"):
            # Lists are accepted for convenience and frozen into tuples, so the set stays immutable.
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise VdcError(f"condensed set {name} must be a sequence of strings, not {value!r}")
            object.__setattr__(self, name, tuple(value))

    @property
    def num_instances(self) -> int:
        return int(self.videos.shape[0]) if self.videos.ndim else 0

    def per_class_counts(self, num_classes: int | None = None) -> tuple[int, ...]:
        """Instances per class, indexed by class; at least ``num_classes`` entries when given.
        Labels are assumed non-negative (``check_budget`` refuses the others)."""
        labels = self.labels.detach().to("cpu", torch.int64).reshape(-1)
        if labels.numel() and int(labels.min()) < 0:
            raise VdcError("condensed set has negative labels; per-class counts are undefined")
        counts = torch.bincount(labels, minlength=num_classes or 0)
        return tuple(int(c) for c in counts)
