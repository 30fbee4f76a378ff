"""Random: IPC real clips per class, each a uniformly random window of a random video.

Deviation from the reference (recorded in protocol/CHANGELOG.md): the study's Random stored the
first 8-frame window of each video after a random resized crop and flip; here the window is
uniformly random and the crop is the validation centre crop, so the stored clip is an unaltered
view of the real data and the trainer's augmentation is the only augmentation.
"""

from __future__ import annotations

import time

import torch

from vdcbench.archive.condensed import CondensedSet, MethodKind
from vdcbench.data.splits import class_members
from vdcbench.data.sampling import clip_indices, training_start
from vdcbench.methods.base import CondensationTask, Method
from vdcbench.train.augment import center_crop


class RandomSelection(Method):
    name = "random"
    kind = MethodKind.SELECTION
    description = "IPC uniformly random real videos per class, one random window each"

    def condense(self, task: CondensationTask) -> CondensedSet:
        started = time.perf_counter()
        split = task.train
        frames, crop = task.track.frames, task.dataset.crop
        clips, labels = [], []
        classes = split.num_classes
        for label in range(classes):
            rng = task.rng(label)
            members = class_members(split, label, task.track.ipc, f"random at IPC {task.track.ipc}")
            chosen = rng.choice(members, size=task.track.ipc, replace=False)
            for video_index in sorted(int(i) for i in chosen):
                length = int(split.lengths[video_index])
                interval = split.interval(video_index, task.protocol.sampling)
                start = training_start(length, interval, frames, rng)
                index = clip_indices(length, start, interval, frames)
                clips.append(center_crop(split.clip(video_index, index), crop))
                labels.append(label)
            task.progress(label + 1, classes, "classes")
        return task.finish(self, torch.stack(clips), torch.tensor(labels),
                           wall_seconds=time.perf_counter() - started)
