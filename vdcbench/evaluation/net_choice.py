"""Which nets a ``--net`` names: ``all`` (the evaluation nets), ``every`` (every protocol net), or
a comma list. Torch-free, so a misspelt net is refused before the seconds torch's import takes;
``vdcbench.evaluation.scoring`` re-exports it for the callers that already import it from there.
"""

from __future__ import annotations

from vdcbench.core.errors import VdcError
from vdcbench.protocol import Protocol

ALL_NETS = "all"        # the evaluation nets
EVERY_NET = "every"     # every protocol net, condensation variants (minic3d-in) included


def evaluation_nets(protocol: Protocol) -> tuple[str, ...]:
    """The protocol's evaluation architectures, in protocol order: the nets that are their own
    teacher architecture. (``minic3d-in``, MiniC3D with instance norm for trajectory-matching
    experts, has MiniC3D's teacher: a condensation variant, not another architecture.)"""
    return tuple(name for name, spec in protocol.nets.items()
                 if spec.teacher_architecture == name)


def parse_nets(protocol: Protocol, text: str) -> tuple[str, ...]:
    """Nets named by ``text``: ``all`` (the evaluation nets, :func:`evaluation_nets`), ``every``
    (every protocol net), or a comma-separated list, checked and deduplicated in order.

    Raises ``VdcError`` naming the closest net for an unknown name, or when none is named."""
    if text.strip() == ALL_NETS:
        return evaluation_nets(protocol)
    if text.strip() == EVERY_NET:
        return tuple(protocol.nets)
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names:
        raise VdcError(f"--net {text!r} names no net; give one, a list like minic3d,i3d_r18, "
                       f"{ALL_NETS} or {EVERY_NET}")
    for name in names:
        protocol.net(name)   # an unknown name raises, suggesting the closest
    return names
