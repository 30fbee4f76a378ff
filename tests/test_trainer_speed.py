"""The trainer's speed-ups keep its arithmetic: foreach AdamW and inference-mode validation give,
bit for bit, what the for-loop AdamW and ``no_grad`` scoring gave (records made before them must
still verify)."""

from __future__ import annotations

import dataclasses

import torch

from vdcbench.archive import read_archive
from vdcbench.core.randomness import STREAM_INIT, torch_seed
from vdcbench.data.splits import ValidationClips
from vdcbench.evaluation.scoring import student_fit_config
from vdcbench.models import build_net
from vdcbench.train.sources import StoredClips
from vdcbench.train.trainer import Trainer, score, weights_sha256

EPOCHS = 3   # a shortened schedule, declared here as NOT the protocol's 300


def _fit(protocol, archive_path, foreach: bool) -> Trainer:
    loaded = read_archive(archive_path)
    config = dataclasses.replace(student_fit_config(protocol, loaded, "official"),
                                 epochs=EPOCHS, eval_epochs=())
    torch.manual_seed(torch_seed(0, STREAM_INIT))
    net = build_net(protocol.net("minic3d"), 10)
    c = loaded.condensed
    trainer = Trainer(net, config, StoredClips(c.videos, c.labels), seed=0)
    assert trainer.optimizer.defaults["foreach"] is True   # what the protocol's runs use
    if not foreach:
        trainer.optimizer = torch.optim.AdamW(trainer.optimizer.param_groups, lr=config.lr,
                                              betas=config.betas, foreach=False)
    trainer.fit(None)
    return trainer


def test_foreach_adamw_trains_the_weights_the_for_loop_trained(protocol, random_ipc1):
    _, path = random_ipc1
    looped, grouped = _fit(protocol, path, foreach=False), _fit(protocol, path, foreach=True)
    assert weights_sha256(looped.net) == weights_sha256(grouped.net)
    for a, b in zip(looped.optimizer.state.values(), grouped.optimizer.state.values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"])
        assert torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])


def test_inference_mode_scoring_gives_the_no_grad_scores(protocol, random_ipc1):
    _, path = random_ipc1
    trainer = _fit(protocol, path, foreach=True)
    videos = read_archive(path).condensed.videos[..., :56, :56]
    clips = torch.cat([videos, videos.flip(-1), videos.flip(-2)]).contiguous()  # 30, batches of 7
    validation = ValidationClips(videos=clips, labels=torch.arange(30) % 10)
    trainer.net.train()
    fast = score(trainer.net, validation, trainer.normalize, trainer.device, batch_size=7)
    assert trainer.net.training                      # score gives back the mode it found
    with torch.no_grad():                            # the undecorated function, as it ran before
        before = score.__wrapped__(trainer.net, validation, trainer.normalize, trainer.device,
                                   batch_size=7)
    assert (fast.top1, fast.top5) == (before.top1, before.top5)
    assert 0 < fast.top5 and fast.top1 <= fast.top5
