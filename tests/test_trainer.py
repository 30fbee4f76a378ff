"""The protocol trainer: determinism, batching, parameter groups, and the student recipe."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from vdcbench.archive import read_archive
from vdcbench.evaluation.scoring import student_fit_config
from vdcbench.models import build_net
from vdcbench.core.randomness import STREAM_INIT, torch_seed
from vdcbench.train.sources import StoredClips
from vdcbench.train.trainer import Trainer, parameter_groups

# A shortened schedule, declared here as NOT the protocol: the protocol trains 300 epochs.
SHORT_EPOCHS = 4


def _short_run(protocol, archive_path, seed: int):
    loaded = read_archive(archive_path)
    config = dataclasses.replace(student_fit_config(protocol, loaded, "official"),
                                 epochs=SHORT_EPOCHS, eval_epochs=())
    torch.manual_seed(torch_seed(seed, STREAM_INIT))
    net = build_net(protocol.net("minic3d"), 10)
    c = loaded.condensed
    trainer = Trainer(net, config, StoredClips(c.videos, c.labels), seed=seed)
    return trainer.fit(None)


def test_same_archive_and_seed_replay_exactly(protocol, random_ipc1):
    _, path = random_ipc1
    first, second = _short_run(protocol, path, 0), _short_run(protocol, path, 0)
    assert len(first.losses) == SHORT_EPOCHS  # IPC 1 x 10 classes = one batch of 10 per epoch
    assert first.losses == second.losses
    assert first.weights_sha256 == second.weights_sha256


def test_another_seed_gives_another_run(protocol, random_ipc1):
    _, path = random_ipc1
    assert _short_run(protocol, path, 0).losses != _short_run(protocol, path, 1).losses


def test_student_recipe_comes_from_the_protocol(protocol, random_ipc1):
    config = student_fit_config(protocol, read_archive(random_ipc1[1]), "official")
    assert config.epochs == 300 and config.batch_size == 10
    assert config.optimizer == "adamw" and config.lr == 1e-3 and config.weight_decay == 0.01
    assert config.loss == "ce" and config.crop_scale == (0.08, 1.0) and config.hflip
    assert config.eval_epochs == tuple(range(209, 300, 10))
    assert abs(config.lr_factor(299) - 0.5 * (1 + np.cos(np.pi * 299 / 600))) < 1e-12


def test_batches_are_shuffled_per_epoch_and_keep_the_last_partial_batch(protocol):
    labels = torch.arange(25) % 10
    source = StoredClips(torch.zeros(25, 3, 8, 56, 56, dtype=torch.uint8), labels)
    config = dataclasses.replace(_dummy_config(protocol), batch_size=10)
    trainer = Trainer(build_net(protocol.net("minic3d"), 10), config, source, seed=3)
    epoch0, epoch1 = trainer.batches(0), trainer.batches(1)
    assert [len(b) for b in epoch0] == [10, 10, 5]
    assert sorted(np.concatenate(epoch0).tolist()) == list(range(25))
    assert not np.array_equal(np.concatenate(epoch0), np.concatenate(epoch1))
    assert np.array_equal(np.concatenate(epoch0), np.concatenate(trainer.batches(0)))


def test_weight_decay_skips_biases_and_norm_parameters(protocol):
    net = build_net(protocol.net("minic3d"), 10)
    decay, no_decay = parameter_groups(net, 0.01, 2)
    assert all(p.ndim >= 2 for p in decay["params"]) and decay["weight_decay"] == 0.01
    assert all(p.ndim < 2 for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0
    # 3 conv weights + the linear weight are decayed; every bias and BN affine is not.
    assert len(decay["params"]) == 4 and len(no_decay["params"]) == 3 * 3 + 1


def test_lr_follows_the_half_cosine_per_epoch(protocol):
    source = StoredClips(torch.zeros(10, 3, 8, 56, 56, dtype=torch.uint8), torch.arange(10))
    config = _dummy_config(protocol)
    trainer = Trainer(build_net(protocol.net("minic3d"), 10), config, source, seed=0)
    trainer.start_epoch(150)
    assert abs(trainer.optimizer.param_groups[0]["lr"] - 1e-3 * 0.5 * (1 + np.cos(np.pi / 4))) < 1e-15


def _dummy_config(protocol):
    from vdcbench.train.trainer import FitConfig
    t = protocol.trainer
    return FitConfig(epochs=1, batch_size=10, optimizer="adamw", lr=t.lr, lr_factor=t.lr_factor,
                     weight_decay=t.weight_decay, weight_decay_min_ndim=2, crop_size=56,
                     crop_scale=t.crop_scale, crop_ratio=t.crop_ratio, hflip=True,
                     mean=t.normalize_mean, std=t.normalize_std)


def test_records_match_their_schema_and_round_trip(tmp_path, random_ipc1):
    import json
    from pathlib import Path

    import jsonschema

    from vdcbench.evaluation.scoring import EvalSettings, Evaluation
    from vdcbench.protocol import PROTOCOL_DIR, load_protocol
    from vdcbench.evaluation.records import EvalRecord

    protocol = load_protocol(1)
    evaluation = Evaluation(protocol, read_archive(random_ipc1[1]),
                            EvalSettings(seeds=(0,), epochs=1), tmp_path)
    record = evaluation.run_seed(0)
    schema = json.loads((PROTOCOL_DIR / "schemas" / "result.schema.json").read_text())
    path = next(Path(tmp_path).rglob("seed0.json"))
    jsonschema.validate(json.loads(path.read_text()), schema)
    assert EvalRecord.from_disk(path) == record
    assert not record.official and record.key.teacher_sha256 is None
    assert evaluation.existing(0) == record


def test_fit_config_takes_closed_choices_as_enums_or_their_strings(protocol):
    import pytest

    from vdcbench.core.errors import VdcError
    from vdcbench.protocol import Loss, Optimizer
    config = _dummy_config(protocol)
    assert config.optimizer is Optimizer.ADAMW and config.loss is Loss.CE
    assert dataclasses.replace(config, loss="mse-gt").loss is Loss.MSE_GT
    assert dataclasses.replace(config, optimizer=Optimizer.SGD).optimizer is Optimizer.SGD
    with pytest.raises(VdcError, match="optimizer must be one of adamw, sgd, not 'adam'"):
        dataclasses.replace(config, optimizer="adam")
    with pytest.raises(VdcError, match="loss must be one of ce, mse-gt, kl, not 'mse'"):
        dataclasses.replace(config, loss="mse")
