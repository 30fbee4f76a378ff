"""The machine a result was measured on: :class:`Machine` and :func:`this_machine`.

A CPU evaluation is bit-reproducible at a fixed thread count *on one kind of CPU*: torch picks
its float kernels per instruction set (``torch.backends.cpu.get_cpu_capability()``: ``AVX2``,
``AVX512``, ...) and oneDNN/MKL pick theirs per CPU model, and either changes the order of float
sums. After hundreds of epochs the trained weights differ, and the figures move by a few
validation clips. A record that names its machine lets ``vdcbench verify`` tell "another CPU"
from "another result"; one that does not (every record written before this field) cannot.

The machine is provenance, never identity: it is not in a record's key, path or compared figures.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_FIELDS = ("cpu", "cpu_capability", "architecture", "torch", "device")


@dataclass(frozen=True)
class Machine:
    """What ran an evaluation; a part that could not be read is None (left out on disk)."""

    device: str                         # "cpu", or the accelerator's name ("NVIDIA H200")
    torch: str | None = None            # torch's version
    cpu: str | None = None              # /proc/cpuinfo's "model name" (or platform.processor())
    cpu_capability: str | None = None   # the instruction set torch's CPU kernels were built for
    architecture: str | None = None     # platform.machine(): x86_64, aarch64, arm64

    def to_dict(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in _FIELDS if getattr(self, name) is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Machine":
        if not isinstance(data, Mapping):
            raise ValueError("machine must be an object")
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise ValueError(f"machine has unknown field(s) {', '.join(unknown)}")
        if not isinstance(data.get("device"), str):
            raise ValueError("machine must name its device")
        for name in _FIELDS:
            if data.get(name) is not None and not isinstance(data[name], str):
                raise ValueError(f"machine {name} must be text")
        return cls(**{name: data[name] for name in _FIELDS if name in data})

    @property
    def cpu_label(self) -> str:
        """The CPU as a message names it: model and capability (``AMD EPYC, AVX2``)."""
        parts = [p for p in (self.cpu, self.cpu_capability) if p]
        return ", ".join(parts) if parts else "an unnamed CPU"

    def same_cpu(self, other: "Machine") -> bool | None:
        """Whether both ran on the same kind of CPU: True, False, or None when either machine
        leaves out what would tell (its model or its capability)."""
        pairs = [(getattr(self, n), getattr(other, n)) for n in ("cpu", "cpu_capability",
                                                                 "architecture")]
        if any(a is not None and b is not None and a != b for a, b in pairs):
            return False
        if any(a is None or b is None for a, b in pairs[:2]):
            return None
        return True


def this_machine(device: str = "cpu") -> Machine:
    """The machine this process runs on, evaluating on ``device`` (``cpu``, ``cuda:0``)."""
    import torch

    name = "cpu"
    if not str(device).startswith("cpu"):
        try:
            name = torch.cuda.get_device_name(torch.device(device))
        except (RuntimeError, AssertionError, ValueError):
            name = str(device)      # an accelerator torch cannot name: its device string
    return Machine(device=name, torch=torch.__version__, cpu=cpu_model(),
                   cpu_capability=_cpu_capability(), architecture=platform.machine() or None)


def cpu_model() -> str | None:
    """The CPU's model name: Linux's /proc/cpuinfo, else what ``platform`` says; None if neither."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split()) or None
    except OSError:
        pass
    return platform.processor() or None


def _cpu_capability() -> str | None:
    import torch

    # Present since torch 2.1; an older torch cannot say which kernels it chose.
    probe = getattr(torch.backends.cpu, "get_cpu_capability", None)
    return str(probe()) if probe is not None else None
