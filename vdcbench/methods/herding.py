"""Herding: per class, greedy mean matching in the protocol teacher's pooled feature.

At step i (0-based) the method picks, among the videos not yet chosen, the one that brings the
running sum closest to (i + 1) times the class mean: ``argmin_x ||(i+1)·mu - sum_sel f - f(x)||``
(Welling 2009, iCaRL; the video version in yuz1wan/video_distillation ``distill_coreset.py``).
Each chosen video is stored as its centred window, centre-cropped: an unaltered real clip.

Deviations from the reference (recorded in protocol/CHANGELOG.md):
- DeepCore's ``herding.py`` takes ``argmax`` of that distance, which drives the running mean away
  from the class mean; this is the canonical ``argmin``. The study's Herding came from DeepCore,
  so ``--set criterion=argmax`` reproduces its variant (the farthest video from the residual
  target: atypical clips), for like-for-like comparison with the study's Herding rows.
- The feature space is the protocol teacher's pooled 128-d MiniC3D feature (eval mode, the centred
  8-frame window, centre crop), not a ResNet-18 trained for the selection (DeepCore) nor a
  randomly initialised ConvNet3D (video_distillation): one network shared by all feature-based
  baselines, trained by the protocol.
- Ties (identical distances) go to the lowest video index, so the choice is deterministic; the
  task's generator is not used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vdcbench.archive.condensed import CondensedSet, MethodKind
from vdcbench.core.errors import VdcError
from vdcbench.methods.base import CondensationTask, Method
from vdcbench.methods.features import select_in_feature_space


CRITERIA = ("argmin", "argmax")


def herding_order(features: np.ndarray | torch.Tensor, count: int,
                  criterion: str = "argmin") -> np.ndarray:
    """Row indices of ``count`` points chosen by herding, in pick order: canonical ``argmin``, or
    DeepCore's ``argmax`` (the study's variant)."""
    if criterion not in CRITERIA:
        raise ValueError(f"herding criterion must be one of {CRITERIA}, not {criterion!r}")
    f = np.asarray(features, dtype=np.float64)
    n = f.shape[0]
    if count > n:
        raise ValueError(f"cannot herd {count} of {n} points")
    mu = f.mean(axis=0)
    running = np.zeros_like(mu)
    available = np.ones(n, dtype=bool)
    chosen: list[int] = []
    for step in range(count):
        dist = np.linalg.norm((step + 1) * mu - running - f, axis=1)
        if criterion == "argmin":
            dist[~available] = np.inf
            pick = int(np.argmin(dist))
        else:
            dist[~available] = -np.inf
            pick = int(np.argmax(dist))
        chosen.append(pick)
        available[pick] = False
        running += f[pick]
    return np.asarray(chosen, dtype=np.int64)


class Herding(Method):
    name = "herding"
    kind = MethodKind.SELECTION
    description = "per class, greedy mean matching (argmin herding) in the teacher's pooled feature"

    @dataclass(frozen=True)
    class Config:
        batch_size: int = 50    # videos per teacher forward when computing features
        # Whose features: "protocol" (the protocol teacher) or a declared teacher profile
        # (protocol/teacher-profiles.toml, e.g. "cpu"); the manifest records its name and hash.
        teacher_profile: str = "protocol"
        criterion: str = "argmin"   # "argmax": DeepCore's herding, as the study ran it
        # Temporal formation on a track of other than 8 frames (segment, slide-window,
        # interpolate-duplicate, interpolate-linear, interpolate-linear-w4): the clips the
        # teacher judges each T-frame window by, recorded for evaluation; empty: the track's
        # default (slide-window above 8 frames, interpolate-linear below; none at 8).
        formation: str = ""

        def __post_init__(self) -> None:
            if self.batch_size < 1:
                raise VdcError(f"herding batch_size must be at least 1, not {self.batch_size}")
            if self.criterion not in CRITERIA:
                raise VdcError(f"herding criterion must be one of {', '.join(CRITERIA)}, "
                               f"not {self.criterion!r}")

    def condense(self, task: CondensationTask) -> CondensedSet:
        return select_in_feature_space(self, task, lambda f, count, label: herding_order(f, count, self.config.criterion),
                                       self.config.batch_size)
