"""DM: the class-mean distance it minimises, its fresh nets, its real batches, its settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from vdcbench.core.artifacts import ArtifactStore
from vdcbench.core.errors import VdcError
from vdcbench.methods.base import CondensationTask
from vdcbench.methods.distillation import initial_selection
from vdcbench.methods.dm import DM_KEY, Config, DMObjective, class_mean_distance, real_views
from vdcbench.methods.random_selection import RandomSelection
from vdcbench.train.augment import to_unit_float


@pytest.fixture(scope="module")
def task(protocol, tmp_path_factory):
    return CondensationTask(protocol, protocol.track("synthetic", "ipc1-t8"), "hard", 0,
                            ArtifactStore(tmp_path_factory.mktemp("dm")))


@pytest.fixture(scope="module")
def start(task):
    """Random's clips for seed 0 (DM's initialisation), float32 pixel scale, and labels."""
    return initial_selection(task, RandomSelection())


def _objective(task, start, classes=2, **config):
    clips, labels = start
    keep = labels < classes
    return DMObjective(task, Config(**config), clips[keep].clone(), labels[keep])


def test_the_loss_is_zero_when_the_synthetic_clips_are_the_real_batch(task, start):
    objective = _objective(task, start, batch_real=4)
    net = objective.fresh_net(0)
    rng = task.rng(DM_KEY, 0, 0)
    real = real_views(task.train, objective.members[0], 4, task.dataset.crop, task, rng)
    crop = objective.crop_for(rng)
    same = class_mean_distance(net, real, to_unit_float(real).requires_grad_(True), crop,
                               objective.normalize)
    assert float(same.detach()) == 0.0
    other = class_mean_distance(net, real, start[0][:1], crop, objective.normalize)
    assert float(other) > 0.0


def test_the_loss_falls_under_its_own_updates(task, start):
    # The same iteration repeated: the same net, real batch and crop, so each step works on one
    # fixed problem (two classes, two real clips each).
    objective = _objective(task, start, batch_real=2, lr=10.0, momentum=0.0)
    before = objective.clips.detach().clone()
    losses = [objective.step(0) for _ in range(5)]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.6 * losses[0], losses
    assert not torch.equal(objective.clips, before)


def test_each_iteration_has_its_own_reproducible_net_and_leaves_torchs_generator_alone(task,
                                                                                        start):
    objective = _objective(task, start)
    torch.manual_seed(1)
    state = torch.random.get_rng_state()
    a, b, c = objective.fresh_net(3), objective.fresh_net(3), objective.fresh_net(4)
    assert torch.equal(torch.random.get_rng_state(), state)
    wa, wb, wc = (next(n.parameters()) for n in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert not a.training and not wa.requires_grad


def test_real_views_come_from_the_class_at_the_clip_size(task):
    members = np.flatnonzero(task.train.labels.numpy() == 3)
    views = real_views(task.train, members, 5, 56, task, np.random.default_rng(1))
    assert views.shape == (5, 3, 8, 56, 56) and views.dtype == torch.uint8
    again = real_views(task.train, members, 5, 56, task, np.random.default_rng(1))
    assert torch.equal(views, again)
    # More clips than the class has: drawn with replacement rather than refused.
    assert real_views(task.train, members[:2], 3, 56, task, np.random.default_rng(1)).shape[0] == 3


def test_dm_config_presets_and_refusals():
    cpu = Config(preset="cpu")
    assert (cpu.iterations, cpu.batch_real, cpu.lr) == (200, 8, 30.0)
    assert Config(preset="cpu", lr=2.0).lr == 2.0      # an explicit value wins
    assert Config().iterations == 5000 and Config().batch_real == 64
    for bad in ({"lr": 0.0}, {"momentum": 1.0}, {"storage": "uint8"}, {"preset": "fast"}):
        with pytest.raises(VdcError):
            Config(**bad)


def test_cli_lists_dms_keys():
    from vdcbench.cli import main
    shown = CliRunner().invoke(main, ["methods", "dm"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "dm (distillation)" in shown.output
    for key in ("iterations", "batch_real", "lr", "momentum", "min_scale", "storage", "preset"):
        assert key in shown.output
    assert "real clips per class and iteration" in shown.output
