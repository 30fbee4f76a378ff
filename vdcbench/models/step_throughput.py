"""How fast a net trains on a device: clips per second and achieved TFLOP/s of one training step.

A step is what the evaluation trainer does per batch on an already prepared batch: forward,
cross-entropy, backward and AdamW, in float32 or under bf16 autocast. The arithmetic is credited
as ``vdcbench.models.flops`` counts it (3 × forward GFLOPs a clip, 2 × fvcore's multiply-adds),
so achieved / peak is the fraction of the device's dense arithmetic a step uses. Timing
synchronises the device around the measured steps, after warm-up steps that let cuDNN choose its
algorithms.

This is the measurement behind ``vdcbench step-throughput``; it needs no data set.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from vdcbench.models.flops import net_cost
from vdcbench.models.registry import build_net
from vdcbench.protocol import NetSpec

PRECISIONS = ("float32", "bf16")

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from the vendors' data sheets, for the
# devices a benchmark is likely to meet. Anything else: pass --peak-tflops.
DENSE_BF16_PEAK_TFLOPS = {
    "H200": 989.0,   # SXM; same tensor cores as the H100 SXM
    "H100": 989.0,   # SXM (the PCIe card is 756)
    "A100": 312.0,
    "L40S": 362.0,
    "A10": 125.0,
}


@dataclass(frozen=True)
class StepThroughput:
    net: str
    batch: int
    frames: int
    crop: int
    precision: str
    device: str
    steps: int
    seconds_per_step: float
    clips_per_second: float
    achieved_tflops: float
    peak_tflops: float | None
    fraction_of_peak: float | None
    peak_memory_gib: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def known_peak_tflops(device: torch.device) -> float | None:
    """The dense bf16 peak of a CUDA device this module knows by name, else None."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for model, peak in DENSE_BF16_PEAK_TFLOPS.items():
        if model in name:
            return peak
    return None


def option_problem(precision: str, steps: int, warmup: int) -> str | None:
    """What is wrong with a measurement's options, or None: one rule for the API and the CLI."""
    if precision not in PRECISIONS:
        return f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}"
    if steps < 1 or warmup < 0:
        return "steps must be at least 1 and warmup at least 0"
    return None


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_step(spec: NetSpec, num_classes: int, batch: int, frames: int, crop: int,
                 precision: str, device: torch.device | str, steps: int = 10, warmup: int = 3,
                 peak_tflops: float | None = None, seed: int = 0) -> StepThroughput:
    """Time ``steps`` training steps of ``spec`` on random clips, after ``warmup`` untimed ones."""
    problem = option_problem(precision, steps, warmup)
    if problem is not None:
        raise ValueError(problem)
    device = torch.device(device)
    torch.manual_seed(seed)
    net = build_net(spec, num_classes).to(device).train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    generator = torch.Generator(device=device).manual_seed(seed)
    inputs = torch.randn(batch, 3, frames, crop, crop, device=device, generator=generator)
    labels = torch.arange(batch, device=device) % num_classes
    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16)
                if precision == "bf16" else nullcontext())

    def step() -> None:
        with autocast:
            loss = F.cross_entropy(net(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    _synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _synchronize(device)
    seconds = (time.perf_counter() - started) / steps
    cost = net_cost(spec, num_classes, frames, crop)
    achieved = cost.train_gflops_per_clip * batch / seconds / 1e3
    peak = peak_tflops if peak_tflops is not None else known_peak_tflops(device)
    memory = (torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None)
    return StepThroughput(net=spec.name, batch=batch, frames=frames, crop=crop,
                          precision=precision, device=str(device), steps=steps,
                          seconds_per_step=seconds, clips_per_second=batch / seconds,
                          achieved_tflops=achieved, peak_tflops=peak,
                          fraction_of_peak=None if peak is None else achieved / peak,
                          peak_memory_gib=memory)
