"""MTT: the normalised parameter distance, the unrolled student, a tiny run that learns, the
missing-experts refusal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajectory_fixtures import tiny_experts
from vdcbench.core.artifacts import ArtifactStore
from vdcbench.core.errors import VdcError
from vdcbench.methods.base import CondensationTask
from vdcbench.methods.mtt import (MTT, TrajectoryObjective, parameter_distance, plan_student,
                                  unroll_student)
from vdcbench.models import build_net
from vdcbench.train.augment import Normalize

SIZE = 48   # the smallest frame MiniC3D takes (three stride-2 convs, three pools): cheaper than 56


@pytest.fixture(scope="module")
def experts(protocol, tmp_path_factory):
    return tiny_experts(protocol, tmp_path_factory.mktemp("mtt-experts"))


@pytest.fixture(scope="module")
def task(protocol, tmp_path_factory):
    track = protocol.track("synthetic", "ipc1-t8")
    return CondensationTask(protocol, track, "hard", 0,
                            ArtifactStore(tmp_path_factory.mktemp("mtt-artifacts")))


def _clips(count=10, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, 3, 8, SIZE, SIZE, generator=generator)


def _normalize(protocol):
    return Normalize(protocol.trainer.normalize_mean, protocol.trainer.normalize_std)


@pytest.mark.parametrize("steps, lr", [(0, 0.01), (3, 0.0)])
def test_no_synthetic_step_from_the_start_gives_loss_one(protocol, experts, steps, lr):
    net = build_net(protocol.net("minic3d-in"), 10).train()
    start, target = experts.snapshot(0, 0), experts.snapshot(0, 1)
    clips = _clips().requires_grad_(True)
    plan = plan_student(np.random.default_rng(0), 10, steps, 4, SIZE, (0.35, 1.0),
                        (0.75, 4 / 3), True)
    student = unroll_student(net, start, clips, torch.arange(10), torch.tensor(lr), plan,
                             _normalize(protocol))
    assert float(parameter_distance(student, start, target).detach()) == 1.0


def test_distance_is_zero_at_the_target_and_scales_quadratically():
    start = {"w": torch.zeros(4)}
    target = {"w": torch.ones(4)}
    assert float(parameter_distance({"w": torch.ones(4)}, start, target)) == 0.0
    assert float(parameter_distance({"w": torch.full((4,), 0.5)}, start, target)) == 0.25


def test_student_steps_are_sgd_and_reach_clips_and_lr(protocol, experts):
    torch.manual_seed(0)
    net = build_net(protocol.net("minic3d-in"), 10).eval()     # no dropout: compare exactly
    start = experts.snapshot(0, 0)
    clips = _clips().requires_grad_(True)
    lr = torch.tensor(0.05, requires_grad=True)
    plan = plan_student(np.random.default_rng(1), 10, 1, 0, SIZE, None, (1.0, 1.0), False)
    student = unroll_student(net, start, clips, torch.arange(10), lr, plan, _normalize(protocol))
    # One step by hand: an ordinary SGD step of the same net on the same batch.
    reference = build_net(protocol.net("minic3d-in"), 10).eval()
    reference.load_state_dict(start, strict=False)
    loss = torch.nn.functional.cross_entropy(
        reference(_normalize(protocol)(clips.detach()[torch.from_numpy(plan.batches[0])])),
        torch.arange(10)[torch.from_numpy(plan.batches[0])])
    loss.backward()
    for name, param in reference.named_parameters():
        torch.testing.assert_close(student[name], param.detach() - 0.05 * param.grad)
    distance = sum((student[n] - start[n]).pow(2).sum() for n in start)
    distance.backward()
    assert clips.grad is not None and float(clips.grad.abs().sum()) > 0
    assert lr.grad is not None and float(lr.grad) != 0.0


def test_minibatches_cover_every_clip_before_repeating():
    plan = plan_student(np.random.default_rng(3), 10, 5, 4, SIZE, None, (1.0, 1.0), False)
    first_pass = np.concatenate(plan.batches[:3])
    assert sorted(first_pass.tolist()) == list(range(10))
    assert [len(b) for b in plan.batches] == [4, 4, 2, 4, 4]


@pytest.mark.slow   # 77 s on a loaded core (3 Dec); CI runs it in its `pytest -m slow` step
def test_a_tiny_run_lowers_its_loss(protocol, experts, task):
    cfg = MTT.Config(iterations=8, syn_steps=2, expert_epochs=1, max_start_epoch=1, batch_syn=0,
                 augment=False, lr_img=300.0, lr_lr=1e-5, syn_lr=0.2)
    clips = _clips(seed=4)
    objective = TrajectoryObjective(task, cfg, clips.clone(), torch.arange(10), experts, [0])
    objective.net.eval()        # without dropout every iteration matches the same segment
    losses = [objective.step(i) for i in range(cfg.iterations)]
    assert losses[-1] < 0.9 * losses[0], losses
    assert not torch.equal(objective.clips.detach(), clips)
    assert float(objective.syn_lr.detach()) != 0.2          # the learning rate learns too
    assert set(objective.tensors()) == {"clips", "syn_lr"}


def test_a_run_without_experts_says_how_to_make_them(protocol, tmp_path, monkeypatch):
    monkeypatch.setenv("VDCBENCH_CACHE", str(tmp_path))
    track = protocol.track("synthetic", "ipc1-t8")
    task = CondensationTask(protocol, track, "hard", 0, ArtifactStore(tmp_path / "a"))
    with pytest.raises(VdcError) as caught:
        MTT(MTT.config_from_strings({"preset": "tiny"})).condense(task)
    assert "vdcbench experts train --dataset synthetic" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_config_refuses_bad_values_and_records_the_preset():
    with pytest.raises(VdcError):
        MTT.config_from_strings({"syn_steps": "-1"})
    with pytest.raises(VdcError):
        MTT.config_from_strings({"preset": "nosuch"})
    cpu = MTT.config_from_strings({"preset": "cpu"})
    assert cpu.preset == "cpu" and cpu.iterations < MTT.Config().iterations
    assert MTT.config_from_strings({"preset": "cpu", "iterations": "7"}).iterations == 7
