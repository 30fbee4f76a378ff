"""MTT (matching training trajectories, Cazenavette et al. 2022) for video.

Each iteration picks a random expert and a random start epoch ``s`` (uniform over
``0 .. max_start_epoch - 1``, numpy ``randint``'s exclusive bound as in the reference), takes the
expert's parameters θ_s and θ_{s+M} (M = ``expert_epochs``), and unrolls ``syn_steps`` student
SGD steps from θ_s on minibatches of ``batch_syn`` synthetic clips,
θ_{k+1} = θ_k − α ∇_θ CE(f_θk(aug(x)), y), differentiably (``torch.func.functional_call`` on a
dict of parameters, ``create_graph=True``). The loss is the normalised parameter distance
||θ_N − θ_{s+M}||² / ||θ_s − θ_{s+M}||²; one SGD step (momentum 0.5) moves the clips and one the
learnable synthetic learning rate α, which starts at the experts' learning rate (``lr_teacher``)
and is held at ``min_syn_lr`` or above after each update (the video MTT's clip at 0.001).

The experts are the data set's expert trajectories (``vdcbench experts train``, see
``vdcbench.train.experts``); a run without them says how to make them. Synthetic clips start from
Random's clips for the same seed (MTT ``pix_init real``) and are optimised in pixel scale.

The recipe follows the video MTT of Wang et al. ("Dancing with Still Images", ``MTT.sh``:
syn_steps 10, expert_epochs 1, max_start_epoch 10, lr_lr 1e-5, learnable lr clipped at 0.001,
8000 iterations, batch_syn = every clip) with the image MTT's optimisers.

Deviations from the reference (recorded in protocol/CHANGELOG.md):
- The student is the experts' net, ``minic3d-in`` (MiniC3D with instance norm, as the study's
  DATM experts), in training mode: its dropout draws from a generator keyed by the iteration.
- The inner loop augments every clip with its own random resized crop and flip (the experts'
  augmentation, drawn per step from the iteration's generator), as MTT applies DSA inside the
  unrolled steps; the video MTT used none.
- Clips live in pixel scale [0, 1]: ``lr_img`` 5000 is the video MTT's 1e5 (normalised pixels,
  miniUCF101 IPC 1) times the squared ImageNet std (≈ 0.226²), the same steps in normalised units.
- ``batch_syn`` 0 means every clip, as in the video MTT; the ``cpu`` preset sets it (and the
  memory of the unrolled graph) to a fixed number of clips per student step.

On a temporal track of T frames the synthetic instances hold T frames and every student step
trains on the clips the track's ``formation`` forms from its minibatch: a fresh random 8-frame
window of each instance under ``slide-window`` (the study's co-optimised slide-window), each of
the T / 8 segments under ``segment``; each clip takes its instance's crop and label, and the
cross-entropy is averaged per instance first (``mean_by_owner``), so an instance weighs the same
however many clips it forms. The unrolled graph reaches only the frames the windows read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from vdcbench.archive.condensed import CondensedSet, MethodKind
from vdcbench.core.errors import VdcError
from vdcbench.methods.base import CondensationTask, Method
from vdcbench.methods.distillation import (LoopSettings, Objective, apply_preset, check_positive,
                                           check_storage, distill, forms_clips,
                                           initial_selection, method_formation,
                                           method_torch_seed_keys, result_key, run_identity,
                                           stored_clips, torch_rng, window_rng)
from vdcbench.methods.random_selection import RandomSelection
from vdcbench.protocol import Dataset, Protocol
from vdcbench.train.augment import CropBoxes, Normalize, apply_crops, random_resized_crop_box
from vdcbench.train.experts import (ExpertRecipe, ExpertSet, build_expert_net, expert_set,
                                    resolve_recipe, train_experts)
from vdcbench.train.formation import Formation, form_clips, mean_by_owner

# Generator keys of MTT's draws (task.rng(MTT_KEY, iteration)); distinct from other methods'.
MTT_KEY = 1_000_002

PRESETS = {
    # The embedded data set on a loaded 2-core CPU: at most 20 minutes at IPC 1 on one core,
    # with the `synthetic` experts (2 experts of 4 epochs).
    # (About 20 s an iteration of 2 student steps on 10 clips on a loaded core.)
    "cpu": {"iterations": 40, "syn_steps": 2, "max_start_epoch": 3, "batch_syn": 10,
            "lr_img": 100.0, "lr_lr": 5e-5, "checkpoint_every": 10},
    # Seconds: tests and smoke runs.
    "tiny": {"iterations": 4, "syn_steps": 2, "max_start_epoch": 1, "batch_syn": 4,
             "checkpoint_every": 2},
}


@dataclass(frozen=True)
class Config:
    iterations: int = 8000      # distillation iterations (video MTT, MTT.sh)
    syn_steps: int = 10         # unrolled student steps per iteration (video MTT)
    expert_epochs: int = 1      # M: the target is the expert M epochs after the start
    max_start_epoch: int = 10   # start epochs are drawn from 0 .. max_start_epoch - 1
    batch_syn: int = 0          # synthetic clips per student step; 0: every clip
    # SGD step on pixel-scale clips: the video MTT's lr_img 1e5 (normalised pixels) x 0.226^2
    lr_img: float = 5000.0
    lr_lr: float = 1e-5         # SGD step on the learnable synthetic learning rate
    syn_lr: float = 0.0         # its start; 0: the experts' learning rate (MTT lr_teacher)
    min_syn_lr: float = 0.001   # the learnable lr is held at least this (video MTT)
    momentum: float = 0.5       # SGD momentum of the clip and lr updates (MTT)
    augment: bool = True        # per-clip random resized crop and flip inside the student steps
    experts: int = 0            # experts to match; 0: the data set's expert recipe's count
    expert_train_epochs: int = 0  # epochs of those experts; 0: the recipe's
    storage: str = "float16"    # dtype of the stored clips: float16 or float32
    checkpoint_every: int = 100  # iterations between saved resume states
    # A declared smaller recipe: cpu (synthetic, <= 20 min at IPC 1 on one core) or tiny
    preset: str = ""
    # Temporal formation on a track of other than 8 frames (segment, slide-window,
    # interpolate-duplicate, interpolate-linear, interpolate-linear-w4): how each student step
    # forms the T-frame synthetic videos into the clips it trains on, recorded for evaluation;
    # empty: the track's default (slide-window above 8 frames, interpolate-linear below).
    formation: str = ""

    def __post_init__(self) -> None:
        check_trajectory_config(self, PRESETS, "mtt")


def check_trajectory_config(config: Any, presets: dict, method: str) -> None:
    apply_preset(config, presets, method)
    check_positive(config, ("iterations", "expert_epochs", "max_start_epoch", "lr_img",
                            "checkpoint_every", "min_syn_lr"), method)
    check_storage(config.storage, method)
    for key in ("syn_steps", "batch_syn", "experts", "expert_train_epochs", "lr_lr", "syn_lr"):
        if getattr(config, key) < 0:
            raise VdcError(f"{method} {key} must not be negative, not {getattr(config, key)}")
    if not 0.0 <= config.momentum < 1.0:
        raise VdcError(f"{method} momentum must be in [0, 1), not {config.momentum}")


# --------------------------------------------------------------------------- the pieces
def parameter_distance(student: dict[str, torch.Tensor], start: dict[str, torch.Tensor],
                       target: dict[str, torch.Tensor]) -> torch.Tensor:
    """||θ_student − θ_target||² / ||θ_start − θ_target||², summed over every parameter.

    (MTT divides both sums by the parameter count, which cancels.)"""
    names = list(target)
    moved = sum((student[n] - target[n]).pow(2).sum() for n in names)
    span = sum((start[n] - target[n]).pow(2).sum() for n in names)
    return moved / span


def soft_cross_entropy(logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """DATM's SoftCrossEntropy: Σ −softmax(target)·log_softmax(logits), averaged over the batch."""
    return -(F.softmax(target_logits, dim=1) * F.log_softmax(logits, dim=1)).sum(1).mean()


def instance_loss(logits: torch.Tensor, targets: torch.Tensor, owners: np.ndarray,
                  soft: bool) -> torch.Tensor:
    """The student's loss on formed clips: each clip against its instance's target (a class, or
    under ``soft`` learnable logits), averaged per instance, then over the instances."""
    index = torch.from_numpy(owners).to(targets.device)
    y = targets[index]
    if soft:
        per_clip = -(F.softmax(y, dim=1) * F.log_softmax(logits, dim=1)).sum(1)
    else:
        per_clip = F.cross_entropy(logits, y, reduction="none")
    return mean_by_owner(per_clip, owners).mean()


@dataclass(frozen=True)
class StudentPlan:
    """The draws of one iteration's unroll: clip indices and augmentation of every student step."""

    batches: tuple[np.ndarray, ...]
    crops: tuple[CropBoxes | None, ...]


def plan_student(rng: np.random.Generator, count: int, steps: int, batch: int, size: int,
                 crop_scale: tuple[float, float] | None, crop_ratio: tuple[float, float],
                 hflip: bool) -> StudentPlan:
    """MTT's minibatches (a random permutation of the clips, cut into ``batch``-sized chunks and
    drawn again when used up) and, with ``crop_scale``, a crop and flip per clip and step."""
    batch = count if batch == 0 else min(batch, count)
    pending: list[np.ndarray] = []
    batches, crops = [], []
    for _ in range(steps):
        if not pending:
            order = rng.permutation(count)
            pending = [order[i:i + batch] for i in range(0, count, batch)]
        chosen = pending.pop(0)
        batches.append(chosen)
        if crop_scale is None:
            crops.append(None)
            continue
        boxes = np.array([random_resized_crop_box(rng, size, size, crop_scale, crop_ratio)
                          for _ in chosen], dtype=np.int64).reshape(len(chosen), 4)
        flips = (rng.integers(0, 2, size=len(chosen)) == 1) & hflip
        crops.append(CropBoxes(boxes, flips))
    return StudentPlan(tuple(batches), tuple(crops))


def unroll_student(net: torch.nn.Module, start: dict[str, torch.Tensor], clips: torch.Tensor,
                   targets: torch.Tensor, syn_lr: torch.Tensor, plan: StudentPlan,
                   normalize: Normalize, soft: bool = False,
                   formation: Formation | None = None,
                   windows: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
    """θ after ``len(plan.batches)`` differentiable SGD steps from ``start`` at rate ``syn_lr``.

    ``targets`` are class indices (cross-entropy), or with ``soft`` logits (soft cross-entropy).
    With a ``formation`` other than none (a temporal track) each step trains on the clips it
    forms from the minibatch's instances, their windows drawn from ``windows`` step by step.
    The graph reaches ``clips``, ``syn_lr`` and (soft) ``targets``."""
    params = {name: value.detach().clone().requires_grad_(True) for name, value in start.items()}
    size = clips.shape[-1]
    formed_clips = formation is not None and forms_clips(formation)
    for rows, crop in zip(plan.batches, plan.crops):
        index = torch.from_numpy(rows).to(clips.device)
        x = clips[index]
        if formed_clips:
            formed = form_clips(x, formation, windows)
            x = formed.clips
            if crop is not None:
                # Each clip takes its instance's crop and flip.
                x = apply_crops(x, CropBoxes(crop.boxes[formed.owners],
                                             crop.flips[formed.owners]), size)
            logits = functional_call(net, params, (normalize(x),))
            loss = instance_loss(logits, targets[index], formed.owners, soft)
        else:
            if crop is not None:
                x = apply_crops(x, crop, size)
            logits = functional_call(net, params, (normalize(x),))
            y = targets[index]
            loss = soft_cross_entropy(logits, y) if soft else F.cross_entropy(logits, y)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        params = {name: value - syn_lr * grad
                  for (name, value), grad in zip(params.items(), grads)}
    return params


# ---------------------------------------------------------------------------- objective
class TrajectoryObjective(Objective):
    """MTT's iteration; DATM adds learnable soft labels and its start-epoch window."""

    key = MTT_KEY
    method = "mtt"      # the name a refused formation is reported under

    def __init__(self, task: CondensationTask, config: Any, clips: torch.Tensor,
                 labels: torch.Tensor, experts: ExpertSet, expert_ids: list[int],
                 soft_labels: torch.Tensor | None = None):
        self.task, self.config = task, config
        self.experts, self.expert_ids = experts, expert_ids
        device = task.device
        self.labels = labels.to(device)
        self._clips = clips.to(device).requires_grad_(True)
        lr0 = config.syn_lr or experts.recipe.lr
        self.syn_lr = torch.tensor(float(lr0), device=device, requires_grad=True)
        self.optimizer = torch.optim.SGD([self._clips], lr=config.lr_img, momentum=config.momentum)
        self.lr_optimizer = torch.optim.SGD([self.syn_lr], lr=config.lr_lr,
                                            momentum=config.momentum)
        self.soft = soft_labels
        if soft_labels is not None:
            self.soft = soft_labels.to(device).float().requires_grad_(True)
        trainer = task.protocol.trainer
        self.normalize = Normalize(trainer.normalize_mean, trainer.normalize_std)
        recipe = experts.recipe
        scale = task.protocol.teacher_recipe(task.dataset, "minic3d").crop_scale
        self.crop_scale = tuple(scale) if config.augment else None
        self.crop_ratio = tuple(trainer.crop_ratio)
        self.hflip = bool(task.dataset.hflip)
        with torch_rng(*method_torch_seed_keys(task, self.key)):
            self.net = build_expert_net(task.protocol, task.dataset, recipe).to(device)
        self.net.train()
        self.net.requires_grad_(False)
        self._snapshots: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
        self.formation = task.formation(config.formation, self.method)

    @property
    def clips(self) -> torch.Tensor:
        return self._clips

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"clips": self._clips, "syn_lr": self.syn_lr}
        if self.soft is not None:
            out["soft_labels"] = self.soft
        return out

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"clips": self.optimizer, "syn_lr": self.lr_optimizer}

    def start_bounds(self, iteration: int) -> tuple[int, int]:
        """Start epochs are drawn from ``low .. high - 1``."""
        return 0, self.config.max_start_epoch

    def snapshot(self, expert: int, epoch: int) -> dict[str, torch.Tensor]:
        key = (expert, epoch)
        if key not in self._snapshots:
            if len(self._snapshots) >= 8:    # a few trajectories' worth: bounded memory
                self._snapshots.pop(next(iter(self._snapshots)))
            self._snapshots[key] = {k: v.to(self.task.device)
                                    for k, v in self.experts.snapshot(expert, epoch).items()}
        return self._snapshots[key]

    def loss(self, iteration: int) -> torch.Tensor:
        """The iteration's normalised parameter distance, its graph reaching every learnable."""
        cfg = self.config
        rng = self.task.rng(self.key, iteration)
        expert = self.expert_ids[int(rng.integers(0, len(self.expert_ids)))]
        low, high = self.start_bounds(iteration)
        start_epoch = int(rng.integers(low, high))
        start = self.snapshot(expert, start_epoch)
        target = self.snapshot(expert, start_epoch + cfg.expert_epochs)
        plan = plan_student(rng, self._clips.shape[0], cfg.syn_steps, cfg.batch_syn,
                            self._clips.shape[-1], self.crop_scale, self.crop_ratio, self.hflip)
        windows = (window_rng(self.task, self.key, iteration) if forms_clips(self.formation)
                   else None)
        with torch_rng(*method_torch_seed_keys(self.task, self.key, iteration)):
            student = unroll_student(self.net, start, self._clips,
                                     self.labels if self.soft is None else self.soft,
                                     self.syn_lr, plan, self.normalize,
                                     soft=self.soft is not None, formation=self.formation,
                                     windows=windows)
        return parameter_distance(student, start, target)

    def step(self, iteration: int) -> float:
        loss = self.loss(iteration)
        for optimizer in self.optimizers().values():
            optimizer.zero_grad(set_to_none=True)
        if loss.requires_grad:          # syn_steps 0: nothing to learn from
            loss.backward()
        if self.skip(float(loss.detach())):
            return float(loss.detach())
        for optimizer in self.optimizers().values():
            optimizer.step()
        with torch.no_grad():
            self.syn_lr.clamp_(min=self.config.min_syn_lr)
        self.after_step(iteration)
        return float(loss.detach())

    def skip(self, loss: float) -> bool:
        """Whether the updates of this iteration are skipped (DATM's threshold)."""
        return False

    def after_step(self, iteration: int) -> None:
        if iteration + 1 == self.config.iterations:
            self.save_learned()

    # What the run learned besides the clips, kept beside distill()'s result (whose record holds
    # clips, labels and losses only); written at the last iteration, before that result.
    learned_key: str | None = None

    def learned(self) -> dict[str, torch.Tensor]:
        out = {"syn_lr": self.syn_lr.detach().cpu().clone()}
        if self.soft is not None:
            out["soft_labels"] = self.soft.detach().cpu().clone()
        return out

    def save_learned(self) -> None:
        if self.learned_key is not None:
            self.task.artifacts.put_tensors(self.learned_key, self.learned())


# ------------------------------------------------------------------------------ helpers
def experts_for(config: Any, protocol: Protocol, dataset: Dataset) -> ExpertSet:
    """The expert set a trajectory-matching config reads (the data set's recipe, as adjusted)."""
    recipe: ExpertRecipe = resolve_recipe(dataset, config.experts, config.expert_train_epochs)
    return expert_set(protocol, dataset, recipe)


def prepare_experts(method: Method, protocol: Protocol, dataset: Dataset, device: str = "cpu",
                    progress=None) -> list[int]:
    """Train the experts ``method`` will read if any is missing (``run-baseline --train-experts``);
    the experts trained now. Methods that read no experts need none."""
    if not isinstance(method, MTT):
        return []
    return train_experts(experts_for(method.config, protocol, dataset), device=device,
                         progress=progress)


def check_segment(config: Any, experts: ExpertSet, method: str, last_start: int) -> None:
    epochs = experts.recipe.epochs
    if last_start + config.expert_epochs > epochs:
        raise VdcError(f"{method}: start epochs up to {last_start} plus expert_epochs "
                       f"{config.expert_epochs} pass the experts' {epochs} epochs; lower "
                       f"max_start_epoch or train longer experts")


def learned_key(task: CondensationTask, method: Method, identity_extra: dict) -> str:
    key = result_key(method.name, task.track.id, run_identity(task, method, identity_extra))
    return key.removesuffix("-result") + "-learned"


class MTT(Method):
    name = "mtt"
    kind = MethodKind.DISTILLATION
    description = "trajectory matching: student steps on synthetic clips follow expert trajectories"
    Config = Config

    objective_class = TrajectoryObjective

    def experts(self, task: CondensationTask) -> tuple[ExpertSet, list[int]]:
        experts = experts_for(self.config, task.protocol, task.dataset)
        ids = experts.require(experts.recipe.experts, self.name)
        return experts, ids

    def identity_extra(self, experts: ExpertSet, ids: list[int]) -> dict:
        return {"experts": experts.identity, "expert_ids": ids}

    def initial(self, task: CondensationTask, experts: ExpertSet, ids: list[int]):
        return initial_selection(task, RandomSelection())

    def make_objective(self, task: CondensationTask, experts: ExpertSet, ids: list[int],
                       clips: torch.Tensor, labels: torch.Tensor) -> TrajectoryObjective:
        return self.objective_class(task, self.config, clips, labels, experts, ids)

    def run(self, task: CondensationTask):
        """The distillation (or its cached result) and what it learned besides the clips."""
        method_formation(task, self)    # a formation the track cannot take fails before any work
        experts, ids = self.experts(task)
        check_segment(self.config, experts, self.name, self.config.max_start_epoch - 1)
        extra = self.identity_extra(experts, ids)
        key = learned_key(task, self, extra)

        def make(clips: torch.Tensor, labels: torch.Tensor) -> TrajectoryObjective:
            objective = self.make_objective(task, experts, ids, clips, labels)
            objective.learned_key = key
            return objective

        settings = LoopSettings(self.config.iterations, self.config.checkpoint_every)
        result = distill(task, self, settings, lambda: self.initial(task, experts, ids), make,
                         identity_extra=extra)
        learned = task.artifacts.get_tensors(key)
        if learned is None:
            # A result cached without its learned values (a stop between the two writes): the
            # result alone cannot be trusted, so the distillation runs again.
            task.artifacts.delete(result_key(self.name, task.track.id,
                                             run_identity(task, self, extra)))
            result = distill(task, self, settings, lambda: self.initial(task, experts, ids),
                             make, identity_extra=extra)
            learned = task.artifacts.get_tensors(key) or {}
        return result, learned

    def condense(self, task: CondensationTask) -> CondensedSet:
        result, _ = self.run(task)
        return task.finish(self, stored_clips(result.clips, self.config.storage), result.labels,
                           wall_seconds=result.seconds)
