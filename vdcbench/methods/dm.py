"""DM (distribution matching, Zhao & Bilen) for video: match class-mean embeddings of random nets.

Each iteration a freshly initialised MiniC3D (its own seed per iteration) embeds, per class, a
batch of real clips and the class's synthetic clips under one shared crop and flip (the role of
DSA's Siamese augmentation: real and synthetic see the same transform); the loss is the sum over
classes of the squared distance between the two mean embeddings, and SGD (momentum 0.5) moves the
synthetic clips, the only parameters. Synthetic clips start as Random's clips for the same seed.

The recipe follows the video DM of Wang et al. ("Dancing with Still Images", ``sh/baseline/DM.sh``:
5000 iterations, 64 real clips per class, init from real clips) with the image DM's optimiser.

Deviations from the reference (recorded in protocol/CHANGELOG.md):
- The net is MiniC3D, the protocol's condensation net, in eval mode: its fresh BatchNorm layers
  hold running statistics 0 and 1, so they are the identity (up to eps) and every clip is embedded
  on its own, as in the video DM's norm-free ConvNet3D. (The image DM's BN path instead embeds all
  classes in one training-mode forward, which ties the classes' embeddings through the batch.)
- The real clip is one training window of a random video of the class, cut to the synthetic
  clips' size at a random position, then the shared crop/flip; the video DM used no augmentation,
  the image DM DSA's colour/crop/cutout/flip/scale/rotate. The shared crop draws its area from the
  evaluation trainer's range (``min_scale``, 0.08 by default) so that the clips are matched under
  the views the evaluation trains on.
- Clips live in pixel scale [0, 1] (the reference optimises normalised pixels): the learning rate
  1.5 is the video DM's lr_img 30 (miniUCF101 IPC 1) times the squared ImageNet std (≈ 0.226²),
  which makes the same steps in normalised units.
- The loss is backpropagated class by class (its terms are independent), so memory holds one
  class's synthetic clips' activations at a time.

On a temporal track of T frames the synthetic instances hold T frames (Random's T-frame real
windows at the start) and each iteration embeds the clips the track's ``formation`` forms from
them, a fresh random 8-frame window per instance under ``slide-window`` (the study's co-optimised
slide-window; every segment under ``segment``), so each step moves the frames its windows read;
the real batch stays 8-frame training clips of the protocol's sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vdcbench.archive.condensed import CondensedSet, MethodKind
from vdcbench.data.sampling import clip_indices, training_start
from vdcbench.data.splits import VideoSplit, class_members
from vdcbench.methods.base import CondensationTask, Method
from vdcbench.methods.distillation import (LoopSettings, Objective, apply_preset,
                                           check_positive, check_storage, distill, forms_clips,
                                           initial_selection, method_formation,
                                           method_torch_seed_keys, stored_clips, torch_rng,
                                           window_rng)
from vdcbench.methods.random_selection import RandomSelection
from vdcbench.methods.shared_augment import SharedCrop, identity_crop, shared_augment
from vdcbench.models import build_net
from vdcbench.core.errors import VdcError
from vdcbench.train.augment import Normalize
from vdcbench.train.formation import form_clips

# Generator keys of DM's draws (task.rng(DM_KEY, iteration, class)); distinct from the
# selection methods' keys, whose first key is a class or a video.
DM_KEY = 1_000_001

PRESETS = {
    # The embedded data set: at most 20 minutes at IPC 1 on one idle core (about 3.3 s of CPU an
    # iteration). A fresh net's gradient agrees with another's on about 1 % of its length, so
    # the clips only move where many nets agree: at the reference rate 100 iterations moved
    # them by 0.0065 on average and the loss did not fall; 20x the rate (lr 30) lowered it by a
    # quarter in 60 iterations (1.24 -> 0.96, 6-iteration means), hence 200 iterations at lr 30.
    "cpu": {"iterations": 200, "batch_real": 8, "lr": 30.0, "checkpoint_every": 20},
    # Seconds: the kill-and-resume tests and smoke runs.
    "tiny": {"iterations": 6, "batch_real": 2, "checkpoint_every": 2},
}


@dataclass(frozen=True)
class Config:
    iterations: int = 5000      # distillation iterations (video DM, DM.sh)
    batch_real: int = 64        # real clips per class and iteration (video DM, DM.sh)
    # SGD step on pixel-scale clips: the video DM's lr_img 30 (normalised pixels) x 0.226^2
    lr: float = 1.5
    momentum: float = 0.5       # SGD momentum on the synthetic clips (image DM)
    net: str = "minic3d"        # the protocol net embedding the clips (fresh each iteration)
    # Smallest area of the shared crop, as a fraction of the clip (the evaluation trainer's
    # 0.08); 1.0 with augment=false switches augmentation off.
    min_scale: float = 0.08
    augment: bool = True        # the shared crop/flip on real and synthetic clips
    storage: str = "float16"    # dtype of the stored clips: float16 or float32
    checkpoint_every: int = 100  # iterations between saved resume states
    # A declared smaller recipe: cpu (synthetic, <= 20 min at IPC 1 on one core) or tiny
    preset: str = ""
    # Temporal formation on a track of other than 8 frames (segment, slide-window,
    # interpolate-duplicate, interpolate-linear, interpolate-linear-w4): how each iteration forms
    # the T-frame synthetic videos into the clips the net embeds, recorded for evaluation;
    # empty: the track's default (slide-window above 8 frames, interpolate-linear below).
    formation: str = ""

    def __post_init__(self) -> None:
        apply_preset(self, PRESETS, "dm")
        check_positive(self, ("iterations", "batch_real", "lr", "checkpoint_every"), "dm")
        check_storage(self.storage, "dm")
        if not 0.0 <= self.momentum < 1.0:
            raise VdcError(f"dm momentum must be in [0, 1), not {self.momentum}")
        if not 0.0 < self.min_scale <= 1.0:
            raise VdcError(f"dm min_scale must be in (0, 1], not {self.min_scale}")


def class_mean_distance(net: torch.nn.Module, real: torch.Tensor, synthetic: torch.Tensor,
                        crop: SharedCrop, normalize: Normalize) -> torch.Tensor:
    """||mean embed(real) - mean embed(synthetic)||², both under the same ``crop``.

    ``real`` (uint8 or float) carries no gradient; ``synthetic`` (float pixel scale) does."""
    with torch.no_grad():
        target = net.embed(normalize(crop.apply(real))).mean(0)
    mean = net.embed(normalize(crop.apply(synthetic))).mean(0)
    return (target - mean).pow(2).sum()


def real_views(split: VideoSplit, members: np.ndarray, count: int, size: int, task: CondensationTask,
               rng: np.random.Generator) -> torch.Tensor:
    """``count`` real clips of one class: random videos (without replacement while the class has
    enough), a random training window each, cut to ``size`` at a random position; uint8.

    The protocol's clip length whatever the track's: on a temporal track the synthetic videos
    are matched through the clips their formation forms, and these are what they are matched to."""
    chosen = rng.choice(members, size=count, replace=count > len(members))
    frames, sampling = task.protocol.sampling.frames, task.protocol.sampling
    index = []
    for video in chosen:
        length, interval = int(split.lengths[int(video)]), split.interval(int(video), sampling)
        index.append(clip_indices(length, training_start(length, interval, frames, rng),
                                  interval, frames))
    clips = split.clips([int(v) for v in chosen], index)
    height, width = clips.shape[-2:]
    tops = rng.integers(0, height - size + 1, size=count)
    lefts = rng.integers(0, width - size + 1, size=count)
    return torch.stack([clip[..., t:t + size, l:l + size]
                        for clip, t, l in zip(clips, tops, lefts)])


class DMObjective(Objective):
    """DM's iteration over synthetic clips ordered by class (as ``labels`` says)."""

    def __init__(self, task: CondensationTask, config: Config, clips: torch.Tensor,
                 labels: torch.Tensor):
        self.task, self.config = task, config
        self.labels = labels
        self._clips = clips.to(task.device).requires_grad_(True)
        self.optimizer = torch.optim.SGD([self._clips], lr=config.lr, momentum=config.momentum)
        trainer = task.protocol.trainer
        self.normalize = Normalize(trainer.normalize_mean, trainer.normalize_std)
        self.augment = shared_augment((config.min_scale, trainer.crop_scale[1]),
                                      trainer.crop_ratio, task.dataset.hflip)
        self.spec = task.protocol.net(config.net)
        self.classes = task.train.num_classes
        self.members = [class_members(task.train, c, 1, "dm") for c in range(self.classes)]
        self.formation = task.formation(config.formation, "dm")

    @property
    def clips(self) -> torch.Tensor:
        return self._clips

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"clips": self.optimizer}

    def fresh_net(self, iteration: int) -> torch.nn.Module:
        with torch_rng(*method_torch_seed_keys(self.task, DM_KEY, iteration)):
            net = build_net(self.spec, self.classes)
        net.requires_grad_(False)
        return net.to(self.task.device).eval()

    def crop_for(self, rng: np.random.Generator) -> SharedCrop:
        size = self.task.dataset.crop
        if not self.config.augment:
            return identity_crop(size)
        return self.augment.draw(rng, size)

    def step(self, iteration: int) -> float:
        net = self.fresh_net(iteration)
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for label in range(self.classes):
            rows = (self.labels == label).nonzero().flatten()
            if rows.numel() == 0:
                continue
            rng = self.task.rng(DM_KEY, iteration, label)
            real = real_views(self.task.train, self.members[label], self.config.batch_real,
                              self.task.dataset.crop, self.task, rng).to(self.task.device)
            synthetic = self._clips[rows]
            if forms_clips(self.formation):
                # Every clip the formation forms enters the class mean (each segment alike).
                synthetic = form_clips(synthetic, self.formation,
                                       window_rng(self.task, DM_KEY, iteration, label)).clips
            loss = class_mean_distance(net, real, synthetic, self.crop_for(rng), self.normalize)
            loss.backward()     # class by class: the terms share no clip
            total += float(loss.detach())
        self.optimizer.step()
        return total


class DM(Method):
    name = "dm"
    kind = MethodKind.DISTILLATION
    description = "distribution matching: class-mean embeddings of fresh MiniC3Ds, real vs synthetic"
    Config = Config

    def condense(self, task: CondensationTask) -> CondensedSet:
        cfg = self.config
        method_formation(task, self)    # a formation the track cannot take fails before any work
        result = distill(
            task, self, LoopSettings(cfg.iterations, cfg.checkpoint_every),
            initial=lambda: initial_selection(task, RandomSelection()),
            make_objective=lambda clips, labels: DMObjective(task, cfg, clips, labels))
        return task.finish(self, stored_clips(result.clips, cfg.storage), result.labels,
                           wall_seconds=result.seconds)
