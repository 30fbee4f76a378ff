"""DATM: the start-epoch window grows as DATM.py specifies; the soft-label start; the threshold;
its archive carries the learned labels under the soft strategy."""

from __future__ import annotations

import pytest
import torch

from trajectory_fixtures import tiny_experts
from vdcbench.core.artifacts import ArtifactStore
from vdcbench.core.errors import VdcError
from vdcbench.methods.base import CondensationTask
from vdcbench.methods.datm import (DATM, DATMObjective, expert_logits, initial_soft_labels,
                                   start_window)


def test_window_grows_as_the_reference_computes_it():
    cfg = DATM.Config(min_start_epoch=0, current_max_start_epoch=10, max_start_epoch=20,
                      expansion_end_epoch=1000)
    # upper = min(current + int((max - current) / expansion_end * it), max), DATM.py L484-491.
    assert start_window(cfg, 0) == (0, 10)
    assert start_window(cfg, 99) == (0, 10)          # int(0.99) = 0
    assert start_window(cfg, 100) == (0, 11)
    assert start_window(cfg, 550) == (0, 15)
    assert start_window(cfg, 1000) == (0, 20)
    assert start_window(cfg, 5000) == (0, 20)        # capped at max_start_epoch
    uppers = [start_window(cfg, it)[1] for it in range(0, 1200, 7)]
    assert uppers == sorted(uppers)
    flat = DATM.Config(min_start_epoch=2, current_max_start_epoch=3, max_start_epoch=20,
                       sequential=False)
    assert start_window(flat, 0) == start_window(flat, 10_000) == (2, 20)


def test_the_objective_draws_inside_the_window(protocol, tmp_path):
    experts = tiny_experts(protocol, tmp_path, train=False)
    cfg = DATM.Config(min_start_epoch=1, current_max_start_epoch=2, max_start_epoch=6,
                      expansion_end_epoch=8)
    objective = DATMObjective.__new__(DATMObjective)     # only the window: no net, no clips
    objective.config = cfg
    assert objective.start_bounds(0) == (1, 2) and objective.start_bounds(8) == (1, 6)
    assert experts.recipe.epochs == 2


def test_config_checks_the_window():
    with pytest.raises(VdcError):
        DATM.Config(min_start_epoch=5, current_max_start_epoch=3, max_start_epoch=4)
    with pytest.raises(VdcError):
        DATM.Config(current_max_start_epoch=30, max_start_epoch=20)


@pytest.fixture(scope="module")
def experts(protocol, tmp_path_factory):
    return tiny_experts(protocol, tmp_path_factory.mktemp("datm-experts"))


def test_soft_labels_start_as_the_mean_logits_of_the_experts_that_are_right(protocol, experts,
                                                                          tmp_path):
    track = protocol.track("synthetic", "ipc1-t8")
    task = CondensationTask(protocol, track, "soft", 0, ArtifactStore(tmp_path))
    clips = torch.rand(4, 3, 8, 48, 48, generator=torch.Generator().manual_seed(0))
    logits = expert_logits(task, experts, [0], 2, clips)[0]
    predicted = logits.argmax(1)
    labels = torch.where(torch.arange(4) % 2 == 0, predicted, (predicted + 1) % 10)
    soft = initial_soft_labels(task, experts, [0], 2, clips, labels)
    # One expert: right or wrong, its logits are the start (all experts where none is right).
    torch.testing.assert_close(soft, logits)


@pytest.mark.slow
def test_soft_archive_carries_the_learned_labels(protocol, tmp_path, monkeypatch):
    """End to end at IPC 1 with the tiny preset on freshly trained one-video-per-class experts."""
    import dataclasses
    from vdcbench.train import experts as experts_module
    recipe = dataclasses.replace(experts_module.RECIPES["synthetic"], experts=1, epochs=2,
                                 videos_per_class=1, batch_size=5)
    monkeypatch.setitem(experts_module.RECIPES, "synthetic", recipe)
    monkeypatch.setenv("VDCBENCH_CACHE", str(tmp_path / "cache"))
    experts_module.train_experts(experts_module.expert_set(protocol, protocol.dataset("synthetic")))
    track = protocol.track("synthetic", "ipc1-t8")
    task = CondensationTask(protocol, track, "soft", 0, ArtifactStore(tmp_path / "a"))
    method = DATM(DATM.config_from_strings({"preset": "tiny", "max_start_epoch": "1",
                                            "current_max_start_epoch": "1"}))
    condensed = method.condense(task)
    assert condensed.label_strategy == "soft" and condensed.videos.dtype == torch.float16
    assert condensed.soft_labels is not None and condensed.soft_labels.shape == (10, 10)
    # The labels are DATM's own (learned), not the protocol teacher's logits.
    assert not torch.allclose(condensed.soft_labels, task.teacher_logits(condensed.videos))
    hard = method.condense(CondensationTask(protocol, track, "hard", 0,
                                            ArtifactStore(tmp_path / "a")))
    assert hard.soft_labels is None and torch.equal(hard.videos, condensed.videos)
