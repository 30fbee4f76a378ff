"""A fit stopped after an epoch and resumed from its checkpoint equals an unbroken fit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vdcbench.core.artifacts import ArtifactStore
from vdcbench.methods.forgetting import count_forgetting
from vdcbench.models import build_net
from vdcbench.core.randomness import STREAM_INIT, torch_seed
from vdcbench.train.checkpoint import FitCheckpoint
from vdcbench.train.sources import StoredClips
from vdcbench.train.trainer import FitConfig, Trainer

EPOCHS = 3


class _Stop(Exception):
    """Stands for a session killed right after an epoch's checkpoint was written."""


def _config(protocol, optimizer: str = "adamw") -> FitConfig:
    t = protocol.trainer
    return FitConfig(epochs=EPOCHS, batch_size=8, optimizer=optimizer, lr=t.lr,
                     lr_factor=t.lr_factor, weight_decay=t.weight_decay, weight_decay_min_ndim=2,
                     crop_size=56, crop_scale=t.crop_scale, crop_ratio=t.crop_ratio, hflip=True,
                     mean=t.normalize_mean, std=t.normalize_std)


def _source(count: int = 12) -> StoredClips:
    generator = torch.Generator().manual_seed(7)
    clips = torch.randint(0, 256, (count, 3, 8, 56, 56), dtype=torch.uint8, generator=generator)
    return StoredClips(clips, torch.arange(count) % 4)


def _net(protocol):
    torch.manual_seed(torch_seed(0, STREAM_INIT))
    return build_net(protocol.net("minic3d"), 4)


def _stop_after(epoch: int):
    def progress(done: int, total: int, loss: float) -> None:
        if done == epoch:
            raise _Stop
    return progress


def test_a_resumed_fit_gives_the_unbroken_fits_losses_and_weights(protocol, tmp_path):
    unbroken = Trainer(_net(protocol), _config(protocol), _source(), seed=0).fit(None)

    resume = FitCheckpoint(ArtifactStore(tmp_path), "run-resume")
    with pytest.raises(_Stop):
        Trainer(_net(protocol), _config(protocol), _source(), seed=0).fit(
            None, progress=_stop_after(1), checkpoint=resume)
    assert resume.store.has("run-resume")
    # A fresh process: new net (same init), new optimiser; only the checkpoint carries over.
    resumed = Trainer(_net(protocol), _config(protocol), _source(), seed=0).fit(
        None, checkpoint=resume)
    assert resumed.losses == unbroken.losses
    assert resumed.weights_sha256 == unbroken.weights_sha256
    assert (resumed.iterations, resumed.clips) == (unbroken.iterations, unbroken.clips)
    resume.clear()
    assert not resume.store.has("run-resume")


def test_a_finished_checkpoint_replays_no_epoch(protocol, tmp_path):
    resume = FitCheckpoint(ArtifactStore(tmp_path), "done")
    first = Trainer(_net(protocol), _config(protocol), _source(), seed=0).fit(None, checkpoint=resume)
    epochs_run = []
    again = Trainer(_net(protocol), _config(protocol), _source(), seed=0).fit(
        None, checkpoint=resume, progress=lambda done, total, loss: epochs_run.append(done))
    assert epochs_run == [] and again.weights_sha256 == first.weights_sha256


@pytest.mark.parametrize("damage", ["another seed", "truncated file"])
def test_a_checkpoint_of_another_fit_or_a_damaged_one_is_not_resumed_from(protocol, tmp_path,
                                                                          damage):
    store = ArtifactStore(tmp_path)
    resume = FitCheckpoint(store, "run")
    with pytest.raises(_Stop):
        Trainer(_net(protocol), _config(protocol), _source(), seed=1).fit(
            None, progress=_stop_after(1), checkpoint=resume)
    if damage == "truncated file":
        store.put_bytes("run", store.get_bytes("run")[:100])
        seed = 1
    else:
        seed = 0
    fresh = Trainer(_net(protocol), _config(protocol), _source(), seed=seed).fit(None)
    resumed = Trainer(_net(protocol), _config(protocol), _source(), seed=seed).fit(
        None, checkpoint=resume)
    assert resumed.losses == fresh.losses and len(resumed.losses) == len(fresh.losses)


def test_forgetting_counts_survive_a_stop_and_resume(protocol, tmp_path):
    config = dataclasses.replace(_config(protocol, optimizer="sgd"), crop_scale=(1.0, 1.0),
                                 crop_ratio=(1.0, 1.0), hflip=False)
    source = _source()
    unbroken = count_forgetting(_net(protocol), source.videos, source.labels, config, seed=0)
    resume = FitCheckpoint(ArtifactStore(tmp_path), "forgetting-resume")
    with pytest.raises(_Stop):
        count_forgetting(_net(protocol), source.videos, source.labels, config, seed=0,
                         progress=_stop_after(2), checkpoint=resume)
    resumed = count_forgetting(_net(protocol), source.videos, source.labels, config, seed=0,
                               checkpoint=resume)
    np.testing.assert_array_equal(resumed, unbroken)


def test_checkpoint_every_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        FitCheckpoint(ArtifactStore(tmp_path), "k", every=0)
