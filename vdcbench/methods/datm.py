"""DATM (difficulty-aligned trajectory matching, Guo et al., ICLR 2024) for video: MTT plus
a growing window of start epochs, initialisation from real clips the experts classify correctly,
and learnable soft labels.

On top of :mod:`vdcbench.methods.mtt` (same experts, same unrolled student, same loss):

1. **Difficulty alignment** (``DATM.py`` L484-491): the start epoch is drawn from
   ``min_start_epoch .. upper - 1`` with
   ``upper = min(current_max_start_epoch + int((max_start_epoch − current_max_start_epoch)
   / expansion_end_epoch · iteration), max_start_epoch)`` when ``sequential`` (the reference's
   ``Sequential_Generation``), else ``upper = max_start_epoch``: early iterations match the
   easy, early part of the trajectories and the window widens until ``expansion_end_epoch``.
2. **Initialisation** (``pix_init = samples_predicted_correctly``): per class, real clips (each
   video's centred window, centre-cropped, in a random order of the class's videos) that the
   first expert at ``label_epoch`` (−1: its final epoch, ``Label_Model_Timestamp``) classifies
   correctly; where a class has fewer, the rest are its clips of highest expert probability for
   the class (the reference would search forever).
3. **Soft labels**: each clip's label is a learnable logit vector, initialised as the mean logits
   of the experts (at ``label_epoch``) that classify the clip correctly (all experts where none
   does), optimised by SGD (``lr_y``, momentum 0.9); the student's loss is DATM's soft
   cross-entropy against their softmax.
4. **Threshold**: an iteration whose loss exceeds ``threshold`` updates nothing.

Archives under the ``soft`` label strategy carry the learned logits as their soft labels (the
evaluation's ``soft`` strategy trains on them with MSE-GT, as the study's val.py loads DATM's
``labels_best.pt``); under ``hard`` and ``multi-sl`` the clips carry their class labels.

On a temporal track of T frames (the ``formation`` setting, as MTT's): the initial clips are
each video's centred T-frame window, the experts judge a T-frame clip (which clips it keeps, and
its initial soft labels) by the clips the formation forms from it without chance (the centred
8-frame window under ``slide-window``, the mean logits of its segments under ``segment``), and
the student steps train through the formation as MTT's do, each clip against its instance's
learnable soft label, the soft cross-entropy averaged per instance.

Deviations (protocol/CHANGELOG.md): those of MTT, and the video DATM's own values are unknown
(its distillation code is not released), so the defaults are the image DATM's Tiny ImageNet IPC 1
configuration (syn_steps 40, expert_epochs 2, window 0/15/20, expansion_end 2000, lr_y 10,
lr_lr 1e-4, 10000 iterations) with the learning rate of the clips in pixel scale as MTT's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vdcbench.archive.condensed import CondensedSet, MethodInfo, MethodKind
from vdcbench.core.errors import VdcError
from vdcbench.data.splits import class_members
from vdcbench.methods.base import CondensationTask
from vdcbench.methods.distillation import method_formation, resolved_config, stored_clips
from vdcbench.methods.features import centred_clips
from vdcbench.methods.mtt import MTT, TrajectoryObjective, check_segment, check_trajectory_config
from vdcbench.protocol import LabelSource
from vdcbench.train.augment import Normalize, to_unit_float
from vdcbench.train.experts import ExpertSet, build_expert_net
from vdcbench.train.formation import Formation, form_clips, mean_by_owner

DATM_KEY = 1_000_003

PRESETS = {
    # The embedded data set on a loaded 2-core CPU: at most 20 minutes at IPC 1 on one core,
    # with the `synthetic` experts (2 experts of 4 epochs).
    # Two student steps at the experts' rate overshoot an expert epoch at first (MTT's first
    # losses on the `synthetic` experts: 4.4, 2.3, 2.0, 1.5, then below 1 from iteration 7), so
    # the threshold is raised above them lest every update be skipped.
    "cpu": {"iterations": 40, "syn_steps": 2, "expert_epochs": 1, "min_start_epoch": 0,
            "current_max_start_epoch": 1, "max_start_epoch": 3, "expansion_end_epoch": 30,
            "batch_syn": 10, "lr_img": 100.0, "lr_lr": 5e-5, "lr_y": 2.0, "threshold": 10.0,
            "checkpoint_every": 10},
    "tiny": {"iterations": 4, "syn_steps": 2, "expert_epochs": 1, "min_start_epoch": 0,
             "current_max_start_epoch": 1, "max_start_epoch": 2, "expansion_end_epoch": 2,
             "batch_syn": 4, "threshold": 3.0, "checkpoint_every": 2},
}


@dataclass(frozen=True)
class Config:
    iterations: int = 10000     # distillation iterations (DATM Tiny ImageNet IPC 1)
    syn_steps: int = 40         # unrolled student steps per iteration
    expert_epochs: int = 2      # M: the target is the expert M epochs after the start
    min_start_epoch: int = 0    # the window's lower end
    current_max_start_epoch: int = 15  # the window's upper end at iteration 0
    max_start_epoch: int = 20   # ... and at expansion_end_epoch and after
    expansion_end_epoch: int = 2000  # the iteration at which the window reaches its widest
    sequential: bool = True     # grow the window (Sequential_Generation); false: always widest
    batch_syn: int = 0          # synthetic clips per student step; 0: every clip
    # SGD step on pixel-scale clips (as MTT's: the video MTT's 1e5 x 0.226^2)
    lr_img: float = 5000.0
    lr_lr: float = 1e-4         # SGD step on the learnable synthetic learning rate
    lr_y: float = 10.0          # SGD step on the soft-label logits (momentum 0.9)
    momentum_y: float = 0.9     # momentum of the label updates (DATM Momentum_y)
    syn_lr: float = 0.0         # the learnable lr's start; 0: the experts' learning rate
    min_syn_lr: float = 0.001   # the learnable lr is held at least this
    momentum: float = 0.5       # SGD momentum of the clip and lr updates
    threshold: float = 1.0      # an iteration with a larger loss updates nothing
    label_epoch: int = -1       # the expert epoch that labels and picks clips; -1: the last
    augment: bool = True        # per-clip random resized crop and flip inside the student steps
    experts: int = 0            # experts to match; 0: the data set's expert recipe's count
    expert_train_epochs: int = 0  # epochs of those experts; 0: the recipe's
    storage: str = "float16"    # dtype of the stored clips: float16 or float32
    checkpoint_every: int = 100  # iterations between saved resume states
    # A declared smaller recipe: cpu (synthetic, <= 20 min at IPC 1 on one core) or tiny
    preset: str = ""
    # Temporal formation on a track of other than 8 frames (segment, slide-window,
    # interpolate-duplicate, interpolate-linear, interpolate-linear-w4): how the experts see
    # the T-frame clips and each student step forms them, recorded for evaluation; empty: the
    # track's default (slide-window above 8 frames, interpolate-linear below).
    formation: str = ""

    def __post_init__(self) -> None:
        check_trajectory_config(self, PRESETS, "datm")
        if not 0 <= self.min_start_epoch < self.max_start_epoch:
            raise VdcError(f"datm min_start_epoch {self.min_start_epoch} must be at least 0 and "
                           f"below max_start_epoch {self.max_start_epoch}")
        if not self.min_start_epoch < self.current_max_start_epoch <= self.max_start_epoch:
            raise VdcError(f"datm current_max_start_epoch {self.current_max_start_epoch} must "
                           f"be above min_start_epoch and at most max_start_epoch")
        for key in ("expansion_end_epoch", "lr_y", "threshold"):
            if getattr(self, key) <= 0:
                raise VdcError(f"datm {key} must be positive, not {getattr(self, key)}")
        if not 0.0 <= self.momentum_y < 1.0:
            raise VdcError(f"datm momentum_y must be in [0, 1), not {self.momentum_y}")


def start_window(config: Config, iteration: int) -> tuple[int, int]:
    """(low, upper): DATM draws start epochs from ``low .. upper - 1`` at ``iteration``."""
    if not config.sequential:
        return config.min_start_epoch, config.max_start_epoch
    grown = config.current_max_start_epoch + int(
        (config.max_start_epoch - config.current_max_start_epoch) / config.expansion_end_epoch
        * iteration)
    return config.min_start_epoch, min(grown, config.max_start_epoch)


class DATMObjective(TrajectoryObjective):
    key = DATM_KEY
    method = "datm"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.label_optimizer = torch.optim.SGD([self.soft], lr=self.config.lr_y,
                                               momentum=self.config.momentum_y)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {**super().optimizers(), "soft_labels": self.label_optimizer}

    def start_bounds(self, iteration: int) -> tuple[int, int]:
        return start_window(self.config, iteration)

    def skip(self, loss: float) -> bool:
        return loss > self.config.threshold


# ------------------------------------------------------------------------ initialisation
def _label_epoch(config: Config, experts: ExpertSet) -> int:
    epochs = experts.recipe.epochs
    epoch = config.label_epoch if config.label_epoch >= 0 else epochs + 1 + config.label_epoch
    if not 0 <= epoch <= epochs:
        raise VdcError(f"datm label_epoch {config.label_epoch} is outside the experts' "
                       f"0..{epochs} epochs")
    return epoch


@torch.no_grad()
def expert_logits(task: CondensationTask, experts: ExpertSet, ids: list[int], epoch: int,
                  clips: torch.Tensor, batch_size: int = 50,
                  formation: Formation | None = None) -> torch.Tensor:
    """Logits (E, N, C) of each expert at ``epoch`` on uint8 or pixel-scale ``clips``, eval mode.

    With a ``formation`` (a temporal track) an expert sees the clips it forms from each T-frame
    clip without chance, and a clip's logits are the mean over them."""
    trainer = task.protocol.trainer
    normalize = Normalize(trainer.normalize_mean, trainer.normalize_std)
    net = build_expert_net(task.protocol, task.dataset, experts.recipe).to(task.device).eval()
    formed = formation is not None and formation.name != "none"

    def logits_of(chunk: torch.Tensor) -> torch.Tensor:
        if not formed:
            return net(normalize(to_unit_float(chunk.to(task.device)))).float().cpu()
        clips_of = form_clips(chunk, formation)
        logits = net(normalize(to_unit_float(clips_of.clips.to(task.device)))).float().cpu()
        return mean_by_owner(logits, clips_of.owners)

    out = []
    for expert in ids:
        net.load_state_dict(experts.snapshot(expert, epoch), strict=False)
        out.append(torch.cat([logits_of(clips[i:i + batch_size])
                              for i in range(0, clips.shape[0], batch_size)]))
    return torch.stack(out)


def correctly_classified(task: CondensationTask, experts: ExpertSet, ids: list[int], epoch: int,
                         formation: Formation | None = None,
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """DATM's ``samples_predicted_correctly``: per class, IPC real clips the first expert gets
    right (the class's videos in a random order), topped up by its most confident others."""
    split, ipc = task.train, task.track.ipc
    clips, labels = [], []
    for label in range(split.num_classes):
        members = class_members(split, label, ipc, f"datm at IPC {ipc}")
        order = members[task.rng(DATM_KEY, label).permutation(len(members))]
        kept: list[torch.Tensor] = []
        scored: list[tuple[float, torch.Tensor]] = []
        for first in range(0, len(order), 50):
            batch = centred_clips(split, order[first:first + 50], task.protocol,
                                  task.track.frames)
            logits = expert_logits(task, experts, ids[:1], epoch, batch,
                                   formation=formation)[0]
            right = logits.argmax(1) == label
            prob = logits.softmax(1)[:, label]
            for i in range(batch.shape[0]):
                if right[i] and len(kept) < ipc:
                    kept.append(batch[i])
                else:
                    scored.append((float(prob[i]), batch[i]))
            if len(kept) == ipc:
                break
        scored.sort(key=lambda item: -item[0])
        kept += [clip for _, clip in scored[:ipc - len(kept)]]
        clips.append(torch.stack(kept))
        labels += [label] * ipc
    videos = torch.cat(clips)
    return videos.float().div_(255.0), torch.tensor(labels, dtype=torch.int64)


def initial_soft_labels(task: CondensationTask, experts: ExpertSet, ids: list[int], epoch: int,
                        clips: torch.Tensor, labels: torch.Tensor,
                        formation: Formation | None = None) -> torch.Tensor:
    """Per clip, the mean logits of the experts that classify it correctly (all, where none does)."""
    logits = expert_logits(task, experts, ids, epoch, clips, formation=formation)  # (E, N, C)
    right = (logits.argmax(2) == labels[None, :]).float()               # (E, N)
    weights = torch.where(right.sum(0, keepdim=True) > 0, right, torch.ones_like(right))
    return (logits * weights[..., None]).sum(0) / weights.sum(0)[:, None]


class DATM(MTT):
    name = "datm"
    kind = MethodKind.DISTILLATION
    description = "difficulty-aligned trajectory matching: MTT with a growing window and soft labels"
    Config = Config

    objective_class = DATMObjective

    def run_checks(self, experts: ExpertSet) -> None:
        check_segment(self.config, experts, self.name, self.config.max_start_epoch - 1)
        _label_epoch(self.config, experts)

    def initial(self, task: CondensationTask, experts: ExpertSet, ids: list[int]):
        self.run_checks(experts)
        return correctly_classified(task, experts, ids, _label_epoch(self.config, experts),
                                    method_formation(task, self))

    def make_objective(self, task: CondensationTask, experts: ExpertSet, ids: list[int],
                       clips: torch.Tensor, labels: torch.Tensor) -> DATMObjective:
        # On a resume the checkpoint's learned labels replace these at once; computing them is
        # a forward pass of the experts over the (few) synthetic clips.
        soft = initial_soft_labels(task, experts, ids, _label_epoch(self.config, experts),
                                   clips, labels, method_formation(task, self))
        return DATMObjective(task, self.config, clips, labels, experts, ids, soft_labels=soft)

    def condense(self, task: CondensationTask) -> CondensedSet:
        result, learned = self.run(task)
        strategy = task.protocol.label_strategy(task.label_strategy)
        videos = stored_clips(result.clips, self.config.storage)
        if strategy.labels is not LabelSource.ARCHIVE_LOGITS:
            return task.finish(self, videos, result.labels, wall_seconds=result.seconds)
        # The formation recorded as task.finish records it (none at all on 8 frames).
        info = MethodInfo(name=self.name, kind=self.kind,
                          config=resolved_config(task, self), seed=task.seed,
                          wall_seconds=result.seconds, device=task.device)
        return CondensedSet(videos=videos, labels=result.labels.to(torch.int64),
                            soft_labels=learned["soft_labels"].float().contiguous(),
                            label_strategy=task.label_strategy, dataset=task.dataset.name,
                            track=task.track.id, method=info)
