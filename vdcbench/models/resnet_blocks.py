"""Basic (two-conv) residual blocks for video ResNet-18s, in PyTorchVideo's builder style.

PyTorchVideo (``pytorchvideo.models``) ships bottleneck blocks only. This module adds the
two-conv *basic* block of mmaction2's ``BasicBlock3d`` (``mmaction/models/backbones/resnet3d.py``)
and its (2+1)D form (``BasicBlock3d`` with ``conv_cfg=dict(type='Conv2plus1d')``, i.e.
``mmaction/models/common/conv2plus1d.py``), composed from PyTorchVideo pieces: the residual
wrapper is :class:`pytorchvideo.models.resnet.ResBlock`, a stage is
:class:`pytorchvideo.models.resnet.ResStage`, and a (2+1)D convolution is
:func:`pytorchvideo.layers.convolutions.create_conv_2plus1d` (spatial conv first).

Layout of one basic block, as mmaction2 builds it::

    x ──> conv_a (stride here) -> norm_a -> act_a -> conv_b -> norm_b ──> (+) -> ReLU
    └──> [branch1: conv 1x1x1 (same stride) -> norm]  (when shape changes) ──┘

* Every convolution has no bias (it is followed by a norm).
* The stride of the block sits on the first conv (mmaction2 ``BasicBlock3d``:
  ``conv1_stride = (temporal_stride, spatial_stride, spatial_stride)``, ``conv2`` stride 1).
* "Inflated" blocks use 3x3x3 kernels (padding 1,1,1) in *both* convs; non-inflated ones use
  1x3x3 (padding 0,1,1) in both (``BasicBlock3d.__init__``, ``if self.inflate``).
* The shortcut projection is a 1x1x1 conv + norm with the block's stride. mmaction2 builds it
  when ``spatial_stride != 1 or inplanes != planes`` (``ResNet3d.make_res_layer``); this module
  builds it when the channels change or *any* stride is not 1, which is the same on every net
  built here and never produces a shape mismatch.
* The last norm of a block is *not* marked ``block_final_bn`` (no zero-init of the residual
  branch): the study's students were built without ``init_weights()`` (see video_resnets.py).

The (2+1)D convolution (mmaction2 ``Conv2plus1d``) factorises a ``kt x kh x kw`` conv into
``conv_s`` (1 x kh x kw, spatial stride, ``M`` output channels) -> BN3d(M) -> ReLU -> ``conv_t``
(kt x 1 x 1, temporal stride), with the middle width

    M = floor(3 * C_in * C_out * kh * kw / (C_in * kh * kw + 3 * C_out))

The constant 3 is literal in mmaction2's code (it is *not* ``kt``), so the 3x7x7 stem gets
M = 83 and the 1x1x1 shortcut convolutions of the R(2+1)D net (which mmaction2 also builds as
``Conv2plus1d``, because ``make_res_layer`` passes the backbone's ``conv_cfg`` to the
downsample ``ConvModule``) get M = floor(3 C_in C_out / (C_in + 3 C_out)): 54, 109 and 219.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from pytorchvideo.layers.convolutions import Conv2plus1d, create_conv_2plus1d
from pytorchvideo.models.resnet import ResBlock, ResStage
from torch import nn

Triple = tuple[int, int, int]

INFLATED_KERNEL: Triple = (3, 3, 3)
INFLATED_PADDING: Triple = (1, 1, 1)
FLAT_KERNEL: Triple = (1, 3, 3)
FLAT_PADDING: Triple = (0, 1, 1)


def _sum(x, y):
    # A module-level function, not a lambda, so built nets stay picklable.
    return x + y


def mmaction_2plus1d_inner_channels(in_channels: int, out_channels: int,
                                    kernel_size: Sequence[int]) -> int:
    """mmaction2 ``Conv2plus1d``'s middle width (integer floor of its float expression)."""
    kh, kw = kernel_size[1], kernel_size[2]
    return (3 * in_channels * out_channels * kh * kw) // (in_channels * kh * kw + 3 * out_channels)


def create_conv_2plus1d_mmaction(
    *,
    in_channels: int,
    out_channels: int,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    bias: bool = False,
    # Norm and activation *between* the spatial and the temporal conv.
    norm: Callable | None = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    activation: Callable | None = nn.ReLU,
) -> Conv2plus1d:
    """mmaction2's ``Conv2plus1d`` as a PyTorchVideo ``Conv2plus1d`` (spatial conv first).

    Called with ``nn.Conv3d``'s keyword arguments, so it can be passed wherever a builder takes
    a ``conv`` callable (``create_res_basic_stem(conv=...)``, the blocks below). mmaction2
    builds the inner norm from ``Conv2plus1d``'s own default ``norm_cfg=dict(type='BN3d')``
    (eps 1e-5), not from the backbone's ``norm_cfg``.
    """
    kernel_size, stride, padding = tuple(kernel_size), tuple(stride), tuple(padding)
    return create_conv_2plus1d(
        in_channels=in_channels,
        out_channels=out_channels,
        inner_channels=mmaction_2plus1d_inner_channels(in_channels, out_channels, kernel_size),
        conv_xy_first=True,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        bias=bias,
        norm=norm,
        norm_eps=norm_eps,
        norm_momentum=norm_momentum,
        activation=activation,
    )


def conv_2plus1d(*, norm_eps: float = 1e-5, norm_momentum: float = 0.1) -> Callable[..., nn.Module]:
    """A ``conv`` callable building mmaction2 (2+1)D convolutions (BN3d + ReLU inside)."""
    return functools.partial(create_conv_2plus1d_mmaction, norm=nn.BatchNorm3d, norm_eps=norm_eps,
                             norm_momentum=norm_momentum, activation=nn.ReLU)


class BasicBlock(nn.Module):
    """The residual branch of a basic block: conv_a -> norm_a -> act_a -> conv_b -> norm_b.

    The builder is :func:`create_basic_block`; :func:`create_res_basic_block` wraps it in a
    PyTorchVideo ``ResBlock`` (shortcut, sum, final activation).
    """

    def __init__(self, *, conv_a: nn.Module, norm_a: nn.Module | None, act_a: nn.Module | None,
                 conv_b: nn.Module, norm_b: nn.Module | None) -> None:
        super().__init__()
        self.conv_a = conv_a
        self.norm_a = norm_a
        self.act_a = act_a
        self.conv_b = conv_b
        self.norm_b = norm_b

    def forward(self, x):
        x = self.conv_a(x)
        if self.norm_a is not None:
            x = self.norm_a(x)
        if self.act_a is not None:
            x = self.act_a(x)
        x = self.conv_b(x)
        if self.norm_b is not None:
            x = self.norm_b(x)
        return x


def create_basic_block(
    *,
    dim_in: int,
    dim_out: int,
    # Conv configs.
    conv_a_kernel_size: Sequence[int],
    conv_a_stride: Sequence[int],
    conv_a_padding: Sequence[int],
    conv_b_kernel_size: Sequence[int],
    conv_b_padding: Sequence[int],
    conv: Callable = nn.Conv3d,
    # Norm configs.
    norm: Callable | None = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    # Activation configs.
    activation: Callable | None = nn.ReLU,
) -> BasicBlock:
    """The two-conv residual branch. ``conv`` is called with ``nn.Conv3d``'s keyword arguments
    (``nn.Conv3d`` for the 3D block, :func:`conv_2plus1d` for the (2+1)D block); convs have no
    bias; the stride is on ``conv_a`` and ``conv_b`` has stride 1 (mmaction2 ``BasicBlock3d``)."""

    def make_norm():
        return None if norm is None else norm(num_features=dim_out, eps=norm_eps,
                                              momentum=norm_momentum)

    return BasicBlock(
        conv_a=conv(in_channels=dim_in, out_channels=dim_out, kernel_size=tuple(conv_a_kernel_size),
                    stride=tuple(conv_a_stride), padding=tuple(conv_a_padding), bias=False),
        norm_a=make_norm(),
        act_a=None if activation is None else activation(),
        conv_b=conv(in_channels=dim_out, out_channels=dim_out, kernel_size=tuple(conv_b_kernel_size),
                    stride=(1, 1, 1), padding=tuple(conv_b_padding), bias=False),
        norm_b=make_norm(),
    )


def create_res_basic_block(
    *,
    dim_in: int,
    dim_out: int,
    # Conv configs.
    conv_a_kernel_size: Sequence[int],
    conv_a_stride: Sequence[int],
    conv_a_padding: Sequence[int],
    conv_b_kernel_size: Sequence[int],
    conv_b_padding: Sequence[int],
    conv: Callable = nn.Conv3d,
    conv_skip: Callable = nn.Conv3d,
    # Norm configs.
    norm: Callable | None = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    # Activation configs.
    activation_block: Callable | None = nn.ReLU,
    activation: Callable | None = nn.ReLU,
) -> ResBlock:
    """A basic residual block as a PyTorchVideo ``ResBlock``.

    The shortcut (branch1) is ``conv_skip`` 1x1x1 with ``conv_a_stride``, no bias, then ``norm``;
    it exists when ``dim_in != dim_out`` or the stride is not 1. ``activation`` is the one inside
    the branch (after conv_a), ``activation_block`` the one after the sum.
    """
    stride = tuple(conv_a_stride)
    project = dim_in != dim_out or any(s != 1 for s in stride)
    return ResBlock(
        branch1_conv=conv_skip(in_channels=dim_in, out_channels=dim_out, kernel_size=(1, 1, 1),
                               stride=stride, padding=(0, 0, 0), bias=False) if project else None,
        branch1_norm=(norm(num_features=dim_out, eps=norm_eps, momentum=norm_momentum)
                      if project and norm is not None else None),
        branch2=create_basic_block(
            dim_in=dim_in, dim_out=dim_out,
            conv_a_kernel_size=conv_a_kernel_size, conv_a_stride=stride,
            conv_a_padding=conv_a_padding,
            conv_b_kernel_size=conv_b_kernel_size, conv_b_padding=conv_b_padding,
            conv=conv, norm=norm, norm_eps=norm_eps, norm_momentum=norm_momentum,
            activation=activation,
        ),
        activation=None if activation_block is None else activation_block(),
        branch_fusion=_sum,
    )


def create_res_2plus1d_basic_block(
    *,
    dim_in: int,
    dim_out: int,
    conv_a_kernel_size: Sequence[int],
    conv_a_stride: Sequence[int],
    conv_a_padding: Sequence[int],
    conv_b_kernel_size: Sequence[int],
    conv_b_padding: Sequence[int],
    norm: Callable | None = nn.BatchNorm3d,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
    inner_norm_eps: float = 1e-5,
    inner_norm_momentum: float = 0.1,
    activation_block: Callable | None = nn.ReLU,
    activation: Callable | None = nn.ReLU,
) -> ResBlock:
    """The (2+1)D basic block of mmaction2's ``ResNet2Plus1d``: both convs *and* the shortcut
    projection are mmaction2 ``Conv2plus1d`` (each with BN3d + ReLU between its spatial and
    temporal halves, eps ``inner_norm_eps``), each followed by ``norm`` (eps ``norm_eps``)."""
    factorised = conv_2plus1d(norm_eps=inner_norm_eps, norm_momentum=inner_norm_momentum)
    return create_res_basic_block(
        dim_in=dim_in, dim_out=dim_out,
        conv_a_kernel_size=conv_a_kernel_size, conv_a_stride=conv_a_stride,
        conv_a_padding=conv_a_padding,
        conv_b_kernel_size=conv_b_kernel_size, conv_b_padding=conv_b_padding,
        conv=factorised, conv_skip=factorised,
        norm=norm, norm_eps=norm_eps, norm_momentum=norm_momentum,
        activation_block=activation_block, activation=activation,
    )


def create_res_basic_stage(
    *,
    dim_in: int,
    dim_out: int,
    inflate: Sequence[bool],
    spatial_stride: int,
    temporal_stride: int,
    block: Callable[..., ResBlock] = create_res_basic_block,
    **block_kwargs,
) -> ResStage:
    """A stage of ``len(inflate)`` basic blocks (mmaction2 ``ResNet3d.make_res_layer``).

    Block ``i`` uses 3x3x3 kernels in both convs if ``inflate[i]`` else 1x3x3; the first block
    carries the stride ``(temporal_stride, spatial_stride, spatial_stride)`` and the channel
    change, the others keep ``dim_out`` and stride 1. ``block_kwargs`` (conv callables, norm
    settings) go to every ``block``.
    """
    blocks = []
    for i, inflated in enumerate(inflate):
        kernel, padding = (INFLATED_KERNEL, INFLATED_PADDING) if inflated else (FLAT_KERNEL, FLAT_PADDING)
        stride = (temporal_stride, spatial_stride, spatial_stride) if i == 0 else (1, 1, 1)
        blocks.append(block(
            dim_in=dim_in if i == 0 else dim_out, dim_out=dim_out,
            conv_a_kernel_size=kernel, conv_a_stride=stride, conv_a_padding=padding,
            conv_b_kernel_size=kernel, conv_b_padding=padding,
            **block_kwargs,
        ))
    return ResStage(res_blocks=nn.ModuleList(blocks))
