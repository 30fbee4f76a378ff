"""The study's three ResNet-18 video evaluation nets, built from PyTorchVideo pieces.

``r2plus1d_r18``, ``i3d_r18`` and ``slowonly_r18`` reproduce the mmaction2 backbones the study's
reference code (MCG-NJU/Video-DC, which vendors mmaction2 v1.2.0) configures for cross-
architecture evaluation (reference-code-digest.md section 2.3), each with mmaction2's
``I3DHead`` (global average pool -> dropout 0.5 -> linear). Each net is a PyTorchVideo
:class:`~pytorchvideo.models.net.Net` whose ``blocks`` are, in order::

    stem (ResNetBasicStem: conv -> BN -> ReLU -> MaxPool3d)
    stage 1 (ResStage of 2 basic ResBlocks)
    [pool2: MaxPool3d (2,1,1) stride (2,1,1)  -- i3d_r18 only]
    stage 2, stage 3, stage 4 (ResStage, 2 blocks each, 128 / 256 / 512 channels)
    head (ResNetBasicHead: AdaptiveAvgPool3d(1) -> Dropout -> Linear)

Sources read (open-mmlab/mmaction2, 1.x branch, the code Video-DC vendors):

* ``mmaction/models/backbones/resnet3d.py``: ``ResNet3d`` (``arch_settings[18] = (BasicBlock3d,
  (2, 2, 2, 2))``; stage ``i`` has ``64 * 2**i`` channels; ``_make_stem_layer``: ``conv1`` is a
  ``ConvModule`` (conv without bias -> BN -> ReLU) with kernel ``conv1_kernel``, stride
  ``(conv1_stride_t, conv1_stride_s=2, 2)``, padding ``(k - 1) // 2`` per axis; ``maxpool`` is
  ``MaxPool3d(kernel (1,3,3), stride (pool1_stride_t, pool1_stride_s=2, 2), padding (0,1,1))``,
  applied when ``with_pool1`` (default True); ``pool2 = MaxPool3d((2,1,1), (2,1,1))`` applied
  after ``layer1`` when ``with_pool2`` (default True); 1.x defaults ``conv1_kernel=(3,7,7)``,
  ``conv1_stride_t=1``, ``pool1_stride_t=1``, ``spatial_strides=(1,2,2,2)``,
  ``temporal_strides=(1,1,1,1)``) and ``BasicBlock3d`` (see resnet_blocks.py).
* ``mmaction/models/backbones/resnet3d_slowonly.py``: ``ResNet3dSlowOnly(ResNet3dPathway)``
  defaults ``conv1_kernel=(1,7,7)``, ``conv1_stride_t=1``, ``pool1_stride_t=1``,
  ``inflate=(0,0,1,1)``, ``with_pool2=False``; ``resnet3d_slowfast.py``: ``ResNet3dPathway`` with
  ``lateral=False`` adds nothing to ``ResNet3d`` (no lateral convs, ``lateral_inplanes = 0``).
* ``mmaction/models/backbones/resnet2plus1d.py``: ``ResNet2Plus1d(ResNet3d)`` requires
  ``conv_cfg=dict(type='Conv2plus1d')``; its ``forward`` is conv1 -> maxpool -> layers (it never
  applies pool2). ``mmaction/models/common/conv2plus1d.py``: ``Conv2plus1d`` (see
  resnet_blocks.py for the middle width).
* ``configs/_base_/models/r2plus1d_r34.py``: ``norm_cfg=dict(type='SyncBN', eps=1e-3)``,
  ``conv1_kernel=(3,7,7)``, ``conv1_stride_t=1``, ``pool1_stride_t=1``, ``inflate=(1,1,1,1)``,
  ``spatial_strides=(1,2,2,2)``, ``temporal_strides=(1,2,2,2)``, I3DHead in 512, dropout 0.5.
* ``configs/_base_/models/i3d_r50.py`` / ``slowonly_r50.py``: the depth-50 forms of the other two
  (same stem settings as the digest gives for the depth-18 configs).

Choices common to all three (the study's own depth-18 config files were not readable; the
digest's section 2.3 gives their non-default values, mmaction2 1.x defaults give the rest):

* Initialisation. Protocol v1 says ``[trainer] init = "pytorch-default"``, so by default every
  conv, BN and linear layer is re-initialised with PyTorch's defaults after PyTorchVideo's
  ``Net`` (which always applies its own ResNet init) is built. The study's students were
  *not* PyTorch-default here: mmcv's ``ConvModule`` and mmaction2's ``Conv2plus1d`` call their
  ``init_weights`` in ``__init__`` (Kaiming normal, fan_out, ReLU gain: the same as fvcore's
  ``c2_msra_fill`` that PyTorchVideo applies), and only the head's ``Linear`` keeps the PyTorch
  default because ``init_recognizer`` never calls ``init_weights()``. ``init="reference"``
  builds that; ``init="pytorchvideo"`` keeps PyTorchVideo's init (fc normal, std 0.01).
* BN momentum 0.1 and, except where noted, eps 1e-5 (mmcv ``BN3d`` / PyTorch defaults).
* ``nn.ReLU`` is not in-place (mmaction2's is); the values are the same.
* No block's last BN is zero-initialised (mmaction2's ``zero_init_residual`` acts only in
  ``init_weights()``, which the study never calls; the R(2+1)D and I3D configs set it False).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from pytorchvideo.models.head import create_res_basic_head
from pytorchvideo.models.net import Net
from pytorchvideo.models.resnet import ResStage
from pytorchvideo.models.stem import create_res_basic_stem
from torch import nn

from vdcbench.models.resnet_blocks import (
    conv_2plus1d,
    create_res_2plus1d_basic_block,
    create_res_basic_block,
    create_res_basic_stage,
)

INITS = ("pytorch-default", "reference", "pytorchvideo")
STAGE_WIDTHS = (64, 128, 256, 512)
STAGE_DEPTHS = (2, 2, 2, 2)   # ResNet-18: mmaction2 ResNet3d.arch_settings[18]


class VideoResNet(Net):
    """A PyTorchVideo ``Net`` that also gives its stages and its pooled feature.

    ``embed`` is the head's pooled input, (N, 512), before dropout: the space selection baselines
    work in (``vdcbench.methods.features``), as ``MiniC3D.embed`` is for MiniC3D.
    """

    def __init__(self, *, blocks: nn.ModuleList, feature_dim: int) -> None:
        super().__init__(blocks=blocks)
        self.feature_dim = feature_dim

    @property
    def stem(self) -> nn.Module:
        return self.blocks[0]

    @property
    def stages(self) -> list[ResStage]:
        return [b for b in self.blocks if isinstance(b, ResStage)]

    @property
    def head(self) -> nn.Module:
        return self.blocks[-1]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks[:-1]:
            x = block(x)
        return self.head.pool(x).flatten(1)


def _apply_init(net: VideoResNet, init: str) -> None:
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; one of {', '.join(INITS)}")
    if init == "pytorch-default":
        for m in net.modules():
            if isinstance(m, (nn.Conv3d, nn.BatchNorm3d, nn.Linear)):
                m.reset_parameters()
    elif init == "reference":
        net.head.proj.reset_parameters()


def create_video_resnet18(
    *,
    num_classes: int,
    # Stem.
    stem_conv: Callable,
    stem_kernel: Sequence[int],
    stem_stride_t: int,
    pool1_stride_t: int,
    # Between stage 1 and stage 2.
    with_pool2: bool,
    # Stages.
    inflate: Sequence[Sequence[bool]],
    spatial_strides: Sequence[int],
    temporal_strides: Sequence[int],
    block: Callable,
    block_kwargs: dict,
    # Norm of the stem and of every block.
    norm_eps: float,
    norm_momentum: float,
    # Head.
    dropout: float,
    init: str,
) -> VideoResNet:
    """A depth-18 mmaction2 ``ResNet3d``-family backbone with an ``I3DHead``, as a ``Net``."""
    stem_kernel = tuple(stem_kernel)
    blocks: list[nn.Module] = [create_res_basic_stem(
        in_channels=3,
        out_channels=STAGE_WIDTHS[0],
        conv_kernel_size=stem_kernel,
        conv_stride=(stem_stride_t, 2, 2),
        conv_padding=tuple((k - 1) // 2 for k in stem_kernel),
        conv_bias=False,
        conv=stem_conv,
        pool=nn.MaxPool3d,
        pool_kernel_size=(1, 3, 3),
        pool_stride=(pool1_stride_t, 2, 2),
        pool_padding=(0, 1, 1),
        norm=nn.BatchNorm3d,
        norm_eps=norm_eps,
        norm_momentum=norm_momentum,
        activation=nn.ReLU,
    )]
    dim_in = STAGE_WIDTHS[0]
    for i, (width, depth) in enumerate(zip(STAGE_WIDTHS, STAGE_DEPTHS)):
        assert len(inflate[i]) == depth
        blocks.append(create_res_basic_stage(
            dim_in=dim_in, dim_out=width, inflate=tuple(bool(f) for f in inflate[i]),
            spatial_stride=spatial_strides[i], temporal_stride=temporal_strides[i],
            block=block, norm=nn.BatchNorm3d, norm_eps=norm_eps, norm_momentum=norm_momentum,
            **block_kwargs,
        ))
        if i == 0 and with_pool2:
            blocks.append(nn.MaxPool3d(kernel_size=(2, 1, 1), stride=(2, 1, 1)))
        dim_in = width
    blocks.append(create_res_basic_head(
        in_features=STAGE_WIDTHS[-1],
        out_features=num_classes,
        pool=nn.AdaptiveAvgPool3d,
        output_size=(1, 1, 1),
        dropout_rate=dropout,
        activation=None,
        output_with_global_average=True,
    ))
    net = VideoResNet(blocks=nn.ModuleList(blocks), feature_dim=STAGE_WIDTHS[-1])
    _apply_init(net, init)
    return net


def r2plus1d_r18(num_classes: int, *, dropout: float = 0.5, init: str = "pytorch-default",
                 norm_eps: float = 1e-3, inner_norm_eps: float = 1e-5) -> VideoResNet:
    """R(2+1)D-18: mmaction2 ``ResNet2Plus1d`` depth 18 + ``I3DHead``.

    Found (mmaction2 1.x; ``backbones/resnet2plus1d.py`` ``ResNet2Plus1d``, ``backbones/
    resnet3d.py`` ``ResNet3d`` / ``BasicBlock3d``, ``common/conv2plus1d.py`` ``Conv2plus1d``,
    ``configs/_base_/models/r2plus1d_r34.py``; the study's config per the digest:
    ``conv1_kernel=(3,7,7)``, spatial strides (1,2,2,2), temporal strides (1,2,2,2), SyncBN):

    * Stem: ``ConvModule(Conv2plus1d(3, 64, (3,7,7), stride (1,2,2), padding (1,3,3)))``, i.e.
      conv_s 1x7x7 s(1,2,2) 3->83 -> BN(83) -> ReLU -> conv_t 3x1x1 83->64 -> BN(64) -> ReLU;
      the middle width is 83 = floor(3*3*64*49 / (3*49 + 3*64)) (torchvision's R(2+1)D stem
      uses 45). Then ``maxpool`` (1,3,3) stride (1,2,2) padding (0,1,1): ``ResNet2Plus1d.forward``
      applies it (torchvision's R(2+1)D has no stem pool). No pool2 (``forward`` skips it).
    * Every block inflated (``inflate=(1,1,1,1)``): both convs are (2+1)D factorisations of
      3x3x3 (middle widths 144; 230, 288; 460, 576; 921, 1152), the stride on the first.
    * Shortcuts of stages 2-4 are ``ConvModule(Conv2plus1d(C_in, C_out, 1, stride (2,2,2)))``
      + BN: a 1x1x1 spatial conv (stride 1,2,2) to 54 / 109 / 219 channels -> BN -> ReLU -> a
      1x1x1 temporal conv (stride 2,1,1) -> BN, because ``make_res_layer`` passes the
      backbone's ``conv_cfg`` to the downsample (torchvision uses one plain 1x1x1 conv).
    * Feature maps at 8x112x112: stem 64x8x28x28, stages 64x8x28x28, 128x4x14x14,
      256x2x7x7, 512x1x4x4.

    Choices: BN eps 1e-3 for the stem's and blocks' outer norms (the base config's
    ``SyncBN eps=1e-3``, which the study's r18 config is taken to inherit; SyncBN on one
    device is BN), eps 1e-5 inside each ``Conv2plus1d`` (mmaction2 builds ``bn_s`` from
    ``Conv2plus1d``'s own ``dict(type='BN3d')`` default); init, see the module docstring.
    """
    return create_video_resnet18(
        num_classes=num_classes,
        stem_conv=conv_2plus1d(norm_eps=inner_norm_eps),
        stem_kernel=(3, 7, 7), stem_stride_t=1, pool1_stride_t=1,
        with_pool2=False,
        inflate=((1, 1), (1, 1), (1, 1), (1, 1)),
        spatial_strides=(1, 2, 2, 2), temporal_strides=(1, 2, 2, 2),
        block=create_res_2plus1d_basic_block,
        block_kwargs=dict(inner_norm_eps=inner_norm_eps),
        norm_eps=norm_eps, norm_momentum=0.1,
        dropout=dropout, init=init,
    )


def i3d_r18(num_classes: int, *, dropout: float = 0.5, init: str = "pytorch-default") -> VideoResNet:
    """I3D-R18: mmaction2 ``ResNet3d`` depth 18 + ``I3DHead``.

    Found (mmaction2 1.x ``backbones/resnet3d.py`` ``ResNet3d`` / ``BasicBlock3d``; the study's
    ``i3d-r18_8x8_ucf101_frame.py`` per the digest: ``conv1_kernel=(5,7,7)``,
    ``conv1_stride_t=2``, ``pool1_stride_t=2``, ``inflate=((1,1),(1,0),(1,0),(1,0))``; the same
    stem settings as ``configs/_base_/models/i3d_r50.py``):

    * Stem: Conv3d 3->64 (5,7,7) stride (2,2,2) padding (2,3,3) -> BN -> ReLU -> MaxPool3d
      (1,3,3) stride (2,2,2) padding (0,1,1): 8 frames become 2.
    * pool2 after stage 1 (``with_pool2`` defaults to True in ``ResNet3d``): MaxPool3d (2,1,1)
      stride (2,1,1); 2 frames become 1, so stages 2-4 run on a single frame and their inflated
      3x3x3 kernels only ever use the middle temporal tap on 8-frame clips.
    * Stage 1: both blocks 3x3x3 (both convs); stages 2-4: first block 3x3x3, second 1x3x3.
      Spatial strides (1,2,2,2), temporal strides (1,1,1,1) (defaults). Shortcuts of stages 2-4:
      Conv3d 1x1x1 stride (1,2,2) + BN.
    * Feature maps at 8x112x112: stem 64x2x28x28, stage 1 64x2x28x28 (64x1x28x28 after pool2),
      128x1x14x14, 256x1x7x7, 512x1x4x4.

    Choices: the study's I3D teacher config loads a K400-pretrained backbone, but its students
    are built without it (the digest, section 2.3), so this net is built from scratch; BN eps
    1e-5; init, see the module docstring.
    """
    return create_video_resnet18(
        num_classes=num_classes,
        stem_conv=nn.Conv3d,
        stem_kernel=(5, 7, 7), stem_stride_t=2, pool1_stride_t=2,
        with_pool2=True,
        inflate=((1, 1), (1, 0), (1, 0), (1, 0)),
        spatial_strides=(1, 2, 2, 2), temporal_strides=(1, 1, 1, 1),
        block=create_res_basic_block,
        block_kwargs=dict(conv=nn.Conv3d, conv_skip=nn.Conv3d),
        norm_eps=1e-5, norm_momentum=0.1,
        dropout=dropout, init=init,
    )


def slowonly_r18(num_classes: int, *, dropout: float = 0.5, init: str = "pytorch-default") -> VideoResNet:
    """SlowOnly-R18: mmaction2 ``ResNet3dSlowOnly`` depth 18 + ``I3DHead``.

    Found (mmaction2 1.x ``backbones/resnet3d_slowonly.py`` ``ResNet3dSlowOnly``,
    ``backbones/resnet3d_slowfast.py`` ``ResNet3dPathway`` with ``lateral=False``,
    ``backbones/resnet3d.py`` ``ResNet3d`` / ``BasicBlock3d``; the study's
    ``_base_/models/slowonly_r18.py`` per the digest: ``conv1_kernel=(1,7,7)``,
    ``inflate=(0,0,1,1)``; the same as ``configs/_base_/models/slowonly_r50.py`` at depth 50):

    * Stem: Conv3d 3->64 (1,7,7) stride (1,2,2) padding (0,3,3) -> BN -> ReLU -> MaxPool3d
      (1,3,3) stride (1,2,2) padding (0,1,1). No pool2 (``ResNet3dSlowOnly`` defaults
      ``with_pool2=False``). No temporal stride anywhere: 8 frames stay 8.
    * Stages 1-2: both blocks 1x3x3 in both convs; stages 3-4: both blocks 3x3x3 in both convs.
      Spatial strides (1,2,2,2), temporal strides (1,1,1,1). Shortcuts of stages 2-4: Conv3d
      1x1x1 stride (1,2,2) + BN.
    * Feature maps at 8x112x112: stem 64x8x28x28, stages 64x8x28x28, 128x8x14x14, 256x8x7x7,
      512x8x4x4.

    Choices: built from scratch (the study's SlowOnly students are); BN eps 1e-5; init, see the
    module docstring.
    """
    return create_video_resnet18(
        num_classes=num_classes,
        stem_conv=nn.Conv3d,
        stem_kernel=(1, 7, 7), stem_stride_t=1, pool1_stride_t=1,
        with_pool2=False,
        inflate=((0, 0), (0, 0), (1, 1), (1, 1)),
        spatial_strides=(1, 2, 2, 2), temporal_strides=(1, 1, 1, 1),
        block=create_res_basic_block,
        block_kwargs=dict(conv=nn.Conv3d, conv_skip=nn.Conv3d),
        norm_eps=1e-5, norm_momentum=0.1,
        dropout=dropout, init=init,
    )


VIDEO_RESNETS: dict[str, Callable[..., VideoResNet]] = {
    "r2plus1d_r18": r2plus1d_r18,
    "i3d_r18": i3d_r18,
    "slowonly_r18": slowonly_r18,
}
