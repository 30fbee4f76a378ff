"""The three ResNet-18 video nets: output and per-stage shapes, parameter counts in closed form.

Counts are computed here from the layer definitions of mmaction2's depth-18 backbones
(vdcbench/models/video_resnets.py gives the sources): conv weights (no biases: every conv is
followed by a norm), BN affine (2 per channel), and the head Linear(512, K) + bias. Inputs are
batch 1 and the module runs single-threaded to stay light.
"""

from __future__ import annotations

import math

import pytest
import torch
from pytorchvideo.models.resnet import ResBlock, ResStage
from torch import nn

from vdcbench.models.resnet_blocks import BasicBlock, mmaction_2plus1d_inner_channels
from vdcbench.models.video_resnets import INITS, VIDEO_RESNETS, VideoResNet

NAMES = ("r2plus1d_r18", "i3d_r18", "slowonly_r18")
K3, K1 = (3, 3, 3), (1, 3, 3)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ------------------------------------------------------------------------------------------
# Closed form.

def conv(c_in: int, c_out: int, kernel) -> int:
    return c_in * c_out * math.prod(kernel)


def bn(c: int) -> int:
    return 2 * c


def conv2plus1d(c_in: int, c_out: int, kernel) -> int:
    """mmaction2 Conv2plus1d: conv_s (1,kh,kw) to M, BN(M), conv_t (kt,1,1) to c_out; M uses a
    literal 3, not kt."""
    kt, kh, kw = kernel
    m = (3 * c_in * c_out * kh * kw) // (c_in * kh * kw + 3 * c_out)
    return c_in * m * kh * kw + bn(m) + m * c_out * kt


def head(num_classes: int) -> int:
    return 512 * num_classes + num_classes


def basic_block(c_in: int, c_out: int, kernel, project: bool, conv_fn=conv) -> int:
    """Two convs (each + BN) and, when the block projects, a 1x1x1 shortcut conv + BN."""
    total = conv_fn(c_in, c_out, kernel) + bn(c_out) + conv_fn(c_out, c_out, kernel) + bn(c_out)
    if project:
        total += conv_fn(c_in, c_out, (1, 1, 1)) + bn(c_out)
    return total


def stages(kernels, conv_fn=conv) -> list[int]:
    """kernels[i] = the two blocks' kernels of stage i; stages 2-4 project in their first block."""
    widths = (64, 64, 128, 256, 512)
    return [basic_block(widths[i], widths[i + 1], kernels[i][0], i > 0, conv_fn)
            + basic_block(widths[i + 1], widths[i + 1], kernels[i][1], False, conv_fn)
            for i in range(4)]


def closed_form(name: str) -> dict[str, int | list[int]]:
    """Backbone parameters by part: stem, stages (head is ``head(K)``)."""
    if name == "r2plus1d_r18":
        # Stem: Conv2plus1d (3,7,7) -> BN; every block (2+1)D 3x3x3, shortcuts (2+1)D 1x1x1.
        return {"stem": conv2plus1d(3, 64, (3, 7, 7)) + bn(64),
                "stages": stages([(K3, K3)] * 4, conv2plus1d)}
    if name == "i3d_r18":
        # Stem: Conv3d (5,7,7) -> BN; inflate ((1,1),(1,0),(1,0),(1,0)).
        return {"stem": conv(3, 64, (5, 7, 7)) + bn(64),
                "stages": stages([(K3, K3), (K3, K1), (K3, K1), (K3, K1)])}
    if name == "slowonly_r18":
        # Stem: Conv3d (1,7,7) -> BN; inflate (0,0,1,1).
        return {"stem": conv(3, 64, (1, 7, 7)) + bn(64),
                "stages": stages([(K1, K1), (K1, K1), (K3, K3), (K3, K3)])}
    raise KeyError(name)


def closed_form_total(name: str, num_classes: int) -> int:
    parts = closed_form(name)
    return parts["stem"] + sum(parts["stages"]) + head(num_classes)


# The totals, also written out, so a change to the closed form itself is seen too.
COUNTS = {
    ("r2plus1d_r18", 101): 33_279_558, ("r2plus1d_r18", 10): 33_232_875,
    ("i3d_r18", 101): 20_850_597, ("i3d_r18", 10): 20_803_914,
    ("slowonly_r18", 101): 31_872_165, ("slowonly_r18", 10): 31_825_482,
}


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def nets() -> dict[str, VideoResNet]:
    built = {}
    for name in NAMES:
        torch.manual_seed(0)
        built[name] = VIDEO_RESNETS[name](10).eval()
    return built


def test_registry_names_match_protocol(protocol):
    assert sorted(VIDEO_RESNETS) == sorted(NAMES)
    for name in NAMES:
        spec = protocol.net(name)
        assert spec.teacher_architecture == name
        assert spec.dropout == 0.5


def test_i3d_closed_form_by_hand():
    # Written out once: stem 3*64*5*49 + 128; stage 1: 4 convs 64*64*27 + 4 BN(64); ...
    stem = 3 * 64 * 5 * 49 + 128
    stage1 = 4 * 64 * 64 * 27 + 4 * 128
    stage2 = (64 * 128 * 27 + 128 * 128 * 27 + 64 * 128) + 2 * 128 * 128 * 9 + 5 * 256
    stage3 = (128 * 256 * 27 + 256 * 256 * 27 + 128 * 256) + 2 * 256 * 256 * 9 + 5 * 512
    stage4 = (256 * 512 * 27 + 512 * 512 * 27 + 256 * 512) + 2 * 512 * 512 * 9 + 5 * 1024
    assert closed_form("i3d_r18") == {"stem": stem, "stages": [stage1, stage2, stage3, stage4]}
    assert stem + stage1 + stage2 + stage3 + stage4 == 20_798_784


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("num_classes", [101, 10])
def test_parameter_count(name, num_classes):
    torch.manual_seed(0)
    net = VIDEO_RESNETS[name](num_classes)
    assert closed_form_total(name, num_classes) == COUNTS[name, num_classes]
    assert count(net) == COUNTS[name, num_classes]
    assert all(p.requires_grad for p in net.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_by_part(nets, name):
    net, parts = nets[name], closed_form(name)
    assert count(net.stem) == parts["stem"]
    assert [count(s) for s in net.stages] == parts["stages"]
    assert count(net.head) == head(10)
    assert all(p.numel() > 0 for p in net.parameters())
    # No conv carries a bias (each is followed by a norm); the head's Linear does.
    assert all(m.bias is None for m in net.modules() if isinstance(m, nn.Conv3d))


# ------------------------------------------------------------------------------------------
# Shapes. Per block of ``net.blocks``: stem, stage 1, [pool2], stages 2-4, head (N, K).

SHAPES = {
    ("r2plus1d_r18", 112): [(64, 8, 28, 28), (64, 8, 28, 28), (128, 4, 14, 14), (256, 2, 7, 7),
                            (512, 1, 4, 4)],
    ("r2plus1d_r18", 56): [(64, 8, 14, 14), (64, 8, 14, 14), (128, 4, 7, 7), (256, 2, 4, 4),
                           (512, 1, 2, 2)],
    ("i3d_r18", 112): [(64, 2, 28, 28), (64, 2, 28, 28), (64, 1, 28, 28), (128, 1, 14, 14),
                       (256, 1, 7, 7), (512, 1, 4, 4)],
    ("i3d_r18", 56): [(64, 2, 14, 14), (64, 2, 14, 14), (64, 1, 14, 14), (128, 1, 7, 7),
                      (256, 1, 4, 4), (512, 1, 2, 2)],
    ("slowonly_r18", 112): [(64, 8, 28, 28), (64, 8, 28, 28), (128, 8, 14, 14), (256, 8, 7, 7),
                            (512, 8, 4, 4)],
    ("slowonly_r18", 56): [(64, 8, 14, 14), (64, 8, 14, 14), (128, 8, 7, 7), (256, 8, 4, 4),
                           (512, 8, 2, 2)],
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("side", [112, 56])
def test_output_and_stage_shapes(nets, name, side):
    net = nets[name]
    seen: list[tuple[str, tuple[int, ...]]] = []

    def hook(module, _inputs, output):
        kind = "stage" if isinstance(module, ResStage) else type(module).__name__
        seen.append((kind, tuple(output.shape)))

    handles = [b.register_forward_hook(hook) for b in net.blocks]
    try:
        with torch.no_grad():
            out = net(torch.randn(1, 3, 8, side, side))
    finally:
        for h in handles:
            h.remove()
    assert out.shape == (1, 10)
    assert [shape[1:] for _, shape in seen[:-1]] == SHAPES[name, side]
    assert seen[-1] == ("ResNetBasicHead", (1, 10))
    stage_shapes = [shape[1:] for kind, shape in seen if kind == "stage"]
    assert len(stage_shapes) == 4
    assert [s[0] for s in stage_shapes] == [64, 128, 256, 512]
    pool2 = ["MaxPool3d"] if name == "i3d_r18" else []        # pool2 only in I3D, after stage 1
    assert [kind for kind, _ in seen] == (["ResNetBasicStem", "stage"] + pool2 + ["stage"] * 3
                                          + ["ResNetBasicHead"])


@pytest.mark.parametrize("name", NAMES)
def test_embed_is_the_pooled_feature(nets, name):
    net = nets[name]
    x = torch.randn(1, 3, 8, 56, 56)
    with torch.no_grad():
        feature = net.embed(x)
        logits = net(x)
    assert feature.shape == (1, net.feature_dim) == (1, 512)
    torch.testing.assert_close(logits, net.head.proj(feature))


# ------------------------------------------------------------------------------------------
# Layer definitions.

def main_convs(stage: ResStage) -> list[nn.Module]:
    return [conv for block in stage.res_blocks for conv in (block.branch2.conv_a, block.branch2.conv_b)]


@pytest.mark.parametrize("name, kernels", [
    ("i3d_r18", [[K3] * 4, [K3, K3, K1, K1], [K3, K3, K1, K1], [K3, K3, K1, K1]]),
    ("slowonly_r18", [[K1] * 4, [K1] * 4, [K3] * 4, [K3] * 4]),
])
def test_3d_kernels_strides_and_stem(nets, name, kernels):
    net = nets[name]
    for i, stage in enumerate(net.stages):
        convs = main_convs(stage)
        assert [c.kernel_size for c in convs] == kernels[i]
        assert [c.padding for c in convs] == [tuple(k // 2 for k in kernel) for kernel in kernels[i]]
        first = (1, 1, 1) if i == 0 else (1, 2, 2)
        assert [c.stride for c in convs] == [first, (1, 1, 1), (1, 1, 1), (1, 1, 1)]
        skip = stage.res_blocks[0].branch1_conv
        assert (skip is None) == (i == 0)
        if skip is not None:
            assert (skip.kernel_size, skip.stride) == ((1, 1, 1), (1, 2, 2))
        assert stage.res_blocks[1].branch1_conv is None
        assert all(isinstance(b, ResBlock) and isinstance(b.branch2, BasicBlock)
                   for b in stage.res_blocks)
    stem = net.stem
    expect = {"i3d_r18": ((5, 7, 7), (2, 2, 2), (2, 3, 3), (2, 2, 2)),
              "slowonly_r18": ((1, 7, 7), (1, 2, 2), (0, 3, 3), (1, 2, 2))}[name]
    assert (stem.conv.kernel_size, stem.conv.stride, stem.conv.padding, stem.pool.stride) == expect
    assert stem.pool.kernel_size == (1, 3, 3) and stem.pool.padding == (0, 1, 1)


def test_2plus1d_inner_channels_and_strides(nets):
    # mmaction2 Conv2plus1d's middle width; torchvision's stem would use 45, its shortcuts none.
    assert mmaction_2plus1d_inner_channels(3, 64, (3, 7, 7)) == 83
    net = nets["r2plus1d_r18"]
    stem = net.stem.conv
    assert (stem.conv_xy.in_channels, stem.conv_xy.out_channels, stem.conv_t.out_channels) == (3, 83, 64)
    assert (stem.conv_xy.kernel_size, stem.conv_xy.stride, stem.conv_xy.padding) == ((1, 7, 7), (1, 2, 2), (0, 3, 3))
    assert (stem.conv_t.kernel_size, stem.conv_t.padding) == ((3, 1, 1), (1, 0, 0))
    assert stem.conv_xy_first and stem.norm.num_features == 83
    assert net.stem.norm.eps == 1e-3 and stem.norm.eps == 1e-5
    mids = [[c.conv_xy.out_channels for c in main_convs(s)] for s in net.stages]
    assert mids == [[144] * 4, [230, 288, 288, 288], [460, 576, 576, 576], [921, 1152, 1152, 1152]]
    skips = [s.res_blocks[0].branch1_conv for s in net.stages]
    assert skips[0] is None
    assert [s.conv_xy.out_channels for s in skips[1:]] == [54, 109, 219]
    for s in skips[1:]:
        assert (s.conv_xy.kernel_size, s.conv_xy.stride) == ((1, 1, 1), (1, 2, 2))
        assert (s.conv_t.kernel_size, s.conv_t.stride) == ((1, 1, 1), (2, 1, 1))
    for i, stage in enumerate(net.stages):
        first = stage.res_blocks[0].branch2.conv_a
        t, s = (1, 1) if i == 0 else (2, 2)
        assert (first.conv_xy.stride, first.conv_t.stride) == ((1, s, s), (t, 1, 1))


# ------------------------------------------------------------------------------------------
# Initialisation and gradients.

@pytest.mark.parametrize("name", NAMES)
def test_default_init_is_pytorch_default_and_seeded(name):
    torch.manual_seed(3)
    a = VIDEO_RESNETS[name](10)
    torch.manual_seed(3)
    b = VIDEO_RESNETS[name](10)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    for m in a.modules():
        if isinstance(m, (nn.Conv3d, nn.Linear)):
            fan_in = m.weight[0].numel()          # kaiming_uniform(a=sqrt 5): bound 1/sqrt(fan_in)
            assert m.weight.abs().max() <= 1 / math.sqrt(fan_in) + 1e-7
        if isinstance(m, nn.BatchNorm3d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


def test_reference_init_is_msra_convs_and_default_head():
    assert INITS == ("pytorch-default", "reference", "pytorchvideo")
    torch.manual_seed(0)
    net = VIDEO_RESNETS["slowonly_r18"](10, init="reference")
    conv = net.stages[3].res_blocks[1].branch2.conv_b          # 512x512x3x3x3
    fan_out = conv.weight.shape[0] * math.prod(conv.kernel_size)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.02)
    assert net.head.proj.weight.abs().max() <= 1 / math.sqrt(512)
    assert net.head.proj.weight.std().item() > 0.02               # not PyTorchVideo's std 0.01
    with pytest.raises(ValueError):
        VIDEO_RESNETS["i3d_r18"](10, init="xavier")


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    net = VIDEO_RESNETS[name](10).train()
    loss = net(torch.randn(1, 3, 8, 56, 56)).logsumexp(1).sum()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
