"""MiniC3D: the study's condensation and evaluation net (Video-DC ``MyConv3d`` + ``I3DHead``).

Three blocks of Conv3d (3x7x7, stride 1x2x2, padding 1x3x3) -> norm -> ReLU -> MaxPool3d with
channels 64/128/128 and pools 1x2x2, 2x2x2, 2x2x2, then global average pool, dropout and a linear
classifier. With batch norm this is 3,654,885 parameters at 101 classes. The instance-norm variant
uses GroupNorm(C, C) (instance norm with affine parameters) as the reference does for DATM experts.
Weights keep PyTorch's default initialisation: the reference never calls its (broken) init.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "instance":
        return nn.GroupNorm(channels, channels)
    raise ValueError(f"unknown norm {kind!r}")


def conv_block(c_in: int, c_out: int, kernel: Sequence[int], stride: Sequence[int],
               padding: Sequence[int], pool: Sequence[int], norm: str) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, tuple(kernel), tuple(stride), tuple(padding)),
        _norm(norm, c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool3d(tuple(pool), tuple(pool)),
    )


class MiniC3D(nn.Module):
    def __init__(self, num_classes: int, channels: Sequence[int] = (64, 128, 128),
                 kernel: Sequence[int] = (3, 7, 7), stride: Sequence[int] = (1, 2, 2),
                 padding: Sequence[int] = (1, 3, 3),
                 pools: Sequence[Sequence[int]] = ((1, 2, 2), (2, 2, 2), (2, 2, 2)),
                 norm: str = "batch", dropout: float = 0.5):
        super().__init__()
        widths = (3, *channels)
        self.features = nn.Sequential(*[
            conv_block(widths[i], widths[i + 1], kernel, stride, padding, pools[i], norm)
            for i in range(len(channels))
        ])
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(widths[-1], num_classes)
        self.feature_dim = widths[-1]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled feature (N, 128), the space selection baselines work in."""
        return self.pool(self.features(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.embed(x)))
