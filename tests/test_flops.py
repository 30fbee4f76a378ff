"""Net costs: fvcore's FLOP count against a closed form, the cache, and ``vdcbench nets``."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from vdcbench.cli import main
from vdcbench.models import build_net
from vdcbench.models.flops import (TRAIN_FACTOR, clip_shape, count_forward_gflops, net_cost,
                                   training_gflops)

EVALUATION_NETS = ("minic3d", "r2plus1d_r18", "i3d_r18", "slowonly_r18")


def _conv_macs(c_in: int, c_out: int, kernel, out_thw) -> int:
    t, h, w = out_thw
    return c_out * t * h * w * c_in * kernel[0] * kernel[1] * kernel[2]


def test_minic3d_forward_gflops_match_the_closed_form(protocol):
    """Convs and the linear head in closed form at 8×56×56; BN (elementwise) adds under 0.2 %."""
    k = (3, 7, 7)
    # conv s(1,2,2) p(1,3,3): 8×56×56 -> 8×28×28; pool (1,2,2) -> 8×14×14; conv -> 8×7×7;
    # pool (2,2,2) -> 4×3×3; conv -> 4×2×2 (floor((3 + 6 - 7) / 2) + 1 = 2).
    macs = (_conv_macs(3, 64, k, (8, 28, 28)) + _conv_macs(64, 128, k, (8, 7, 7))
            + _conv_macs(128, 128, k, (4, 2, 2)) + 128 * 10)
    cost = net_cost(protocol.net("minic3d"), 10, frames=8, crop=56)
    assert cost.input_shape == (1, 3, 8, 56, 56) == clip_shape(8, 56)
    assert 2 * macs / 1e9 <= cost.forward_gflops <= 2 * macs / 1e9 * 1.002
    assert cost.parameters == sum(p.numel() for p in build_net(protocol.net("minic3d"), 10).parameters())
    assert cost.train_gflops_per_clip == pytest.approx(TRAIN_FACTOR * cost.forward_gflops)


@pytest.mark.parametrize("name, gflops", [("minic3d", 1.377), ("r2plus1d_r18", 3.066),
                                          ("i3d_r18", 0.986), ("slowonly_r18", 4.184)])
def test_forward_gflops_of_each_net_at_the_synthetic_track(protocol, name, gflops):
    """The figures `vdcbench nets` lists (fvcore 0.1.5); a changed net definition shows here."""
    assert net_cost(protocol.net(name), 10, 8, 56).forward_gflops == pytest.approx(gflops, abs=1e-3)


def test_cost_is_cached_and_leaves_the_callers_rng_alone(protocol):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    first = net_cost(protocol.net("minic3d"), 7, 8, 56)        # 7 classes: not cached yet
    assert torch.equal(torch.rand(3), expected)
    assert net_cost(protocol.net("minic3d"), 7, 8, 56) is first


def test_counting_restores_the_training_mode(protocol):
    net = build_net(protocol.net("minic3d"), 10).train()
    assert count_forward_gflops(net, clip_shape(8, 56)) > 0 and net.training


def test_training_compute_counts_three_forwards_and_an_online_teacher(protocol):
    student = net_cost(protocol.net("i3d_r18"), 10, 8, 56)
    teacher = net_cost(protocol.net("minic3d"), 10, 8, 56)
    assert training_gflops(student, 100) == pytest.approx(300 * student.forward_gflops)
    assert training_gflops(student, 100, teacher) == pytest.approx(
        100 * (3 * student.forward_gflops + teacher.forward_gflops))


def test_nets_command_lists_every_protocol_net(protocol):
    result = CliRunner().invoke(main, ["nets"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "3×8×56×56, 10 classes" in result.output
    for name in protocol.nets:
        row = next(line for line in result.output.splitlines() if f" {name} " in line)
        cost = net_cost(protocol.net(name), 10, 8, 56)
        assert f"{cost.parameters:,}" in row and f"{cost.forward_gflops:.3f}" in row


def test_nets_command_uses_a_real_data_sets_crop_and_classes():
    result = CliRunner().invoke(main, ["nets", "--dataset", "hmdb51"], catch_exceptions=False)
    assert result.exit_code == 0 and "3×8×112×112, 51 classes" in result.output


@pytest.mark.parametrize("args, message", [
    (["nets", "--dataset", "folder"], "pass --classes"),
    (["nets", "--dataset", "ucf"], "unknown data set"),
])
def test_nets_command_user_errors_are_one_line(args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
