"""A tiny expert set on ``synthetic`` for the expert, MTT and DATM tests (seconds to train)."""

from __future__ import annotations

import dataclasses

from vdcbench.core.artifacts import ArtifactStore
from vdcbench.train.experts import RECIPES, ExpertSet, expert_set, train_experts

# One video per class, two epochs, batch 5: 2 SGD steps an epoch.
TINY_RECIPE = dataclasses.replace(RECIPES["synthetic"], name="tiny-test", experts=1, epochs=2,
                                  videos_per_class=1, batch_size=5)


def tiny_experts(protocol, folder, recipe=TINY_RECIPE, train: bool = True) -> ExpertSet:
    experts = expert_set(protocol, protocol.dataset("synthetic"), recipe, ArtifactStore(folder))
    if train:
        train_experts(experts)
    return experts
