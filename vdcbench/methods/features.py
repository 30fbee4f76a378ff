"""The per-video view the feature-based selection methods share: the centred clip and its feature.

Herding and K-Center work in the protocol teacher's pooled 128-d feature (``net.embed``), one
point per video: the teacher, in eval mode, looks at the video's centred validation window,
centre-cropped and normalised, exactly as it is scored on validation videos. Forgetting trains on
the same centred window, and all three store it. The class-member check lives here too because
every selection method asks it before choosing: "does this class have enough videos?".
``select_in_feature_space`` is the per-class loop Herding and K-Center share; they differ only in
how they pick rows from a class's features. The features of the whole train split are cached in
the task's artifact store, keyed by the teacher's sha256 and the protocol.

On a temporal track (T frames other than the protocol's 8) a method stores each chosen video's
centred T-frame window, and its feature is the teacher's feature of the clips the track's
formation forms from that window without chance (the centred 8-frame window under
``slide-window``, the mean over the T / 8 segments under ``segment``, the interpolated clip under
an interpolation): the instance is judged as the evaluation will see it.

The teacher-based methods take their teacher's profile from their config (``teacher_profile``:
``protocol``, or a declared profile such as ``cpu``); :func:`method_teacher` loads it and
:func:`recorded_method` writes the resolved profile, name and hash, into the manifest's config.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from vdcbench.archive.condensed import CondensedSet
from vdcbench.data.splits import class_members, centred_indices, VideoSplit
from vdcbench.core.errors import VdcError
from vdcbench.methods.base import CondensationTask, Method
from vdcbench.protocol import PROTOCOL_PROFILE, Protocol, TeacherProfile, teacher_profile
from vdcbench.train.teacher import Teacher
from vdcbench.train.augment import Normalize, center_crop, to_unit_float
from vdcbench.train.formation import Formation, form_clips, mean_by_owner


def resolve_profile(protocol: Protocol, value: str) -> TeacherProfile | None:
    """The profile a config's ``teacher_profile`` names: ``protocol`` (None), a declared name, or
    ``<name>@<sha256>`` as a manifest records it (refused unless that is the declared hash)."""
    name, at, sha = value.partition("@")
    profile = teacher_profile(name, protocol)
    if at and (profile is None or profile.sha256 != sha):
        raise VdcError(f"teacher profile {value!r} is not the declared {name!r} profile "
                       f"({'the protocol teacher' if profile is None else profile.sha256[:12]})")
    return profile


def profile_value(profile: TeacherProfile | None) -> str:
    """What a manifest's config records: ``protocol``, or ``<name>@<sha256>``."""
    return PROTOCOL_PROFILE if profile is None else f"{profile.name}@{profile.sha256}"


def method_teacher(task: CondensationTask, net: str, profile: TeacherProfile | None) -> Teacher:
    """The teacher of ``net`` under ``profile`` (None: the protocol teacher), the config's choice.

    Loaded through the task, so the soft labels ``task.finish`` adds come from the same teacher
    (it reads the profile the manifest records) without a second load."""
    return task.teacher(net, PROTOCOL_PROFILE if profile is None else profile)


def recorded_method(method: Method, profile: TeacherProfile | None) -> Method:
    """``method`` with its config naming the resolved profile, for the manifest."""
    config = dataclasses.replace(method.config, teacher_profile=profile_value(profile))
    return type(method)(config)


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
                     progress: Callable[[int, int], None] | None = None,
                     frames: int | None = None,
                     formation: Formation | None = None) -> torch.Tensor:
    """The teacher's pooled feature of each video's centred protocol window: float32 (N, D).

    With ``frames`` and a ``formation`` (a temporal track): of each video's centred
    ``frames``-frame window, formed into clips without chance, a clip's features averaged over
    its instance's clips."""
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
            if formation is None or formation.name == "none":
                clips = centred_clips(split, indices[start:start + batch_size], protocol,
                                      protocol.sampling.frames)
                out.append(net.embed(normalize(to_unit_float(clips.to(device)))).float().cpu())
            else:
                windows = centred_clips(split, indices[start:start + batch_size], protocol,
                                        frames or protocol.sampling.frames)
                formed = form_clips(windows, formation)
                embedded = net.embed(normalize(to_unit_float(formed.clips.to(device)))).float()
                out.append(mean_by_owner(embedded.cpu(), formed.owners))
            if progress is not None:
                progress(min(start + batch_size, len(indices)), len(indices))
    finally:
        net.train(was_training)
    if not out:
        return torch.empty(0, getattr(net, "feature_dim", 0))
    return torch.cat(out)


def split_features(task: CondensationTask, batch_size: int = 50,
                   profile: TeacherProfile | None = None,
                   formation: Formation | None = None) -> torch.Tensor:
    """Teacher features of every train video, cached in ``task.artifacts`` by teacher and protocol
    (and, on a temporal track, its frames and ``formation``).

    The key names no method or IPC: the features are the teacher's, so any run that shares the
    artifact store (another label strategy, a rerun) reuses them.
    """
    teacher, split = method_teacher(task, "minic3d", profile), task.train
    key = f"teacher-features-p{task.protocol.short_hash}-{teacher.net_name}-{teacher.sha256[:16]}"
    temporal = formation is not None and formation.name != "none"
    if temporal:
        key += f"-t{task.track.frames}-{formation.id}"
    cached = task.artifacts.get_tensors(key)
    if cached is not None and torch.equal(cached["labels"], split.labels.to(torch.int64)):
        return cached["features"]
    features = teacher_features(teacher.net, split, np.arange(len(split)), task.protocol,
                                batch_size, task.device,
                                progress=lambda done, total: task.progress(done, total, "videos"),
                                frames=task.track.frames if temporal else None,
                                formation=formation if temporal else None)
    task.artifacts.put_tensors(key, {"features": features, "labels": split.labels.to(torch.int64)})
    return features


Picker = Callable[[torch.Tensor, int, int], np.ndarray]
"""(features of one class's videos, count, label) -> rows chosen, in pick order."""


def select_in_feature_space(method: Method, task: CondensationTask, pick: Picker,
                            batch_size: int) -> CondensedSet:
    """Per class, ``pick`` IPC videos by their teacher features (of the clips the track's
    formation forms); store their centred windows of the track's frames."""
    started = time.perf_counter()
    split, ipc = task.train, task.track.ipc
    formation = task.formation(getattr(method.config, "formation", ""), method.name)
    classes = split.num_classes
    # Every class is checked before the teacher is loaded: a too-large IPC fails at once.
    members = [class_members(split, label, ipc, f"{method.name} at IPC {ipc}")
               for label in range(classes)]
    profile = resolve_profile(task.protocol, getattr(method.config, "teacher_profile",
                                                      PROTOCOL_PROFILE))
    features = split_features(task, batch_size, profile, formation)
    clips, labels = [], []
    for label in range(classes):
        chosen = members[label][pick(features[members[label]], ipc, label)]
        clips.append(centred_clips(split, chosen, task.protocol, task.track.frames))
        labels += [label] * ipc
        task.progress(label + 1, classes, "classes")
    return task.finish(recorded_method(method, profile), torch.cat(clips), torch.tensor(labels),
                       wall_seconds=time.perf_counter() - started)
