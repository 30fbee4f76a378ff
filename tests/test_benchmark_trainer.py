"""Speed of the trainer's own step against a bare step of the same net on the same batch.

Run on an idle machine with ``python -m pytest tests/test_benchmark_trainer.py
--benchmark-enable``; the groups set each harness step beside its bare baseline. By default
(--benchmark-disable) each function runs once, as a test that the step works.

* harness: ``Trainer.step`` — the function ``vdcbench evaluate`` runs: draw the per-clip crops,
  crop/resize/flip the uint8 clips, normalise, labels, forward, loss, backward, AdamW.
* bare: forward / cross-entropy / backward / AdamW of the same net on an already prepared batch.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vdcbench.archive import read_archive
from vdcbench.evaluation.scoring import student_fit_config
from vdcbench.core.artifacts import ArtifactStore
from vdcbench.methods.base import CondensationTask
from vdcbench.methods.random_selection import RandomSelection
from vdcbench.models import build_net
from vdcbench.train.sources import StoredClips
from vdcbench.train.trainer import Trainer, parameter_groups

ROUNDS = 5


@pytest.fixture(scope="module", params=[1, 10], ids=["ipc1", "ipc10"])
def setup(request, protocol, tmp_path_factory):
    ipc = request.param
    from vdcbench.archive import write_archive
    track = protocol.track("synthetic", f"ipc{ipc}-t8")
    folder = tmp_path_factory.mktemp(f"bench-ipc{ipc}")
    task = CondensationTask(protocol, track, "hard", 0, ArtifactStore(folder))
    write_archive(RandomSelection().condense(task), folder / "r.tar", protocol=protocol)
    loaded = read_archive(folder / "r.tar")
    config = student_fit_config(protocol, loaded, "official")
    return ipc, loaded, config


def _trainer(protocol, loaded, config, label_fn=None):
    torch.manual_seed(0)
    net = build_net(protocol.net("minic3d"), 10)
    c = loaded.condensed
    trainer = Trainer(net, config, StoredClips(c.videos, c.labels), seed=0, label_fn=label_fn)
    trainer.start_epoch(0)
    return trainer


def _batch(loaded, config):
    return np.arange(min(config.batch_size, loaded.condensed.labels.shape[0]))


def test_harness_step(benchmark, protocol, setup):
    ipc, loaded, config = setup
    trainer = _trainer(protocol, loaded, config)
    indices = _batch(loaded, config)
    benchmark.group = f"trainer step ipc{ipc}"
    benchmark.extra_info["clips"] = len(indices)
    loss = benchmark.pedantic(trainer.step, args=(indices, 0), rounds=ROUNDS, warmup_rounds=1)
    assert np.isfinite(loss)


def test_bare_step(benchmark, protocol, setup):
    ipc, loaded, config = setup
    trainer = _trainer(protocol, loaded, config)
    indices = _batch(loaded, config)
    inputs = trainer.prepare(indices, 0)          # prepared once, outside the timing
    labels = loaded.condensed.labels[torch.from_numpy(indices)]
    net = trainer.net
    optimizer = torch.optim.AdamW(parameter_groups(net, config.weight_decay, 2), lr=config.lr)

    def bare_step():
        loss = F.cross_entropy(net(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    benchmark.group = f"trainer step ipc{ipc}"
    benchmark.extra_info["clips"] = len(indices)
    assert np.isfinite(benchmark.pedantic(bare_step, rounds=ROUNDS, warmup_rounds=1))


def test_harness_step_multi_sl(benchmark, protocol, setup):
    """multi-sl adds a teacher forward on every batch: reported on its own, not in the 10 %."""
    ipc, loaded, config = setup
    teacher = build_net(protocol.net("minic3d"), 10).eval()
    config = dataclasses.replace(config, loss="mse-gt")

    @torch.no_grad()
    def label_fn(inputs, indices):
        return teacher(inputs)

    trainer = _trainer(protocol, loaded, config, label_fn)
    indices = _batch(loaded, config)
    benchmark.group = f"trainer step ipc{ipc}"
    benchmark.extra_info["clips"] = len(indices)
    assert np.isfinite(benchmark.pedantic(trainer.step, args=(indices, 0), rounds=ROUNDS,
                                          warmup_rounds=1))
