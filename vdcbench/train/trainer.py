"""The protocol trainer: one ``fit`` that trains a net on clips and scores it on validation clips.

The same loop trains evaluation students (AdamW, the half-cosine schedule, the label strategy's
loss) and teachers (SGD, warm-up and steps, gradient clipping, cross-entropy); a ``FitConfig``
says which. Every random draw is keyed by (seed, epoch, clip index) — see ``randomness`` — and
torch's own generator (dropout) is reseeded every epoch, so a run replays and resumes exactly.

Launched by torchrun on several processes (see ``distributed``), a fit is data-parallel: each rank
trains on its contiguous share of every batch, gradients are summed so the update is the one a
single process makes on the whole batch, validation is sharded, and only rank 0 saves checkpoints
and reports progress. With one process nothing of that runs: the arithmetic is unchanged.
"""

from __future__ import annotations

import hashlib
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from vdcbench.core.errors import VdcError
from vdcbench.data.splits import ValidationClips
from vdcbench.train.checkpoint import FitCheckpoint
from vdcbench.train.distributed import (SINGLE, BatchShard, World, all_reduce_sum,
                                        broadcast_object, convert_for_data_parallel,
                                        current_world, share)
from vdcbench.train.interrupt import FitInterrupted, StopRequest
from vdcbench.train.augment import Normalize, apply_crops, draw_crops, to_unit_float
from vdcbench.train.losses import kl_divergence, mse_gt
from vdcbench.core.randomness import (STREAM_CUTMIX, STREAM_SHUFFLE, STREAM_TORCH, rng_for,
                                       torch_seed)
from vdcbench.protocol import Loss, Optimizer


@dataclass(frozen=True)
class FitConfig:
    epochs: int
    batch_size: int
    optimizer: Optimizer
    lr: float
    lr_factor: Callable[[int], float]   # per-epoch multiplier of lr
    weight_decay: float
    weight_decay_min_ndim: int          # parameters with fewer dims get no weight decay
    crop_size: int
    crop_scale: tuple[float, float]
    crop_ratio: tuple[float, float]
    hflip: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    loss: Loss = Loss.CE
    gamma: float = 0.1
    temperature: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    grad_clip: float | None = None
    cutmix: bool = False
    cutmix_beta: tuple[float, float] = (1.0, 1.0)
    shuffle: bool = True
    drop_last: bool = False
    eval_epochs: tuple[int, ...] = ()   # 0-based epochs scored besides the final one

    def __post_init__(self) -> None:
        # Spelt as strings by callers that predate the enums (and by the protocol's TOML), so a
        # string is accepted here and a misspelling refused before any training starts.
        object.__setattr__(self, "optimizer", Optimizer.parse(self.optimizer, "optimizer"))
        object.__setattr__(self, "loss", Loss.parse(self.loss, "loss"))


@dataclass(frozen=True)
class Scores:
    top1: float
    top5: float


@dataclass
class FitResult:
    final: Scores
    by_epoch: dict[int, Scores]
    losses: list[float] = field(default_factory=list)
    iterations: int = 0
    clips: int = 0              # samples the net trained on (what training compute scales with)
    wall_seconds: float = 0.0
    weights_sha256: str = ""

    def best_top1(self, epochs: tuple[int, ...]) -> float | None:
        values = [self.by_epoch[e].top1 for e in epochs if e in self.by_epoch]
        return max(values) if values else None


LabelFn = Callable[[torch.Tensor, np.ndarray], torch.Tensor | None]
"""(normalised augmented batch, the instance index of each of its clips) -> teacher logits, or
None for hard labels."""

StepProgress = Callable[[int, int, int, int, float], None]
"""(0-based epoch, epochs, 1-based step of the epoch, steps in the epoch, the step's loss):
progress within an epoch, for fits whose epochs take minutes (teachers on real data)."""


def parameter_groups(net: nn.Module, weight_decay: float, min_ndim: int) -> list[dict]:
    decay, no_decay = [], []
    for _, param in net.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.ndim >= min_ndim else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def weights_sha256(net: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@torch.inference_mode()
def score(net: nn.Module, validation: ValidationClips, normalize: Normalize, device: torch.device,
          batch_size: int = 100, world: World = SINGLE) -> Scores:
    """Per-video top-1 / top-5 accuracy (%) with one clip per video, in eval mode.

    With several ranks each scores its contiguous share of the videos and the counts are summed;
    a share's batches end where one process's would, so each clip meets the same batch mates
    as far as the share allows."""
    was_training = net.training
    net.eval()
    count = len(validation.labels)
    first, stop = share(count, world) if world.parallel else (0, count)
    correct1 = correct5 = 0
    start = first
    while start < stop:
        end = min(stop, (start // batch_size + 1) * batch_size)
        clips = validation.videos[start:end].to(device)
        labels = validation.labels[start:end].to(device)
        logits = net(normalize(to_unit_float(clips)))
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        correct1 += int((top[:, 0] == labels).sum())
        correct5 += int((top == labels[:, None]).any(dim=1).sum())
        start = end
    if world.parallel:
        counts = all_reduce_sum(torch.tensor([correct1, correct5], dtype=torch.int64,
                                             device=device))
        correct1, correct5 = int(counts[0]), int(counts[1])
    net.train(was_training)
    total = max(1, count)
    return Scores(top1=100.0 * correct1 / total, top5=100.0 * correct5 / total)


# Buffers (BatchNorm's running statistics) are the global batch's on every rank already: DDP
# need not copy rank 0's before each forward. The torch installed here (2.14) deprecates
# broadcast_buffers for forward_sync_buffers; older ones (>= 2.4 is supported) lack the new name.
_NO_BUFFER_SYNC = ({"forward_sync_buffers": False}
                   if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                   else {"broadcast_buffers": False})


class Trainer:
    """Trains ``net`` on ``source`` under ``config``; ``step`` is the unit the benchmark times.

    ``world`` is the process group the fit spans (default: the one this process joined, if any;
    see ``distributed``). With more than one rank the net's BatchNorm and Dropout layers are
    replaced in place by their whole-batch equivalents and the net is wrapped in
    ``DistributedDataParallel``; ``self.net`` stays the plain module (its state dict unchanged).
    """

    def __init__(self, net: nn.Module, config: FitConfig, source, seed: int,
                 device: torch.device | str = "cpu", label_fn: LabelFn | None = None,
                 world: World | None = None):
        self.device = torch.device(device)
        self.world = current_world() if world is None else world
        if self.world.parallel and type(self).step is not Trainer.step:
            raise VdcError(f"{type(self).__name__} trains its own steps; it cannot run on "
                           f"{self.world.size} processes")
        self.net = net.to(self.device)
        self.shard = BatchShard()
        self._parallel_net: nn.Module | None = None
        if self.world.parallel:
            convert_for_data_parallel(self.net, self.shard)
            self._parallel_net = DistributedDataParallel(
                self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                **_NO_BUFFER_SYNC)
        self.config = config
        self.source = source
        self.seed = seed
        self.label_fn = label_fn
        self.normalize = Normalize(config.mean, config.std)
        groups = parameter_groups(net, config.weight_decay, config.weight_decay_min_ndim)
        if config.optimizer is Optimizer.ADAMW:
            # foreach: the same per-element arithmetic as the for-loop torch picks on a CPU (records
            # stay bit-identical; tests/test_trainer_speed.py), in a third less time; fused
            # would be faster still but rounds differently.
            self.optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=config.betas,
                                               foreach=True)
        else:
            self.optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
        self.labels = source.labels.to(self.device)
        self.soft = getattr(source, "soft_labels", None)

    def batches(self, epoch: int) -> list[np.ndarray]:
        n = len(self.source)
        order = (rng_for(self.seed, STREAM_SHUFFLE, epoch).permutation(n)
                 if self.config.shuffle else np.arange(n))
        size = self.config.batch_size
        stop = n - n % size if self.config.drop_last else n
        return [order[i:i + size] for i in range(0, stop, size)]

    def start_epoch(self, epoch: int) -> None:
        factor = self.config.lr_factor(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * factor
        torch.manual_seed(torch_seed(self.seed, STREAM_TORCH, epoch))
        self.net.train()

    def owners(self, indices: np.ndarray) -> np.ndarray:
        """The instance of each clip a step on ``indices`` trains on: the indices themselves,
        unless the source's formation cuts an instance into several clips (``segment``)."""
        owners = getattr(self.source, "owners", None)
        return indices if owners is None else owners(indices)

    def prepare(self, indices: np.ndarray, epoch: int) -> torch.Tensor:
        """Clips of ``indices``, augmented and normalised: the view the student (and teacher) see.

        Each clip's crop is keyed by its source's ``clip_ids`` (the instance index, unless an
        instance yields several clips)."""
        clips = self.source.clips(indices, self.seed, epoch).to(self.device)
        keys = getattr(self.source, "clip_ids", None)
        ids = indices if keys is None else keys(indices)
        h, w = clips.shape[-2:]
        crops = draw_crops(self.seed, epoch, ids, h, w, self.config.crop_scale,
                           self.config.crop_ratio, self.config.hflip)
        return self.normalize(apply_crops(clips, crops, self.config.crop_size))

    def _cutmix(self, inputs: torch.Tensor, epoch: int, first: int):
        rng = rng_for(self.seed, STREAM_CUTMIX, epoch, first)
        lam = float(rng.beta(*self.config.cutmix_beta))
        perm = torch.from_numpy(rng.permutation(inputs.shape[0])).to(self.device)
        h, w = inputs.shape[-2:]
        cut = np.sqrt(1.0 - lam)
        ch, cw = int(h * cut), int(w * cut)
        cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
        y0, y1 = np.clip([cy - ch // 2, cy + ch // 2], 0, h)
        x0, x1 = np.clip([cx - cw // 2, cx + cw // 2], 0, w)
        mixed = inputs.clone()
        mixed[..., y0:y1, x0:x1] = inputs[perm][..., y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)
        return mixed, perm, lam

    def loss(self, logits: torch.Tensor, labels: torch.Tensor,
             teacher: torch.Tensor | None) -> torch.Tensor:
        if self.config.loss is Loss.CE or teacher is None:
            return F.cross_entropy(logits, labels)
        if self.config.loss is Loss.MSE_GT:
            return mse_gt(logits, teacher, labels, self.config.gamma)
        return kl_divergence(logits, teacher, self.config.temperature)

    def step(self, indices: np.ndarray, epoch: int) -> float:
        """One optimiser step: augmentation, labels, forward, backward, update."""
        if self.world.parallel:
            return self._shared_step(indices, epoch, stop=False)[0]
        inputs = self.prepare(indices, epoch)
        owners = self.owners(indices)
        labels = self.labels[torch.from_numpy(owners).to(self.device)]
        perm, lam = None, 1.0
        if self.config.cutmix:
            inputs, perm, lam = self._cutmix(inputs, epoch, int(indices[0]))
        teacher = None
        if self.label_fn is not None:
            teacher = self.label_fn(inputs, owners)
        elif self.soft is not None:
            teacher = self.soft[torch.from_numpy(owners)].to(self.device)
            if perm is not None:
                teacher = lam * teacher + (1.0 - lam) * teacher[perm]
        logits = self.net(inputs)
        loss = self.loss(logits, labels, teacher)
        if perm is not None and teacher is None:
            loss = lam * loss + (1.0 - lam) * self.loss(logits, labels[perm], None)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.config.grad_clip)
        self.optimizer.step()
        return float(loss.detach())

    def _shared_step(self, indices: np.ndarray, epoch: int, stop: bool) -> tuple[float, bool]:
        """This rank's part of one data-parallel step on the global batch ``indices``: the
        global batch's mean loss, and whether any rank was asked to stop.

        The rank trains on its contiguous share of the instances. Its loss is the mean over its
        share weighted by the share's size over the batch's, so the weighted losses sum to the
        global mean over ranks (DDP averages gradients, hence the factor of the world size). Under
        CutMix a clip is mixed with a partner anywhere in the batch, so every rank prepares the
        whole batch and keeps its share."""
        owners = self.owners(indices)
        per_instance = len(owners) // len(indices)
        first, stop_at = share(len(indices), self.world)
        lo, hi = first * per_instance, stop_at * per_instance
        total = len(owners)
        all_labels = self.labels[torch.from_numpy(owners).to(self.device)]
        perm, lam = None, 1.0
        if self.config.cutmix:
            inputs, perm, lam = self._cutmix(self.prepare(indices, epoch), epoch, int(indices[0]))
            inputs = inputs[lo:hi]
        elif hi > lo:
            inputs = self.prepare(indices[first:stop_at], epoch)
        else:    # an empty share still runs the net: its layers' collectives need every rank
            inputs = self.prepare(indices[:1], epoch)[:0]
        teacher = None
        if self.label_fn is not None:
            if hi > lo:
                teacher = self.label_fn(inputs, owners[lo:hi])
        elif self.soft is not None:
            teacher = self.soft[torch.from_numpy(owners)].to(self.device)
            if perm is not None:
                teacher = lam * teacher + (1.0 - lam) * teacher[perm]
            teacher = teacher[lo:hi]
        self.shard.total, self.shard.offset = total, lo
        logits = self._parallel_net(inputs)
        if hi > lo:
            labels = all_labels[lo:hi]
            loss = self.loss(logits, labels, teacher)
            if perm is not None and teacher is None:
                loss = lam * loss + (1.0 - lam) * self.loss(logits, all_labels[perm][lo:hi], None)
            weighted = loss * ((hi - lo) / total)
        else:
            weighted = logits.sum() * 0.0
        self.optimizer.zero_grad(set_to_none=True)
        (weighted * self.world.size).backward()
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.config.grad_clip)
        self.optimizer.step()
        reduced = all_reduce_sum(torch.stack([
            weighted.detach().to(torch.float64),
            torch.tensor(1.0 if stop else 0.0, dtype=torch.float64, device=self.device)]))
        return float(reduced[0]), bool(reduced[1] > 0)

    def state_dict(self) -> dict[str, Any]:
        """What a resumed fit needs besides the epoch: subclasses add their own bookkeeping."""
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a checkpoint to belong to this fit (the key names the rest).

        A data-parallel fit adds its number of ranks: float sums are grouped by rank, so half a
        run on four processes and half on one would give numbers neither reproduces."""
        fingerprint = {"epochs": self.config.epochs, "batch_size": self.config.batch_size,
                       "seed": self.seed, "clips": len(self.source)}
        if self.world.parallel:
            fingerprint["world_size"] = self.world.size
        return fingerprint

    def fit(self, validation: ValidationClips | None,
            progress: Callable[[int, int, float], None] | None = None,
            checkpoint: FitCheckpoint | None = None, *,
            on_step: StepProgress | None = None,
            stop: StopRequest | None = None) -> FitResult:
        """Train all epochs; score ``validation`` at ``eval_epochs`` and after the last epoch.

        With a ``checkpoint``, the state after every ``checkpoint.every`` epochs (and after the
        last) is saved, and a fit that finds its own saved state resumes after that epoch. The
        caller clears the checkpoint once it has stored the result. ``progress`` hears of every
        epoch, ``on_step`` of every step. Once ``stop`` is requested the fit raises
        ``FitInterrupted`` after the step in progress, keeping what the checkpoint holds.

        Data-parallel, rank 0 alone reads and writes the checkpoint (the others receive what it
        read) and hears progress; a stop requested on any rank stops every rank after the next
        step, since the request travels with that step's loss.
        """
        started = time.perf_counter()
        result = FitResult(final=Scores(float("nan"), float("nan")), by_epoch={})
        last = self.config.epochs - 1
        first, elapsed = 0, 0.0
        writer = self.world.is_writer
        saved = (checkpoint.load(self.fingerprint())
                 if checkpoint is not None and writer else None)
        if self.world.parallel and checkpoint is not None:
            saved = broadcast_object(saved, self.world)
        if saved is not None:
            self.load_state_dict(saved["trainer"])
            first, elapsed = saved["epoch"] + 1, saved["wall_seconds"]
            result.losses = list(saved["losses"])
            result.by_epoch = {e: Scores(*s) for e, s in saved["by_epoch"].items()}
            result.iterations, result.clips = saved["iterations"], saved["clips"]
        saved_epochs = first
        stopping = False       # data-parallel: a stop every rank has heard of
        for epoch in range(first, self.config.epochs):
            self.start_epoch(epoch)
            batches = self.batches(epoch)
            for step, indices in enumerate(batches, start=1):
                if stop is not None and (stopping if self.world.parallel else stop.requested):
                    raise FitInterrupted(epoch, self.config.epochs, step - 1, len(batches),
                                         saved_epochs, checkpoint is not None)
                if self.world.parallel:
                    loss, stopping = self._shared_step(
                        indices, epoch, stop=stop is not None and stop.requested)
                    result.losses.append(loss)
                else:
                    result.losses.append(self.step(indices, epoch))
                result.iterations += 1
                result.clips += len(self.owners(indices))
                if on_step is not None and writer:
                    on_step(epoch, self.config.epochs, step, len(batches), result.losses[-1])
            if validation is not None and (epoch in self.config.eval_epochs or epoch == last):
                result.by_epoch[epoch] = score(self.net, validation, self.normalize, self.device,
                                               world=self.world)
            if checkpoint is not None and ((epoch + 1) % checkpoint.every == 0 or epoch == last):
                if writer:
                    checkpoint.save({
                        "fingerprint": self.fingerprint(), "epoch": epoch,
                        "trainer": self.state_dict(), "losses": result.losses,
                        "by_epoch": {e: (s.top1, s.top5) for e, s in result.by_epoch.items()},
                        "iterations": result.iterations, "clips": result.clips,
                        "wall_seconds": elapsed + time.perf_counter() - started})
                saved_epochs = epoch + 1
            if progress is not None and writer:
                progress(epoch + 1, self.config.epochs, result.losses[-1])
        if validation is not None:
            result.final = result.by_epoch[last]
        result.wall_seconds = elapsed + time.perf_counter() - started
        result.weights_sha256 = weights_sha256(self.net)
        return result
