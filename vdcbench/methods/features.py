"""The per-video view the feature-based selection methods share: the centred clip and its feature.

Herding and K-Center work in the protocol teacher's pooled 128-d feature (``net.embed``), one
point per video: the teacher, in eval mode, looks at the video's centred validation window,
centre-cropped and normalised, exactly as it is scored on validation videos. Forgetting trains on
the same centred window, and all three store it. The class-member check lives here too because
every selection method asks it before choosing: "does this class have enough videos?".
``select_in_feature_space`` is the per-class loop Herding and K-Center share; they differ only in
how they pick rows from a class's features. The features of the whole train split are cached in
the task's artifact store, keyed by the teacher's sha256 and the protocol.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from vdcbench.archive.condensed import CondensedSet
from vdcbench.data.splits import class_members, centred_indices, VideoSplit
from vdcbench.core.errors import VdcError
from vdcbench.methods.base import CondensationTask, Method
from vdcbench.protocol import Protocol
from vdcbench.train.augment import Normalize, center_crop, to_unit_float


def centred_clips(split: VideoSplit, indices: np.ndarray, protocol: Protocol, frames: int,
                  crop: bool = True) -> torch.Tensor:
    """The centred ``frames``-frame window of each video, centre-cropped unless ``crop`` is false:
    uint8 (N, 3, T, c, c), or (N, 3, T, H, W) at the protocol's resize."""
    chosen = [int(i) for i in np.asarray(indices, dtype=np.int64)]
    index = [centred_indices(split, v, protocol.sampling, frames) for v in chosen]
    clips = split.clips(chosen, index)
    return (center_crop(clips, split.dataset.crop) if crop else clips).contiguous()


@torch.no_grad()
def teacher_features(net: nn.Module, split: VideoSplit, indices: np.ndarray, protocol: Protocol,
                     batch_size: int = 50, device: str | torch.device = "cpu",
                     progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """The teacher's pooled feature of each video's centred protocol window: float32 (N, D)."""
    if not callable(getattr(net, "embed", None)):
        raise VdcError(f"the teacher {type(net).__name__} has no pooled feature (`embed`) to "
                       f"select in")
    was_training = net.training
    net.eval()
    normalize = Normalize(protocol.trainer.normalize_mean, protocol.trainer.normalize_std)
    indices = np.asarray(indices, dtype=np.int64)
    out = []
    try:
        for start in range(0, len(indices), batch_size):
            # Clips are cut per batch so the whole split never sits in memory as float.
            clips = centred_clips(split, indices[start:start + batch_size], protocol,
                                  protocol.sampling.frames)
            out.append(net.embed(normalize(to_unit_float(clips.to(device)))).float().cpu())
            if progress is not None:
                progress(min(start + batch_size, len(indices)), len(indices))
    finally:
        net.train(was_training)
    if not out:
        return torch.empty(0, getattr(net, "feature_dim", 0))
    return torch.cat(out)


def split_features(task: CondensationTask, batch_size: int = 50) -> torch.Tensor:
    """Teacher features of every train video, cached in ``task.artifacts`` by teacher and protocol.

    The key names no method or IPC: the features are the teacher's, so any run that shares the
    artifact store (another label strategy, a rerun) reuses them.
    """
    teacher, split = task.teacher(), task.train
    key = f"teacher-features-p{task.protocol.short_hash}-{teacher.net_name}-{teacher.sha256[:16]}"
    cached = task.artifacts.get_tensors(key)
    if cached is not None and torch.equal(cached["labels"], split.labels.to(torch.int64)):
        return cached["features"]
    features = teacher_features(teacher.net, split, np.arange(len(split)), task.protocol,
                                batch_size, task.device,
                                progress=lambda done, total: task.progress(done, total, "videos"))
    task.artifacts.put_tensors(key, {"features": features, "labels": split.labels.to(torch.int64)})
    return features


Picker = Callable[[torch.Tensor, int, int], np.ndarray]
"""(features of one class's videos, count, label) -> rows chosen, in pick order."""


def select_in_feature_space(method: Method, task: CondensationTask, pick: Picker,
                            batch_size: int) -> CondensedSet:
    """Per class, ``pick`` IPC videos by their teacher features; store their centred windows."""
    started = time.perf_counter()
    split, ipc = task.train, task.track.ipc
    classes = split.num_classes
    # Every class is checked before the teacher is loaded: a too-large IPC fails at once.
    members = [class_members(split, label, ipc, f"{method.name} at IPC {ipc}")
               for label in range(classes)]
    features = split_features(task, batch_size)
    clips, labels = [], []
    for label in range(classes):
        chosen = members[label][pick(features[members[label]], ipc, label)]
        clips.append(centred_clips(split, chosen, task.protocol, task.track.frames))
        labels += [label] * ipc
        task.progress(label + 1, classes, "classes")
    return task.finish(method, torch.cat(clips), torch.tensor(labels),
                       wall_seconds=time.perf_counter() - started)
