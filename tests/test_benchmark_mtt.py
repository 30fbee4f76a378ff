"""Speed of one MTT iteration at IPC 1 against the bare forward/backward of the same net on the
same clips.

Run on an idle machine with ``python -m pytest tests/test_benchmark_mtt.py --benchmark-enable``;
the group sets the iteration beside its baseline. By default (--benchmark-disable) each function
runs once, as a test that the iteration works.

* mtt: ``TrajectoryObjective.step`` under the ``cpu`` preset's student (2 unrolled steps on all 10
  clips, per-clip crops): expert snapshots, the unroll with ``create_graph``, the
  parameter-distance loss, the backward through the unroll, the clip and lr updates.
* bare: forward / cross-entropy / backward of ``minic3d-in`` on the same 10 clips, no update.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trajectory_fixtures import tiny_experts
from vdcbench.core.artifacts import ArtifactStore
from vdcbench.methods.base import CondensationTask
from vdcbench.methods.mtt import MTT, TrajectoryObjective
from vdcbench.models import build_net
from vdcbench.train.augment import Normalize

ROUNDS = 3


@pytest.fixture(scope="module")
def setup(protocol, tmp_path_factory):
    experts = tiny_experts(protocol, tmp_path_factory.mktemp("bench-experts"))
    track = protocol.track("synthetic", "ipc1-t8")
    task = CondensationTask(protocol, track, "hard", 0,
                            ArtifactStore(tmp_path_factory.mktemp("bench-mtt")))
    clips = torch.rand(10, 3, 8, 56, 56, generator=torch.Generator().manual_seed(0))
    return task, experts, clips


@pytest.mark.benchmark(group="mtt-iteration-ipc1")
def test_mtt_iteration(benchmark, setup):
    task, experts, clips = setup
    config = MTT.Config(preset="cpu", max_start_epoch=1)
    objective = TrajectoryObjective(task, config, clips.clone(), torch.arange(10), experts, [0])
    state = {"iteration": 0}

    def step():
        state["iteration"] += 1
        return objective.step(state["iteration"])

    loss = benchmark.pedantic(step, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert 0.0 < loss < 100.0


@pytest.mark.benchmark(group="mtt-iteration-ipc1")
def test_bare_forward_backward(benchmark, protocol, setup):
    _, _, clips = setup
    torch.manual_seed(0)
    net = build_net(protocol.net("minic3d-in"), 10).train()
    normalize = Normalize(protocol.trainer.normalize_mean, protocol.trainer.normalize_std)
    labels = torch.arange(10)

    def step():
        net.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(normalize(clips)), labels)
        loss.backward()
        return float(loss)

    assert benchmark.pedantic(step, rounds=ROUNDS, iterations=1, warmup_rounds=1) > 0
