"""What a protocol net costs: parameters and forward GFLOPs per clip, counted by fvcore.

fvcore counts one multiply-add as one "flop"; vdcbench reports GFLOPs as twice that count, the
convention of hardware peak figures, so an achieved rate divides by a peak with no hidden factor
of two. A training step costs about three forwards per clip (the forward, then the backward's two
products per layer: the input gradient and the weight gradient). Ops fvcore has no counter for
(ReLU, max pooling, residual additions) are left out: they are elementwise, a rounding error next
to the convolutions, and memory-bound rather than arithmetic-bound anyway.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from vdcbench.models.registry import build_net
from vdcbench.protocol import NetSpec

TRAIN_FACTOR = 3          # training ≈ 3 × forward per clip
_FLOPS_PER_MAC = 2        # fvcore's unit is a multiply-add


@dataclass(frozen=True)
class NetCost:
    """A net at one input shape: the figures `vdcbench nets` lists and result records carry."""

    net: str
    num_classes: int
    input_shape: tuple[int, int, int, int, int]    # (1, 3, T, H, W): one clip
    parameters: int
    forward_gflops: float                           # per clip

    @property
    def train_gflops_per_clip(self) -> float:
        return TRAIN_FACTOR * self.forward_gflops


def clip_shape(frames: int, crop: int) -> tuple[int, int, int, int, int]:
    """The input of one clip of a track: 3 colour channels, ``frames`` × ``crop`` × ``crop``."""
    return (1, 3, frames, crop, crop)


def count_forward_gflops(model: nn.Module, shape: tuple[int, ...]) -> float:
    """Forward GFLOPs (2 × fvcore's multiply-adds) of ``model`` on a zero input of ``shape``.

    Counted in eval mode, so dropout and batch statistics cannot change the traced graph; the
    model's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        # fvcore's import warns about torch.jit.script, and tracing about every python-side
        # shape read; neither bears on the count.
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            from fvcore.nn import FlopCountAnalysis
            analysis = FlopCountAnalysis(model, torch.zeros(shape))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            macs = analysis.total()
    finally:
        model.train(was_training)
    return _FLOPS_PER_MAC * macs / 1e9


_COSTS: dict[tuple, NetCost] = {}


def net_cost(spec: NetSpec, num_classes: int, frames: int, crop: int) -> NetCost:
    """The cost of ``spec`` with ``num_classes`` outputs on one ``frames``×``crop``² clip.

    Measured once per (net definition, classes, shape) in a process. A throwaway net is built
    under a forked RNG, so asking for a cost never shifts a caller's seeded initialisation."""
    shape = clip_shape(frames, crop)
    definition = json.dumps(dict(spec.params), sort_keys=True, default=str)
    key = (spec.name, definition, num_classes, shape)
    if key not in _COSTS:
        with torch.random.fork_rng(devices=[]):
            model = build_net(spec, num_classes)
        _COSTS[key] = NetCost(
            net=spec.name, num_classes=num_classes, input_shape=shape,
            parameters=sum(p.numel() for p in model.parameters()),
            forward_gflops=count_forward_gflops(model, shape))
    return _COSTS[key]


def training_gflops(student: NetCost, clips: int, teacher: NetCost | None = None) -> float:
    """Training compute of a run that showed ``clips`` clips to ``student`` (one per sample).

    A teacher that labels every training batch online (multi-sl) adds one forward per clip.
    Validation passes are scoring, not training, and are not counted."""
    per_clip = student.train_gflops_per_clip + (teacher.forward_gflops if teacher else 0.0)
    return clips * per_clip
