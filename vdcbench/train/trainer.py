"""The protocol trainer: one ``fit`` that trains a net on clips and scores it on validation clips.

The same loop trains evaluation students (AdamW, the half-cosine schedule, the label strategy's
loss) and teachers (SGD, warm-up and steps, gradient clipping, cross-entropy); a ``FitConfig``
says which. Every random draw is keyed by (seed, epoch, clip index) — see ``randomness`` — and
torch's own generator (dropout) is reseeded every epoch, so a run replays and resumes exactly.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vdcbench.data.splits import ValidationClips
from vdcbench.train.checkpoint import FitCheckpoint
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


@torch.no_grad()
def score(net: nn.Module, validation: ValidationClips, normalize: Normalize, device: torch.device,
          batch_size: int = 100) -> Scores:
    """Per-video top-1 / top-5 accuracy (%) with one clip per video, in eval mode."""
    was_training = net.training
    net.eval()
    correct1 = correct5 = 0
    for start in range(0, len(validation.labels), batch_size):
        clips = validation.videos[start:start + batch_size].to(device)
        labels = validation.labels[start:start + batch_size].to(device)
        logits = net(normalize(to_unit_float(clips)))
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        correct1 += int((top[:, 0] == labels).sum())
        correct5 += int((top == labels[:, None]).any(dim=1).sum())
    net.train(was_training)
    total = max(1, len(validation.labels))
    return Scores(top1=100.0 * correct1 / total, top5=100.0 * correct5 / total)


class Trainer:
    """Trains ``net`` on ``source`` under ``config``; ``step`` is the unit the benchmark times."""

    def __init__(self, net: nn.Module, config: FitConfig, source, seed: int,
                 device: torch.device | str = "cpu", label_fn: LabelFn | None = None):
        self.device = torch.device(device)
        self.net = net.to(self.device)
        self.config = config
        self.source = source
        self.seed = seed
        self.label_fn = label_fn
        self.normalize = Normalize(config.mean, config.std)
        groups = parameter_groups(net, config.weight_decay, config.weight_decay_min_ndim)
        if config.optimizer is Optimizer.ADAMW:
            self.optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)
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

    def state_dict(self) -> dict[str, Any]:
        """What a resumed fit needs besides the epoch: subclasses add their own bookkeeping."""
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a checkpoint to belong to this fit (the key names the rest)."""
        return {"epochs": self.config.epochs, "batch_size": self.config.batch_size,
                "seed": self.seed, "clips": len(self.source)}

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
        """
        started = time.perf_counter()
        result = FitResult(final=Scores(float("nan"), float("nan")), by_epoch={})
        last = self.config.epochs - 1
        first, elapsed = 0, 0.0
        saved = checkpoint.load(self.fingerprint()) if checkpoint is not None else None
        if saved is not None:
            self.load_state_dict(saved["trainer"])
            first, elapsed = saved["epoch"] + 1, saved["wall_seconds"]
            result.losses = list(saved["losses"])
            result.by_epoch = {e: Scores(*s) for e, s in saved["by_epoch"].items()}
            result.iterations, result.clips = saved["iterations"], saved["clips"]
        saved_epochs = first
        for epoch in range(first, self.config.epochs):
            self.start_epoch(epoch)
            batches = self.batches(epoch)
            for step, indices in enumerate(batches, start=1):
                if stop is not None and stop.requested:
                    raise FitInterrupted(epoch, self.config.epochs, step - 1, len(batches),
                                         saved_epochs, checkpoint is not None)
                result.losses.append(self.step(indices, epoch))
                result.iterations += 1
                result.clips += len(self.owners(indices))
                if on_step is not None:
                    on_step(epoch, self.config.epochs, step, len(batches), result.losses[-1])
            if validation is not None and (epoch in self.config.eval_epochs or epoch == last):
                result.by_epoch[epoch] = score(self.net, validation, self.normalize, self.device)
            if checkpoint is not None and ((epoch + 1) % checkpoint.every == 0 or epoch == last):
                checkpoint.save({
                    "fingerprint": self.fingerprint(), "epoch": epoch,
                    "trainer": self.state_dict(), "losses": result.losses,
                    "by_epoch": {e: (s.top1, s.top5) for e, s in result.by_epoch.items()},
                    "iterations": result.iterations, "clips": result.clips,
                    "wall_seconds": elapsed + time.perf_counter() - started})
                saved_epochs = epoch + 1
            if progress is not None:
                progress(epoch + 1, self.config.epochs, result.losses[-1])
        if validation is not None:
            result.final = result.by_epoch[last]
        result.wall_seconds = elapsed + time.perf_counter() - started
        result.weights_sha256 = weights_sha256(self.net)
        return result
