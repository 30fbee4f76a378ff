"""Forgetting: keep, per class, the videos a freshly trained MiniC3D forgets most often.

A MiniC3D is trained on the whole train split under the data set's protocol teacher recipe
(``protocol.teacher_recipe(dataset, "minic3d")``: SGD, warm-up and steps, gradient clipping,
batch size, epochs), one fixed clip per video: its centred window. Each time a video is in a
training batch its prediction in that forward pass is marked correct or wrong, and a forgetting
event is a correct -> wrong change between consecutive observations (Toneva et al. 2019, as
DeepCore ``forgetting.py`` counts them). Per class the most-forgotten videos are kept, ties broken
by a permutation from ``task.rng(label)``, and each is stored as its centred window,
centre-cropped. The counts are cached in ``task.artifacts`` under a key naming the protocol, the
epochs, the augmentation and the seed, so a rerun at another IPC or label strategy does not
retrain; while it trains, the trainer's state is checkpointed there each epoch, so a stopped run
resumes.

Deviations from the reference (recorded in protocol/CHANGELOG.md):
- The scoring net is MiniC3D under the protocol teacher recipe (60 epochs on ``synthetic``, 150
  on the reference data sets), not DeepCore's ResNet-18 for 40 epochs of SGD lr 0.1.
- By default it trains without augmentation on a fixed view (the centred window, centre crop, no
  flip), as DeepCore's selection training does (ToTensor + Normalize only), because random crops
  and flips would turn augmentation noise into forgetting events; ``augment=true`` uses the
  recipe's random resized crop and flip on the same fixed window instead.
- As in DeepCore, a video starts as "not correct", so a video never learned has 0 events and is
  kept last; Toneva et al. rank never-learned examples as forgotten infinitely often.
- ``epochs=0`` (the default) means the recipe's epochs; the archive records the resolved number.

On a temporal track of T frames each video is stored as its centred T-frame window, and the
counting MiniC3D trains on the clips the track's formation forms from that window without chance
(the centred 8-frame window under ``slide-window``; each of the T / 8 segments, an example of its
own, under ``segment``; the interpolated clip under an interpolation): a video's events are the
sum over its clips.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from vdcbench.archive.condensed import CondensedSet, MethodKind
from vdcbench.core.errors import VdcError
from vdcbench.methods.base import CondensationTask, Method
from vdcbench.data.splits import class_members
from vdcbench.methods.features import centred_clips
from vdcbench.models import build_net
from vdcbench.core.randomness import STREAM_METHOD, torch_seed
from vdcbench.train.checkpoint import FitCheckpoint
from vdcbench.train.formation import Formation, form_clips
from vdcbench.train.sources import StoredClips
from vdcbench.train.teacher import teacher_fit_config
from vdcbench.train.trainer import FitConfig, Trainer


class ForgettingCounter:
    """Correct -> wrong transitions per example between consecutive observations of it."""

    def __init__(self, count: int):
        self.last_correct = np.zeros(count, dtype=bool)   # DeepCore: everything starts "wrong"
        self.events = np.zeros(count, dtype=np.int64)

    def observe(self, indices: np.ndarray, correct: np.ndarray) -> None:
        indices = np.asarray(indices, dtype=np.int64)
        correct = np.asarray(correct, dtype=bool)
        self.events[indices] += self.last_correct[indices] & ~correct
        self.last_correct[indices] = correct


def most_forgotten(events: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of the ``count`` largest event counts, ties in the order of a random permutation."""
    events = np.asarray(events)
    if count > len(events):
        raise ValueError(f"cannot keep {count} of {len(events)} examples")
    shuffled = rng.permutation(len(events))
    return shuffled[np.argsort(-events[shuffled], kind="stable")][:count]


class _ObservingTrainer(Trainer):
    """The protocol trainer, reporting each training batch's per-clip correctness to a counter.

    ``Trainer.loss`` sees the logits and labels of the forward pass the optimiser steps on; the
    batch's clip indices are remembered in ``step`` so the observation can be attributed.
    """

    def __init__(self, *args, counter: ForgettingCounter, **kwargs):
        super().__init__(*args, **kwargs)
        self.counter = counter
        self._batch: np.ndarray | None = None

    def step(self, indices: np.ndarray, epoch: int) -> float:
        self._batch = indices
        try:
            return super().step(indices, epoch)
        finally:
            self._batch = None

    def state_dict(self) -> dict:
        return {**super().state_dict(),
                "last_correct": torch.from_numpy(self.counter.last_correct.copy()),
                "events": torch.from_numpy(self.counter.events.copy())}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.counter.last_correct = state["last_correct"].numpy().copy()
        self.counter.events = state["events"].numpy().copy()

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None):
        if self._batch is not None:
            correct = (logits.detach().argmax(dim=1) == labels).cpu().numpy()
            self.counter.observe(self._batch, correct)
        return super().loss(logits, labels, teacher)


def fixed_view_config(config: FitConfig) -> FitConfig:
    """The recipe with augmentation off: full-frame box of the already cropped clip, no flip."""
    return dataclasses.replace(config, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), hflip=False)


def count_forgetting(net: torch.nn.Module, clips: torch.Tensor, labels: torch.Tensor,
                     config: FitConfig, seed: int, device: str = "cpu",
                     progress: Callable[[int, int, float], None] | None = None,
                     checkpoint: FitCheckpoint | None = None) -> np.ndarray:
    """Train ``net`` on fixed ``clips`` under ``config``; forgetting events per clip.

    With a ``checkpoint`` the training resumes where a stopped run left it, counts included.
    """
    counter = ForgettingCounter(len(labels))
    trainer = _ObservingTrainer(net, config, StoredClips(clips, labels), seed=seed,
                                device=device, counter=counter)
    trainer.fit(None, progress=progress, checkpoint=checkpoint)
    return trainer.counter.events


class Forgetting(Method):
    name = "forgetting"
    kind = MethodKind.SELECTION
    description = "per class, the videos a MiniC3D trained on them forgets most often (Toneva et al.)"

    @dataclass(frozen=True)
    class Config:
        epochs: int = 0         # 0: the protocol teacher recipe's epochs
        augment: bool = False   # the recipe's random crop and flip instead of a fixed view
        # Temporal formation on a track of other than 8 frames (segment, slide-window,
        # interpolate-duplicate, interpolate-linear, interpolate-linear-w4): the clips the
        # counting MiniC3D trains on, formed from each video's centred T-frame window, and
        # recorded for evaluation; empty: the track's default (slide-window above 8 frames,
        # interpolate-linear below; none at 8).
        formation: str = ""

        def __post_init__(self) -> None:
            if self.epochs < 0:
                raise VdcError(f"forgetting epochs must be 0 (the recipe's) or more, not {self.epochs}")

    def condense(self, task: CondensationTask) -> CondensedSet:
        started = time.perf_counter()
        split, ipc, protocol = task.train, task.track.ipc, task.protocol
        recipe = protocol.teacher_recipe(task.dataset, "minic3d")
        resolved = dataclasses.replace(self.config, epochs=self.config.epochs or recipe.epochs)
        formation = task.formation(resolved.formation, self.name)
        classes = split.num_classes
        # Fail on a too-small class before the (long) training, not after it.
        members = [class_members(split, label, ipc, f"forgetting at IPC {ipc}")
                   for label in range(classes)]
        events = self._events(task, resolved, recipe, formation)
        clips, labels = [], []
        for label in range(classes):
            chosen = members[label][most_forgotten(events[members[label]], ipc, task.rng(label))]
            clips.append(centred_clips(split, chosen, protocol, task.track.frames))
            labels += [label] * ipc
        return task.finish(Forgetting(resolved), torch.cat(clips), torch.tensor(labels),
                           wall_seconds=time.perf_counter() - started)

    def _events(self, task: CondensationTask, config: "Forgetting.Config", recipe,
                formation: Formation) -> np.ndarray:
        """Forgetting events per train video, from the artifact cache or a training run."""

        split, protocol = task.train, task.protocol
        view = "aug" if config.augment else "fixed"
        key = f"forgetting-events-p{protocol.short_hash}-e{config.epochs}-{view}-s{task.seed}"
        temporal = formation.name != "none"
        if temporal:
            key += f"-t{task.track.frames}-{formation.id}"
        cached = task.artifacts.get_tensors(key)
        if cached is not None and torch.equal(cached["labels"], split.labels.to(torch.int64)):
            return cached["events"].numpy()
        fit = teacher_fit_config(protocol, task.dataset, recipe, config.epochs)
        if not config.augment:
            fit = fixed_view_config(fit)
        labels, owners = split.labels, None
        if not temporal:
            clips = centred_clips(split, np.arange(len(split)), protocol,
                                  protocol.sampling.frames, crop=not config.augment)
        else:
            windows = centred_clips(split, np.arange(len(split)), protocol, task.track.frames,
                                    crop=not config.augment)
            formed = form_clips(windows, formation)
            clips, owners = formed.clips, formed.owners
            labels = split.labels[torch.from_numpy(owners)]
        # The method must not disturb the caller's global generator (the trainer reseeds it).
        with torch.random.fork_rng():
            torch.manual_seed(torch_seed(task.seed, STREAM_METHOD))
            net = build_net(protocol.net("minic3d"), task.dataset.num_classes)
            # An hour of training on a CPU: resumable, epoch by epoch, if the run is stopped.
            resume = FitCheckpoint(task.artifacts, f"{key}-resume")
            events = count_forgetting(net, clips, labels, fit, task.seed, task.device,
                                      progress=lambda done, total, _: task.progress(done, total,
                                                                                    "epochs"),
                                      checkpoint=resume)
        if owners is not None:
            events = np.bincount(owners, weights=events, minlength=len(split)).astype(np.int64)
        task.artifacts.put_tensors(key, {"events": torch.from_numpy(events),
                                         "labels": split.labels.to(torch.int64)})
        resume.clear()
        return events
