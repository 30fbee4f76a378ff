"""Achieved GFLOP/s of each evaluation net's training step, beside a float32 matmul's.

Run on an idle machine with ``python -m pytest tests/test_benchmark_nets.py --benchmark-enable``
(``OMP_NUM_THREADS`` sets the cores). The matmul (n = 1024, 2n³ FLOPs a product) is measured in
the same run, first, as this CPU's dense float32 ceiling. A step is forward, cross-entropy,
backward and AdamW on a batch of 2 clips of 8×56×56 (the synthetic track), and is credited
3 × forward GFLOPs a clip (``vdcbench.models.flops``). ``extra_info`` holds ``gflops_per_s`` and,
for a net, ``fraction_of_matmul``. By default (--benchmark-disable) each function runs once, as
a test that the step works.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vdcbench.models import build_net
from vdcbench.models.flops import net_cost

ROUNDS = 5
BATCH = 2
FRAMES, CROP = 8, 56
MATMUL_N = 1024
NETS = ("minic3d", "r2plus1d_r18", "i3d_r18", "slowonly_r18")

_ceiling: dict[str, float] = {}      # the matmul's GFLOP/s, for the nets' fraction


def _rate(benchmark, gflops: float) -> float | None:
    """GFLOP/s over the median round, or None when benchmarks are disabled (one plain call)."""
    if benchmark.stats is None:
        return None
    rate = gflops / benchmark.stats.stats.median
    benchmark.extra_info.update(gflops_per_s=round(rate, 2), gflops_per_call=round(gflops, 4),
                                threads=torch.get_num_threads())
    return rate


@pytest.mark.benchmark(group="gflops-per-s")
def test_matmul_float32(benchmark):
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(MATMUL_N, MATMUL_N, generator=generator)
    b = torch.randn(MATMUL_N, MATMUL_N, generator=generator)
    c = torch.empty(MATMUL_N, MATMUL_N)
    benchmark.pedantic(torch.mm, args=(a, b), kwargs={"out": c}, rounds=ROUNDS * 4,
                       warmup_rounds=2)
    rate = _rate(benchmark, 2 * MATMUL_N ** 3 / 1e9)
    if rate is not None:
        _ceiling["matmul"] = rate
    assert torch.allclose(c[:2, :2], a[:2] @ b[:, :2], atol=1e-3)


@pytest.mark.benchmark(group="gflops-per-s")
@pytest.mark.parametrize("name", NETS)
def test_training_step(benchmark, protocol, name):
    torch.manual_seed(0)
    net = build_net(protocol.net(name), 10).train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    inputs = torch.randn(BATCH, 3, FRAMES, CROP, CROP)
    labels = torch.arange(BATCH) % 10

    def step() -> float:
        loss = F.cross_entropy(net(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    loss = benchmark.pedantic(step, rounds=ROUNDS, warmup_rounds=1)
    cost = net_cost(protocol.net(name), 10, FRAMES, CROP)
    rate = _rate(benchmark, cost.train_gflops_per_clip * BATCH)
    if rate is not None and "matmul" in _ceiling:
        benchmark.extra_info["fraction_of_matmul"] = round(rate / _ceiling["matmul"], 3)
    assert loss == loss   # finite enough to be a number
