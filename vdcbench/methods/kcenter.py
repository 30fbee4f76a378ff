"""K-Center greedy: per class, farthest-first traversal in the protocol teacher's pooled feature.

The first centre is a uniformly random video of the class (drawn from ``task.rng(label)``); each
next centre is the video farthest from its nearest chosen centre, ``argmax_x min_c ||f(x) - f(c)||``
(DeepCore ``kcentergreedy.py``). Each chosen video is stored as its centred window, centre-cropped.

Deviations from the reference (recorded in protocol/CHANGELOG.md):
- The video version (yuz1wan/video_distillation ``distill_coreset.py``) starts from the video
  nearest the class mean and takes ``torch.norm(features - features[centres], dim=-1)``, which
  picks index 0 as the second centre and fails for three or more; here the first centre is
  random, as in DeepCore, and distances to the chosen set are a proper running minimum.
- The feature space is the protocol teacher's pooled 128-d MiniC3D feature (eval mode, the centred
  8-frame window, centre crop), not DeepCore's ImageNet-pretrained, fine-tuned ResNet-18.
- Ties in the farthest distance go to the lowest video index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vdcbench.archive.condensed import CondensedSet, MethodKind
from vdcbench.core.errors import VdcError
from vdcbench.methods.base import CondensationTask, Method
from vdcbench.methods.features import select_in_feature_space


def kcenter_order(features: np.ndarray | torch.Tensor, count: int, first: int) -> np.ndarray:
    """Row indices of ``count`` centres chosen farthest-first from ``first``, in pick order."""
    f = np.asarray(features, dtype=np.float64)
    n = f.shape[0]
    if count > n:
        raise ValueError(f"cannot choose {count} centres among {n} points")
    if not 0 <= first < n:
        raise ValueError(f"first centre {first} is not one of {n} points")
    chosen = [int(first)]
    nearest = np.linalg.norm(f - f[first], axis=1)
    while len(chosen) < count:
        # Chosen points are excluded explicitly: with duplicate features every distance can be 0.
        candidates = nearest.copy()
        candidates[chosen] = -np.inf
        pick = int(np.argmax(candidates))
        chosen.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(f - f[pick], axis=1))
    return np.asarray(chosen, dtype=np.int64)


class KCenter(Method):
    name = "kcenter"
    kind = MethodKind.SELECTION
    description = "per class, farthest-first K-Center greedy from a random first video, teacher feature"

    @dataclass(frozen=True)
    class Config:
        batch_size: int = 50    # videos per teacher forward when computing features
        # Whose features: "protocol" (the protocol teacher) or a declared teacher profile
        # (protocol/teacher-profiles.toml, e.g. "cpu"); the manifest records its name and hash.
        teacher_profile: str = "protocol"
        # Temporal formation on a track of other than 8 frames (segment, slide-window,
        # interpolate-duplicate, interpolate-linear, interpolate-linear-w4): the clips the
        # teacher judges each T-frame window by, recorded for evaluation; empty: the track's
        # default (slide-window above 8 frames, interpolate-linear below; none at 8).
        formation: str = ""

        def __post_init__(self) -> None:
            if self.batch_size < 1:
                raise VdcError(f"kcenter batch_size must be at least 1, not {self.batch_size}")

    def condense(self, task: CondensationTask) -> CondensedSet:
        def pick(features: torch.Tensor, count: int, label: int) -> np.ndarray:
            first = int(task.rng(label).integers(0, features.shape[0]))
            return kcenter_order(features, count, first)

        return select_in_feature_space(self, task, pick, self.config.batch_size)
