"""Data-parallel fits and batch norm checks, run by ``tests/test_distributed.py``.

As a script it is what torchrun launches on every rank (``python -m torch.distributed.run
--nproc-per-node N tests/distributed_cases.py OUT CASE...``): it joins the gloo group, runs each
case and saves what rank ``r`` saw to ``OUT/<case>-rank<r>.pt``. Imported, it gives the test the
same cases in one process, the reference the ranks must reproduce.

A fit case trains a tiny net on tiny clips for ``epochs`` with every batch shape that matters
(even, uneven, shares of one clip, an empty share) and scores tiny validation clips; the test
compares parameters, running statistics, losses and top-1/top-5.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from vdcbench.data.splits import ValidationClips
from vdcbench.protocol import load_protocol
from vdcbench.train.distributed import (AllReduceBatchNorm, World, all_reduce_sum,
                                        current_world, process_group, share)
from vdcbench.train.sources import StoredClips
from vdcbench.train.trainer import FitConfig, Trainer

CLASSES = 7
SIZE = 72        # stored clips are SIZE x SIZE; the trainer crops CROP x CROP (MiniC3D's least)
CROP = 64


@dataclass(frozen=True)
class FitCase:
    clips: int
    batch_size: int
    epochs: int = 1
    optimizer: str = "sgd"
    lr: float = 0.5
    loss: str = "ce"
    labels: str = "hard"          # hard | soft | teacher (an online label net)
    cutmix: bool = False
    net: str = "minic3d"
    grad_clip: float | None = None
    validation: int = 13


FIT_CASES = {
    # One SGD step on an even global batch: parameters move by lr x gradient, so any error in
    # the reduced gradient shows.
    "even": FitCase(clips=6, batch_size=6),
    # 7 clips in batches of 3: shares 2/1 on two ranks, 1/1/1 on three; the last batch is a
    # single clip, which leaves ranks with empty shares.
    "uneven": FitCase(clips=7, batch_size=3, epochs=2, grad_clip=1.0),
    # AdamW's first step is about lr x sign(gradient), which float noise flips where a gradient
    # is near zero: these cases compare the first moment (0.1 x the gradient) instead.
    "soft-kl-cutmix": FitCase(clips=5, batch_size=5, optimizer="adamw", lr=0.01, loss="kl",
                              labels="soft", cutmix=True),
    "teacher-mse": FitCase(clips=5, batch_size=5, optimizer="adamw", lr=0.01, loss="mse-gt",
                           labels="teacher"),
    "resnet": FitCase(clips=5, batch_size=5, net="i3d_r18", lr=0.1),
}


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make_source(case: FitCase) -> StoredClips:
    g = _generator(1)
    videos = torch.randint(0, 256, (case.clips, 3, 8, SIZE, SIZE), dtype=torch.uint8, generator=g)
    labels = torch.arange(case.clips) % CLASSES
    soft = torch.randn(case.clips, CLASSES, generator=g) if case.labels == "soft" else None
    return StoredClips(videos, labels, soft)


def make_validation(case: FitCase) -> ValidationClips:
    g = _generator(2)
    return ValidationClips(
        videos=torch.randint(0, 256, (case.validation, 3, 8, CROP, CROP), dtype=torch.uint8,
                             generator=g),
        labels=torch.arange(case.validation) % CLASSES)


def make_config(case: FitCase) -> FitConfig:
    return FitConfig(epochs=case.epochs, batch_size=case.batch_size, optimizer=case.optimizer,
                     lr=case.lr, lr_factor=lambda epoch: 1.0, weight_decay=1e-4,
                     weight_decay_min_ndim=2, crop_size=CROP, crop_scale=(0.5, 1.0),
                     crop_ratio=(0.75, 1.333), hflip=True, mean=(0.45, 0.45, 0.45),
                     std=(0.225, 0.225, 0.225), loss=case.loss, gamma=0.5, temperature=2.0,
                     grad_clip=case.grad_clip, cutmix=case.cutmix)


def make_net(case: FitCase, seed: int = 0) -> torch.nn.Module:
    from vdcbench.models import build_net
    torch.manual_seed(seed)
    return build_net(load_protocol(1).net(case.net), CLASSES)


def run_fit(name: str, world: World | None = None) -> dict:
    """Train case ``name`` (on ``world``, default the joined group) and return what it left."""
    case = FIT_CASES[name]
    label_fn = None
    if case.labels == "teacher":
        teacher = make_net(FitCase(clips=1, batch_size=1), seed=7).eval()
        label_fn = torch.no_grad()(lambda inputs, owners: teacher(inputs))
    trainer = Trainer(make_net(case), make_config(case), make_source(case), seed=3,
                      label_fn=label_fn, world=world)
    result = trainer.fit(make_validation(case))
    names = {id(p): n for n, p in trainer.net.named_parameters()}
    moments = {names[id(p)]: state["exp_avg"].clone()
               for p, state in trainer.optimizer.state.items() if "exp_avg" in state}
    return {"state": {k: v.detach().clone() for k, v in trainer.net.state_dict().items()},
            "moments": moments,
            "losses": result.losses, "top1": result.final.top1, "top5": result.final.top5,
            "iterations": result.iterations, "clips": result.clips}


# ---------------------------------------------------------------------------- batch norm
BN_BATCH = 5     # clips in the global batch: shares 3/2 on two ranks, 2/2/1 on three


def bn_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.nn.BatchNorm3d]:
    """A global batch, an upstream gradient for it, and the BatchNorm3d both sides start from."""
    g = _generator(5)
    x = torch.randn(BN_BATCH, 6, 3, 4, 4, generator=g) * 3 + 1
    upstream = torch.randn(BN_BATCH, 6, 3, 4, 4, generator=g)
    bn = torch.nn.BatchNorm3d(6, momentum=0.3)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(6, generator=g) + 0.5)
        bn.bias.copy_(torch.randn(6, generator=g))
    return x, upstream, bn


def run_batch_norm(world: World) -> dict:
    """Two training forwards and backwards of this rank's share through AllReduceBatchNorm."""
    x, upstream, bn = bn_inputs()
    start, stop = share(BN_BATCH, world)
    layer = AllReduceBatchNorm(6, momentum=0.3)
    layer.load_state_dict(bn.state_dict())
    local = x[start:stop].clone().requires_grad_(True)
    outputs = []
    for _ in range(2):
        y = layer(local)
        (y * upstream[start:stop]).sum().backward()
        outputs.append(y.detach().clone())
    return {"start": start, "stop": stop, "y": outputs[-1], "x_grad": local.grad.clone(),
            # The parameters' gradients are per-rank sums: DDP would add them; here we do.
            "weight_grad": all_reduce_sum(layer.weight.grad), "bias_grad":
                all_reduce_sum(layer.bias.grad),
            "state": {k: v.clone() for k, v in layer.state_dict().items()}}


def batch_norm_reference() -> dict:
    """The same two steps through BatchNorm3d on the whole batch, in one process."""
    x, upstream, bn = bn_inputs()
    full = x.clone().requires_grad_(True)
    for _ in range(2):
        y = bn(full)
        (y * upstream).sum().backward()
    return {"y": y.detach(), "x_grad": full.grad, "weight_grad": bn.weight.grad,
            "bias_grad": bn.bias.grad, "state": bn.state_dict()}


def main(out: Path, cases: list[str]) -> None:
    torch.set_num_threads(1)
    with process_group("cpu") as world:
        assert world == current_world() and world.parallel, world
        for name in cases:
            result = run_batch_norm(world) if name == "batch-norm" else run_fit(name)
            result["world_size"] = world.size
            torch.save(result, out / f"{name}-rank{world.rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
