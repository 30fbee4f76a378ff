"""Reading one tensor from a ``.pt`` file someone else wrote, without running their code.

``torch.load`` unpickles, and a pickle can run anything; ``weights_only=True`` restricts it to
tensors and plain containers. We go further and accept exactly one dense tensor: a dict, a list or
a model state in the file is refused, because the importer would otherwise have to guess which
entry holds the frames.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vdcbench.core.errors import VdcError


def _reason(exc: BaseException) -> str:
    """One line saying why torch.load refused. Its weights_only message opens with advice to
    load the file unsafely; the cause follows "WeightsUnpickler error:", when it is there."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = lines[0] if lines else type(exc).__name__
    return reason.split(" was not an allowed global")[0][:200]


def load_tensor_file(path: Path) -> torch.Tensor:
    """The single tensor stored in ``path``, on the CPU; ``VdcError`` for anything else."""
    if not path.is_file():
        raise VdcError(f"{path} not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    # A hostile or damaged file fails in many ways (UnpicklingError for pickled code, RuntimeError
    # for a broken zip, EOFError, ValueError, ...); each one means the same thing to the user.
    except Exception as exc:  # noqa: BLE001
        raise VdcError(f"refused {path}: not a plain tensor file; torch.load(weights_only=True) "
                       f"says {type(exc).__name__}: {_reason(exc)}") from None
    if not isinstance(obj, torch.Tensor):
        raise VdcError(f"refused {path}: it holds a {type(obj).__name__}, not a tensor")
    if obj.layout is not torch.strided or obj.is_quantized or obj.is_complex():
        raise VdcError(f"refused {path}: it holds a {obj.layout} {obj.dtype} tensor, not a dense "
                       "real one")
    # detach() drops a Parameter wrapper and any autograd history.
    return obj.detach()
