"""MiniC3D from the registry: parameter counts (also in closed form), shapes, registry errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vdcbench.core.errors import UnknownNameError
from vdcbench.models import build_net, net_names
from vdcbench.models.minic3d import MiniC3D
from vdcbench.protocol import NetSpec, load_protocol

P = load_protocol(1)

# The digest's table (reference-code-digest.md section 2.1).
COUNTS = {101: 3_654_885, 51: 3_648_435, 400: 3_693_456, 174: 3_664_302}


def closed_form_params(num_classes: int, spec: NetSpec) -> int:
    """Conv3d weights + biases, norm affine (weight + bias per channel), Linear(C, K) + bias."""
    widths = (3, *spec.params["channels"])
    kernel_volume = math.prod(spec.params["kernel"])
    total = 0
    for c_in, c_out in zip(widths, widths[1:]):
        total += c_in * c_out * kernel_volume + c_out     # conv weight + bias
        total += 2 * c_out                                 # BN3d / GroupNorm affine
    total += widths[-1] * num_classes + num_classes        # fc
    return total


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_net_names():
    assert net_names() == ["i3d_r18", "minic3d", "minic3d-in", "r2plus1d_r18", "slowonly_r18"]
    assert set(net_names()) == set(P.nets)   # every net the protocol declares is built


def test_closed_form_backbone_matches_digest():
    spec = P.net("minic3d")
    assert closed_form_params(0, spec) == 3_641_856
    assert closed_form_params(0, spec) - 640 == 3_641_216   # convs only


@pytest.mark.parametrize("name", ["minic3d", "minic3d-in"])
@pytest.mark.parametrize("classes", sorted(COUNTS))
def test_parameter_count(name, classes):
    spec = P.net(name)
    net = build_net(spec, classes)
    assert isinstance(net, MiniC3D)
    assert count(net) == COUNTS[classes]
    assert closed_form_params(classes, spec) == COUNTS[classes]
    assert all(p.requires_grad for p in net.parameters())


def test_parameter_count_for_protocol_datasets():
    spec = P.net("minic3d")
    for ds, classes in (("ucf101", 101), ("hmdb51", 51), ("kinetics400", 400), ("ssv2", 174)):
        assert P.dataset(ds).num_classes == classes
        assert count(build_net(spec, classes)) == COUNTS[classes]
    assert count(build_net(spec, 10)) == closed_form_params(10, spec) == 3_641_856 + 1290


def test_norm_layers():
    bn = build_net(P.net("minic3d"), 10)
    inn = build_net(P.net("minic3d-in"), 10)
    assert [type(b[1]) for b in bn.features] == [nn.BatchNorm3d] * 3
    assert [type(b[1]) for b in inn.features] == [nn.GroupNorm] * 3
    for block, channels in zip(inn.features, (64, 128, 128)):
        assert block[1].num_groups == channels == block[1].num_channels   # instance norm
        assert block[1].affine
    for block in bn.features:
        conv = block[0]
        assert conv.kernel_size == (3, 7, 7) and conv.stride == (1, 2, 2)
        assert conv.padding == (1, 3, 3)
    assert [tuple(b[3].kernel_size) for b in bn.features] == [(1, 2, 2), (2, 2, 2), (2, 2, 2)]
    assert bn.dropout.p == 0.5 and bn.fc.in_features == 128 and bn.fc.out_features == 10


def _block_shapes(net: nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    shapes = []
    with torch.no_grad():
        for block in net.features:
            x = block(x)
            shapes.append(tuple(x.shape))
    return shapes


@pytest.mark.parametrize("name", ["minic3d", "minic3d-in"])
@pytest.mark.parametrize("side, expected", [
    (112, [(8, 28, 28), (4, 7, 7), (2, 2, 2)]),
    (56, [(8, 14, 14), (4, 3, 3), (2, 1, 1)]),
])
def test_feature_map_shapes(name, side, expected):
    torch.manual_seed(0)
    net = build_net(P.net(name), 7).eval()
    x = torch.randn(2, 3, 8, side, side)
    shapes = _block_shapes(net, x)
    assert shapes == [(2, c, *s) for c, s in zip((64, 128, 128), expected)]
    with torch.no_grad():
        out = net(x)
        emb = net.embed(x)
    assert out.shape == (2, 7)
    assert emb.shape == (2, 128)
    assert torch.isfinite(out).all()
    # forward = fc(dropout(embed)), dropout is the identity in eval mode
    assert torch.allclose(out, net.fc(emb), atol=1e-6)


def test_embed_is_nonnegative_average_of_relu_maps():
    torch.manual_seed(0)
    net = build_net(P.net("minic3d"), 5).eval()
    x = torch.randn(3, 3, 8, 56, 56)
    with torch.no_grad():
        emb = net.embed(x)
        maps = net.features(x)
    assert emb.shape == (3, 128)
    assert (emb >= 0).all()
    assert torch.allclose(emb, maps.mean(dim=(2, 3, 4)), atol=1e-6)


def test_build_is_deterministic_under_seed():
    torch.manual_seed(3)
    a = build_net(P.net("minic3d"), 10)
    torch.manual_seed(3)
    b = build_net(P.net("minic3d"), 10)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)


@pytest.mark.parametrize("name", ["r2plus1d_r18", "i3d_r18", "slowonly_r18"])
def test_resnet_nets_are_built_with_the_protocol_dropout(name):
    net = build_net(P.net(name), 101)
    assert net(torch.zeros(1, 3, 8, 56, 56)).shape == (1, 101)
    assert any(isinstance(m, torch.nn.Dropout) and m.p == P.net(name).dropout for m in net.modules())


def test_unknown_net_name():
    fake = NetSpec(name="minic4d", description="", teacher_architecture="minic4d", dropout=0.5,
                   params={})
    with pytest.raises(UnknownNameError, match=r"unknown net 'minic4d'; did you mean 'minic3d'\?"):
        build_net(fake, 10)
    with pytest.raises(UnknownNameError):
        P.net("minic4d")


def test_a_typed_prefix_is_suggested_before_a_longer_lookalike():
    # difflib alone ranks 'minic3d' level with 'i3d_r18' for 'i3d'; the unique prefix wins.
    with pytest.raises(UnknownNameError, match=r"unknown net 'i3d'; did you mean 'i3d_r18'\?"):
        P.net("i3d")
    with pytest.raises(UnknownNameError, match=r"did you mean 'minic3d'\?"):
        P.net("minic4d")
