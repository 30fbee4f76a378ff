"""Protocol net names -> builders. The protocol says what a net is; this says how to build it."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from vdcbench.core.errors import UnknownNameError
from vdcbench.models.minic3d import MiniC3D
from vdcbench.protocol import NetSpec


def _minic3d(spec: NetSpec, num_classes: int) -> nn.Module:
    p = spec.params
    return MiniC3D(num_classes, channels=p["channels"], kernel=p["kernel"], stride=p["stride"],
                   padding=p["padding"], pools=p["pools"], norm=p["norm"], dropout=spec.dropout)


def _video_resnet(spec: NetSpec, num_classes: int) -> nn.Module:
    # Imported on first use: pytorchvideo (through fvcore) is slow to import and warns about
    # torch.jit.script, which MiniC3D users should not pay for or see.
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.script.*")
        from vdcbench.models.video_resnets import VIDEO_RESNETS
    return VIDEO_RESNETS[spec.name](num_classes, dropout=spec.dropout)


_BUILDERS: dict[str, Callable[[NetSpec, int], nn.Module]] = {
    "minic3d": _minic3d,
    "minic3d-in": _minic3d,
    "r2plus1d_r18": _video_resnet,
    "i3d_r18": _video_resnet,
    "slowonly_r18": _video_resnet,
}


def net_names() -> list[str]:
    return sorted(_BUILDERS)


def build_net(spec: NetSpec, num_classes: int) -> nn.Module:
    """A freshly initialised net (PyTorch default init); seed the global RNG first for determinism."""
    if spec.name not in _BUILDERS:
        raise UnknownNameError("net", spec.name, _BUILDERS)
    return _BUILDERS[spec.name](spec, num_classes)
