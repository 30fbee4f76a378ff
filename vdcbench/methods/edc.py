"""EDC (Shao et al., NeurIPS 2024) for video: BatchNorm-statistics matching on the protocol teacher.

Synthetic clips start as RDED's selection for the same seed (the study's "rded-init") and are
optimised in batches of ``batch_size`` clips (class-major, as EDC's recover walks (class, IPC)
pairs), each batch for ``iterations`` Adam steps (betas 0.5, 0.9; cosine learning rate from
``lr`` to 0; clamped to [0, 1] after every step, as EDC clips its images). Each step one teacher
(round robin over ``teachers``, the counter running across batches) sees the batch under one
shared RandomResizedCrop (area 0.5–1) and flip, and the loss is

    CE(teacher(x), y) + r_loss · Σ_l w_l · r_l,   w_0 = first_bn_weight (10), else 1,
    r_l = (1 − a)·(‖σ²_run − σ̃²‖₂ + ‖μ_run − μ̃‖₂) + a·(‖σ²_cls − σ̃²‖₂ + ‖μ_cls − μ̃‖₂),

with a = ``category_weight`` (0.5, EDC's hard-coded mix), μ_run/σ²_run the layer's running
statistics (the train split's), μ_cls/σ²_cls the mean over the batch's labels of the per-class
statistics of the train split (computed once per teacher and cached in the artifact store, keyed
by the protocol and the teacher's sha256), and μ̃ = EMA(μ) + μ − sg(μ) EDC's "soft" batch
statistic: its value is a moving average (momentum ``ema_momentum``, started at 0 as EDC's hooks
start) over the teacher's past steps, its gradient the current batch's.

Defaults are EDC's ImageNet-1k recover script (which also starts from RDED's images): batch 80,
lr 0.05 in normalised units, 1000 iterations per batch, r_loss 0.1, momentum 0.8.

Deviations from the reference (recorded in protocol/CHANGELOG.md):
- Only BatchNorm statistics are matched: EDC's ImageNet code also matches every convolution's
  input statistics and their 16x16-patch statistics (G-VBSM's ConvFeatureHook); the study
  describes EDC's matching as BatchNorm mean/variance only (its appendix A, equation 2).
- Clips are optimised in pixel scale [0, 1]; ``lr`` is EDC's 0.05 times the ImageNet std
  (≈ 0.226), the same Adam steps in normalised units.
- The shared crop keeps the teacher's input size (the clip's); the initial clips are not flipped
  again (RDED's views are already randomly flipped) and EDC's ShufflePatches, a no-op in its
  code, is left out.
- The train split's per-class statistics come from one training window per video, cut by the
  evaluation trainer's RandomResizedCrop and flip (EDC: one RandomResizedCrop(224) per image).

On a temporal track of T frames (the ``formation`` setting) the synthetic instances hold T
frames, RDED picks T-frame windows to start from (through the same formation), and each step the
teacher sees the clips the formation forms from the batch (a fresh random 8-frame window per
instance under ``slide-window``, the study's co-optimised slide-window; every segment under
``segment``), all under the step's shared crop: every clip enters the batch statistics, and the
cross-entropy is averaged per instance (``mean_by_owner``). The statistics of the train split
are always those of the protocol's 8-frame clips, the teacher's input.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vdcbench.archive.condensed import CondensedSet, MethodKind
from vdcbench.core.errors import VdcError
from vdcbench.data.sampling import clip_indices, training_start
from vdcbench.methods.base import CondensationTask, Method
from vdcbench.methods.bn_statistics import (BNInputs, ClassStatistics, batch_statistics,
                                            bn_layers, class_statistics)
from vdcbench.methods.distillation import (LoopSettings, Objective, apply_preset, check_positive,
                                           check_storage, distill, forms_clips,
                                           initial_selection, method_formation, stored_clips,
                                           window_rng)
from vdcbench.methods.rded import RDED
from vdcbench.methods.shared_augment import shared_augment
from vdcbench.train.augment import CropBoxes, Normalize, apply_crops, random_resized_crop_box
from vdcbench.train.formation import Formation, form_clips, mean_by_owner

# Generator keys of EDC's draws: (EDC_KEY, iteration) for the shared crop, (STATS_KEY, video)
# for the statistics pass.
EDC_KEY = 1_000_002
STATS_KEY = 1_000_003

PRESETS = {
    # The embedded data set on a loaded 2-core CPU: at most 20 minutes at IPC 1 on one core.
    "cpu": {"iterations": 200, "checkpoint_every": 20, "init_mipc": 20, "init_num_crop": 2},
    # Seconds: the kill-and-resume tests and smoke runs.
    "tiny": {"iterations": 6, "checkpoint_every": 2, "init_mipc": 2, "init_num_crop": 1},
}


@dataclass(frozen=True)
class Config:
    iterations: int = 1000      # Adam steps per batch of clips (EDC ImageNet-1k recover.sh)
    batch_size: int = 80        # clips optimised together (EDC ImageNet-1k recover.sh)
    # Adam learning rate on pixel-scale clips: EDC's 0.05 (normalised pixels) x 0.226
    lr: float = 0.0113
    r_loss: float = 0.1         # weight of the statistics term against the cross-entropy
    first_bn_weight: float = 10.0  # weight of the first BatchNorm layer's term (others 1)
    category_weight: float = 0.5   # share of the per-class term (EDC's hard-coded 0.5)
    ema_momentum: float = 0.8   # moving average of the batch statistics (EDC training-momentum)
    min_scale: float = 0.5      # smallest area of the shared crop (EDC: RandomResizedCrop 0.5-1)
    clamp: bool = True          # clamp clips to [0, 1] after every step (EDC clips its images)
    # Comma list of protocol nets whose teachers' statistics are matched, round robin
    teachers: str = "minic3d"
    stats_batch_size: int = 50  # clips per teacher forward in the statistics pass
    # RDED's settings for the initial clips: real videos drawn per class, windows per video
    # (RDED's defaults; fewer make the initialisation cheaper, not the distillation)
    init_mipc: int = 70
    init_num_crop: int = 5
    storage: str = "float16"    # dtype of the stored clips: float16 or float32
    checkpoint_every: int = 100  # iterations between saved resume states
    # A declared smaller recipe: cpu (synthetic, <= 20 min at IPC 1 on one core) or tiny
    preset: str = ""
    # Temporal formation on a track of other than 8 frames (segment, slide-window,
    # interpolate-duplicate, interpolate-linear, interpolate-linear-w4): how each step forms the
    # T-frame synthetic videos into the clips the teacher sees (and RDED's initial windows are
    # judged), recorded for evaluation; empty: the track's default (slide-window above 8 frames,
    # interpolate-linear below).
    formation: str = ""

    def __post_init__(self) -> None:
        apply_preset(self, PRESETS, "edc")
        check_positive(self, ("iterations", "batch_size", "lr", "stats_batch_size",
                              "init_mipc", "init_num_crop", "checkpoint_every"), "edc")
        check_storage(self.storage, "edc")
        for key in ("r_loss", "first_bn_weight"):
            if getattr(self, key) < 0:
                raise VdcError(f"edc {key} must not be negative, not {getattr(self, key)}")
        if not 0.0 <= self.category_weight <= 1.0:
            raise VdcError(f"edc category_weight must be in [0, 1], not {self.category_weight}")
        if not 0.0 <= self.ema_momentum < 1.0:
            raise VdcError(f"edc ema_momentum must be in [0, 1), not {self.ema_momentum}")
        if not 0.0 < self.min_scale <= 1.0:
            raise VdcError(f"edc min_scale must be in (0, 1], not {self.min_scale}")
        if not self.teacher_names():
            raise VdcError("edc teachers must name at least one protocol net")

    def teacher_names(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.teachers.split(",") if name.strip())


@dataclass(frozen=True)
class MatchedTeacher:
    """A teacher net (eval mode, frozen) and the train split's per-class statistics of its BN
    inputs; its running statistics are the global ones."""

    name: str
    net: nn.Module
    stats: ClassStatistics


def statistics_batches(task: CondensationTask, batch_size: int
                       ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Every train video once: a random training window, the trainer's crop and flip, normalised.

    Windows of the protocol's clip length on every track: the statistics are those of the
    teacher's input, which the cache key (no track in it) assumes."""
    split, trainer = task.train, task.protocol.trainer
    normalize = Normalize(trainer.normalize_mean, trainer.normalize_std)
    height, width = split.frame_size
    frames, crop = task.protocol.sampling.frames, task.dataset.crop
    videos = np.arange(len(split))
    for first in range(0, len(videos), batch_size):
        chosen = videos[first:first + batch_size]
        index, boxes, flips = [], [], []
        for video in chosen:
            rng = task.rng(STATS_KEY, int(video))
            length = int(split.lengths[int(video)])
            interval = split.interval(int(video), task.protocol.sampling)
            index.append(clip_indices(length, training_start(length, interval, frames, rng),
                                      interval, frames))
            boxes.append(random_resized_crop_box(rng, height, width, trainer.crop_scale,
                                                 trainer.crop_ratio))
            flips.append(task.dataset.hflip and bool(rng.integers(0, 2)))
        clips = split.clips([int(v) for v in chosen], index)
        views = apply_crops(clips, CropBoxes(np.asarray(boxes, dtype=np.int64),
                                             np.asarray(flips, dtype=bool)), crop)
        yield normalize(views.to(task.device)), split.labels[torch.from_numpy(chosen)]
        task.progress(min(first + batch_size, len(videos)), len(videos), "statistics: videos")


def teacher_class_statistics(task: CondensationTask, net_name: str, batch_size: int
                             ) -> tuple[nn.Module, ClassStatistics, str]:
    """The teacher of ``net_name`` and its per-class statistics, computed once and cached."""
    teacher = task.teacher(net_name)
    net = teacher.net
    if not bn_layers(net):
        raise VdcError(f"edc cannot match statistics on the {net_name} teacher: it has no "
                       f"BatchNorm layers")
    key = f"edc-class-stats-p{task.protocol.short_hash}-{net_name}-{teacher.sha256[:16]}"
    classes = task.train.num_classes
    cached = task.artifacts.get_tensors(key)
    if cached is not None:
        stats = ClassStatistics.from_tensors(cached)
        if stats.matches(net, classes):
            return net, stats, teacher.sha256
    stats = class_statistics(net, statistics_batches(task, batch_size), classes)
    task.artifacts.put_tensors(key, stats.to_tensors())
    return net, stats, teacher.sha256


def class_batches(count: int, batch_size: int) -> list[np.ndarray]:
    """Consecutive runs of ``batch_size`` clip indices (the last one shorter)."""
    return [np.arange(first, min(first + batch_size, count))
            for first in range(0, count, batch_size)]


def statistic_loss(mean: torch.Tensor, var: torch.Tensor, targets: tuple[torch.Tensor, ...],
                   category_weight: float) -> torch.Tensor:
    """EDC's r_l for one layer: ``targets`` = (running mean, running var, class mean, class var)."""
    run_mean, run_var, cls_mean, cls_var = targets
    global_term = torch.norm(run_var - var, 2) + torch.norm(run_mean - mean, 2)
    class_term = torch.norm(cls_var - var, 2) + torch.norm(cls_mean - mean, 2)
    return (1.0 - category_weight) * global_term + category_weight * class_term


class EDCObjective(Objective):
    """EDC's optimisation, batch after batch; step ``i`` belongs to batch ``i // iterations``."""

    def __init__(self, config: Config, clips: torch.Tensor, labels: torch.Tensor,
                 teachers: list[MatchedTeacher], normalize: Normalize, augment,
                 rng_for_iteration, device: str = "cpu", formation: Formation | None = None,
                 windows_for_iteration=None):
        self.config, self.teachers = config, teachers
        self.normalize, self.augment, self.rng_for_iteration = normalize, augment, rng_for_iteration
        self.device = device
        # A temporal track's formation, and the generator of each iteration's windows; None or
        # ``none``: the batch is the clips themselves, as on the protocol's 8 frames.
        self.formation = formation if formation is not None and forms_clips(formation) else None
        if self.formation is not None and windows_for_iteration is None:
            raise ValueError("a formation needs a generator of each iteration's windows")
        self.windows_for_iteration = windows_for_iteration
        self._clips = clips.to(device)
        self.labels = labels.to(device)
        self.batches = class_batches(len(labels), config.batch_size)
        # EDC's hooks keep one moving average per teacher and layer for the whole run.
        self.ema = {f"ema.{t}.{l}.{s}": torch.zeros(layer.num_features, device=device)
                    for t, teacher in enumerate(teachers)
                    for l, layer in enumerate(bn_layers(teacher.net)) for s in ("mean", "var")}
        self.batch: int | None = None
        self.rows: torch.Tensor | None = None
        self.leaf: torch.Tensor | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        for teacher in teachers:
            teacher.net.eval().requires_grad_(False)

    @property
    def clips(self) -> torch.Tensor:
        return self._clips

    @property
    def total_iterations(self) -> int:
        return len(self.batches) * self.config.iterations

    def _begin(self, batch: int) -> None:
        rows = torch.from_numpy(self.batches[batch]).to(self.device)
        self.batch, self.rows = batch, rows
        self.leaf = self._clips[rows].clone().requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.leaf], lr=self.config.lr, betas=(0.5, 0.9),
                                          eps=1e-8)

    def _targets(self, teacher: MatchedTeacher, layer: int, module, labels: torch.Tensor):
        # The batch's instances' labels: under ``segment`` an instance's clips share its label,
        # so the class target is the same mean over instances as over clips.
        stats = teacher.stats
        cls_mean = stats.means[layer].to(self.device)[labels].mean(0)
        cls_var = stats.variances[layer].to(self.device)[labels].mean(0)
        return module.running_mean, module.running_var, cls_mean, cls_var

    def step(self, iteration: int) -> float:
        cfg = self.config
        batch, local = divmod(iteration, cfg.iterations)
        if self.batch != batch:
            self._begin(batch)
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * 0.5 * (1.0 + math.cos(math.pi * local / cfg.iterations))
        which = iteration % len(self.teachers)
        teacher = self.teachers[which]
        labels = self.labels[self.rows]
        crop = self.augment.draw(self.rng_for_iteration(iteration), self.leaf.shape[-1])
        if self.formation is None:
            with BNInputs(teacher.net) as hooks:
                logits = teacher.net(self.normalize(crop.apply(self.leaf)))
            loss = F.cross_entropy(logits, labels)
        else:
            formed = form_clips(self.leaf, self.formation, self.windows_for_iteration(iteration))
            with BNInputs(teacher.net) as hooks:
                logits = teacher.net(self.normalize(crop.apply(formed.clips)))
            owners = torch.from_numpy(formed.owners).to(labels.device)
            per_clip = F.cross_entropy(logits, labels[owners], reduction="none")
            loss = mean_by_owner(per_clip, formed.owners).mean()
        statistics = logits.new_zeros(())
        momentum = cfg.ema_momentum
        for layer, (module, captured) in enumerate(zip(hooks.layers, hooks.inputs)):
            mean, var = batch_statistics(captured)
            ema_mean, ema_var = self.ema[f"ema.{which}.{layer}.mean"], self.ema[f"ema.{which}.{layer}.var"]
            with torch.no_grad():
                ema_mean.mul_(momentum).add_((1.0 - momentum) * mean)
                ema_var.mul_(momentum).add_((1.0 - momentum) * var)
            soft_mean = ema_mean + mean - mean.detach()
            soft_var = ema_var + var - var.detach()
            weight = cfg.first_bn_weight if layer == 0 else 1.0
            statistics = statistics + weight * statistic_loss(
                soft_mean, soft_var, self._targets(teacher, layer, module, labels),
                cfg.category_weight)
        loss = loss + cfg.r_loss * statistics
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            if cfg.clamp:
                self.leaf.clamp_(0.0, 1.0)
            self._clips[self.rows] = self.leaf.detach()
        return float(loss.detach())

    def state_dict(self) -> dict[str, Any]:
        mid_batch = self.optimizer is not None
        return {"tensors": {"clips": self._clips.detach().cpu().clone(),
                            **{k: v.detach().cpu().clone() for k, v in self.ema.items()}},
                "optimizer": self.optimizer.state_dict() if mid_batch else None}

    def load_state_dict(self, state: Mapping[str, Any], done: int) -> None:
        with torch.no_grad():
            self._clips.copy_(state["tensors"]["clips"])
            for key, tensor in self.ema.items():
                tensor.copy_(state["tensors"][key])
        batch, local = divmod(done, self.config.iterations)
        if local and batch < len(self.batches):
            # Mid-batch: the batch's clips are current in ``clips``; its Adam state is restored.
            self._begin(batch)
            self.optimizer.load_state_dict(state["optimizer"])


class EDC(Method):
    name = "edc"
    kind = MethodKind.DISTILLATION
    description = ("BatchNorm-statistics matching (global and per class) on the protocol "
                   "teacher, initialised from RDED, EDC")
    Config = Config

    def condense(self, task: CondensationTask) -> CondensedSet:
        started = time.perf_counter()
        cfg = self.config
        for name in cfg.teacher_names():
            task.protocol.net(name)     # a misspelt net fails before any work
        formation = method_formation(task, self)     # ... and so does an impossible formation
        teachers = []
        shas = {}
        for name in cfg.teacher_names():
            net, stats, sha = teacher_class_statistics(task, name, cfg.stats_batch_size)
            teachers.append(MatchedTeacher(name, net, stats))
            shas[name] = sha
        trainer = task.protocol.trainer
        normalize = Normalize(trainer.normalize_mean, trainer.normalize_std)
        augment = shared_augment((cfg.min_scale, 1.0), trainer.crop_ratio, task.dataset.hflip)
        clips_total = task.track.ipc * task.train.num_classes
        batches = len(class_batches(clips_total, cfg.batch_size))
        result = distill(
            task, self, LoopSettings(batches * cfg.iterations, cfg.checkpoint_every),
            initial=lambda: initial_selection(task, RDED(RDED.Config(
                mipc=cfg.init_mipc, num_crop=cfg.init_num_crop, formation=cfg.formation))),
            make_objective=lambda clips, labels: EDCObjective(
                cfg, clips, labels, teachers, normalize, augment,
                lambda iteration: task.rng(EDC_KEY, iteration), task.device, formation,
                lambda iteration: window_rng(task, EDC_KEY, iteration)),
            identity_extra={"teachers": shas}, setup_seconds=time.perf_counter() - started)
        return task.finish(self, stored_clips(result.clips, cfg.storage), result.labels,
                           wall_seconds=result.seconds)
