"""Speed of one DM iteration against the bare forward/backward of the same net on the same clips.

Run on an idle machine with ``python -m pytest tests/test_benchmark_dm.py --benchmark-enable``;
the group sets the harness iteration beside its bare baseline. By default (--benchmark-disable)
each function runs once, as a test that the iteration works.

* harness: ``DMObjective.step`` at IPC 1 with the cpu preset's 8 real clips per class: a fresh
  MiniC3D, the real clips drawn and cut from the train split, the shared crop, the per-class
  forward of real (no grad) and synthetic clips, backward, SGD step.
* bare: the same net's forward of the same (already cut and cropped) real clips without grad and
  forward/backward of the same synthetic clips, class by class, nothing else.
"""

from __future__ import annotations

import pytest
import torch

from vdcbench.core.artifacts import ArtifactStore
from vdcbench.methods.base import CondensationTask
from vdcbench.methods.distillation import initial_selection
from vdcbench.methods.dm import DM_KEY, Config, DMObjective, real_views
from vdcbench.methods.random_selection import RandomSelection

ROUNDS = 3


@pytest.fixture(scope="module")
def objective(protocol, tmp_path_factory):
    task = CondensationTask(protocol, protocol.track("synthetic", "ipc1-t8"), "hard", 0,
                            ArtifactStore(tmp_path_factory.mktemp("bench-dm")))
    clips, labels = initial_selection(task, RandomSelection())
    return DMObjective(task, Config(preset="cpu"), clips, labels)


def test_dm_iteration(benchmark, objective):
    benchmark.group = "dm iteration ipc1"
    benchmark.extra_info["real clips per class"] = objective.config.batch_real
    loss = benchmark.pedantic(objective.step, args=(0,), rounds=ROUNDS, warmup_rounds=0)
    assert loss > 0


def test_bare_forward_backward(benchmark, objective):
    task = objective.task
    net = objective.fresh_net(0)
    prepared = []
    for label in range(objective.classes):
        rng = task.rng(DM_KEY, 0, label)
        real = real_views(task.train, objective.members[label], objective.config.batch_real,
                          task.dataset.crop, task, rng)
        crop = objective.crop_for(rng)
        rows = (objective.labels == label).nonzero().flatten()
        synthetic = crop.apply(objective.clips.detach()[rows])
        prepared.append((objective.normalize(crop.apply(real)),
                         objective.normalize(synthetic).requires_grad_(True)))

    def bare():
        for real, synthetic in prepared:
            with torch.no_grad():
                target = net.embed(real).mean(0)
            (net.embed(synthetic).mean(0) - target).pow(2).sum().backward()

    benchmark.group = "dm iteration ipc1"
    benchmark.pedantic(bare, rounds=ROUNDS, warmup_rounds=0)
    assert all(s.grad is not None for _, s in prepared)
