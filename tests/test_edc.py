"""EDC: the BatchNorm statistics it reads, its loss, its batch-by-batch optimisation and resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from vdcbench.core.errors import VdcError
from vdcbench.methods.bn_statistics import (BNInputs, ClassStatistics, batch_statistics,
                                            bn_layers, class_statistics, sample_statistics)
from vdcbench.methods.edc import (Config, EDCObjective, MatchedTeacher, class_batches,
                                  statistic_loss)
from vdcbench.methods.shared_augment import shared_augment
from vdcbench.models.minic3d import MiniC3D
from vdcbench.train.augment import Normalize


NORMALIZE = Normalize([0.45] * 3, [0.225] * 3)


def _real_data(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised clips whose brightness depends on the class: a learnable, reachable target."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % 3
    pixels = 0.25 * torch.rand(count, 3, 4, 16, 16, generator=generator) + 0.25 * labels.view(
        -1, 1, 1, 1, 1)
    return NORMALIZE(pixels), labels


def _tiny_net(classes: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(),
                        nn.Conv3d(4, 6, 3, stride=2, padding=1), nn.BatchNorm3d(6), nn.ReLU(),
                        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(6, classes))
    for layer in bn_layers(net):
        layer.momentum = None      # a cumulative average: the data's statistics after 5 batches
    net.train()
    with torch.no_grad():      # running statistics of the data, as a trained teacher has
        for k in range(5):
            net(_real_data(12, k)[0])
    return net.eval()


def test_the_hooks_read_exactly_the_batch_statistics_batchnorm3d_normalises_by():
    torch.manual_seed(0)
    net = MiniC3D(5).train()
    for layer in bn_layers(net):
        layer.momentum = 1.0          # running stats := this batch's (the variance unbiased)
        with torch.no_grad():
            layer.weight.uniform_(0.5, 2.0)
            layer.bias.uniform_(-1.0, 1.0)
    outputs = {}     # cloned: the ReLU after each BatchNorm works in place
    handles = [layer.register_forward_hook(lambda m, a, out, i=i: outputs.__setitem__(i, out.clone()))
               for i, layer in enumerate(bn_layers(net))]
    x = torch.randn(4, 3, 8, 56, 56)
    with BNInputs(net) as hooks:
        net(x)
    for handle in handles:
        handle.remove()
    assert len(hooks.inputs) == 3 and not hooks._handles
    for i, (layer, captured) in enumerate(zip(hooks.layers, hooks.inputs)):
        mean, var = batch_statistics(captured)
        n = captured.numel() // captured.shape[1]
        torch.testing.assert_close(mean, layer.running_mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(var * n / (n - 1), layer.running_var, rtol=1e-4, atol=1e-6)
        shape = (1, -1, 1, 1, 1)
        expected = ((captured - mean.view(shape)) / torch.sqrt(var.view(shape) + layer.eps)
                    * layer.weight.view(shape) + layer.bias.view(shape))
        torch.testing.assert_close(outputs[i], expected, rtol=1e-4, atol=1e-4)


def test_class_statistics_are_the_mean_over_a_class_of_each_clips_statistics():
    net = _tiny_net()
    clips = torch.randn(7, 3, 4, 16, 16)
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 2])
    stats = class_statistics(net, [(clips[:3], labels[:3]), (clips[3:], labels[3:])], 3)
    with BNInputs(net) as hooks, torch.no_grad():
        net(clips)
    for layer, captured in enumerate(hooks.inputs):
        mean, var = sample_statistics(captured)
        for c in range(3):
            rows = labels == c
            torch.testing.assert_close(stats.means[layer][c], mean[rows].mean(0))
            torch.testing.assert_close(stats.variances[layer][c], var[rows].mean(0))
    assert stats.counts.tolist() == [3, 2, 2]
    assert stats.matches(net, 3) and not stats.matches(net, 4)
    again = ClassStatistics.from_tensors(stats.to_tensors())
    assert all(torch.equal(a, b) for a, b in zip(again.variances, stats.variances))
    with pytest.raises(ValueError, match="class 3 has no clips"):
        class_statistics(net, [(clips, labels)], 4)


def test_the_statistic_loss_is_zero_on_target_and_mixes_global_and_class_terms():
    mean, var = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.25])
    assert float(statistic_loss(mean, var, (mean, var, mean, var), 0.5)) == 0.0
    off = (mean + torch.tensor([3.0, 4.0]), var, mean, var)       # global mean off by 5
    assert float(statistic_loss(mean, var, off, 0.5)) == pytest.approx(2.5)
    assert float(statistic_loss(mean, var, off, 0.0)) == pytest.approx(5.0)
    assert float(statistic_loss(mean, var, off, 1.0)) == pytest.approx(0.0)


def _objective(config: Config, teachers, clips, labels):
    return EDCObjective(config, clips.clone(), labels, teachers, NORMALIZE,
                        shared_augment((config.min_scale, 1.0), (0.75, 4 / 3), True),
                        lambda iteration: np.random.default_rng([9, iteration]))


def _teachers(count: int = 1):
    teachers = []
    for t in range(count):
        net = _tiny_net(seed=t)
        stats = class_statistics(net, [_real_data(12, 40 + t)], 3)
        teachers.append(MatchedTeacher(f"t{t}", net, stats))
    return teachers


def _clips():
    return torch.rand(6, 3, 4, 16, 16, generator=torch.Generator().manual_seed(1)), \
        torch.tensor([0, 0, 1, 1, 2, 2])


def test_edc_optimises_its_batches_in_turn_and_lowers_its_loss():
    clips, labels = _clips()
    config = Config(iterations=15, batch_size=4, lr=0.05, r_loss=1.0, ema_momentum=0.0,
                    min_scale=1.0)
    objective = _objective(config, _teachers(), clips, labels)
    assert [b.tolist() for b in objective.batches] == [[0, 1, 2, 3], [4, 5]]
    losses = [objective.step(i) for i in range(15)]
    assert losses[-1] < 0.5 * losses[0], losses
    after_first = objective.clips.clone()
    assert not torch.equal(after_first[:4], clips[:4]) and torch.equal(after_first[4:], clips[4:])
    for i in range(15, 30):
        objective.step(i)
    assert torch.equal(objective.clips[:4], after_first[:4])     # batch 0 is finished
    assert not torch.equal(objective.clips[4:], clips[4:])
    assert float(objective.clips.min()) >= 0.0 and float(objective.clips.max()) <= 1.0


def test_teachers_take_turns_and_each_keeps_its_own_moving_averages():
    clips, labels = _clips()
    teachers = _teachers(2)
    seen = []
    for t, teacher in enumerate(teachers):
        bn_layers(teacher.net)[0].register_forward_pre_hook(lambda m, a, t=t: seen.append(t))
    objective = _objective(Config(iterations=4, batch_size=6, lr=0.01), teachers, clips, labels)
    for i in range(4):
        objective.step(i)
    assert seen == [0, 1, 0, 1]
    assert set(objective.ema) == {f"ema.{t}.{l}.{s}" for t in (0, 1) for l in (0, 1)
                                  for s in ("mean", "var")}
    assert all(float(v.abs().sum()) > 0 for v in objective.ema.values())


@pytest.mark.parametrize("stop", [3, 5, 6])     # mid-batch, mid-second-batch, a batch boundary
def test_a_resumed_edc_objective_continues_exactly(stop):
    clips, labels = _clips()
    config = Config(iterations=5, batch_size=4, lr=0.02)
    unbroken = _objective(config, _teachers(), clips, labels)
    expected = [unbroken.step(i) for i in range(10)]
    first = _objective(config, _teachers(), clips, labels)
    losses = [first.step(i) for i in range(stop)]
    state = first.state_dict()
    second = _objective(config, _teachers(), clips, labels)
    second.load_state_dict(state, stop)
    losses += [second.step(i) for i in range(stop, 10)]
    assert losses == expected
    assert torch.equal(second.clips, unbroken.clips)


def test_class_batches_cover_every_clip_once_in_order():
    batches = class_batches(10, 4)
    assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [b.tolist() for b in class_batches(3, 80)] == [[0, 1, 2]]


def test_edc_config_presets_and_refusals():
    cpu = Config(preset="cpu")
    assert (cpu.iterations, cpu.init_mipc, cpu.lr) == (200, 20, Config().lr)
    assert Config(preset="cpu", iterations=50).iterations == 50
    assert Config(teachers="minic3d, i3d_r18").teacher_names() == ("minic3d", "i3d_r18")
    for bad in ({"teachers": " , "}, {"category_weight": 1.5}, {"ema_momentum": 1.0},
                {"storage": "bfloat16"}, {"min_scale": 0.0}, {"iterations": 0}):
        with pytest.raises(VdcError):
            Config(**bad)


def test_cli_lists_edcs_keys_and_refuses_an_unknown_preset(tmp_path):
    from vdcbench.cli import main
    runner = CliRunner()
    shown = runner.invoke(main, ["methods", "edc"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "edc (distillation)" in shown.output
    for key in ("first_bn_weight", "category_weight", "teachers", "preset", "storage"):
        assert key in shown.output
    bad = runner.invoke(main, ["run-baseline", "edc", "--dataset", "synthetic", "--ipc", "1",
                               "--set", "preset=gpu", "-o", str(tmp_path / "x.tar")])
    assert bad.exit_code == 2 and "edc preset 'gpu' is unknown (known: cpu, tiny)" in bad.output
    net = runner.invoke(main, ["run-baseline", "edc", "--dataset", "synthetic", "--ipc", "1",
                               "--set", "teachers=minic3d,i3d", "-o", str(tmp_path / "x.tar")])
    assert net.exit_code == 2 and "unknown net 'i3d'" in net.output
    assert "Traceback" not in net.output
