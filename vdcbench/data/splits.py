"""In-memory splits of a data set, the validation clips of a track, and the data-set hash.

Only the embedded ``synthetic`` source exists in this release; the real data sets are declared by
the protocol and read from a prepared store in a later release.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vdcbench.data import synthetic
from vdcbench.data.sampling import center_crop, clip_indices, clip_interval, validation_start
from vdcbench.errors import NotBuiltError, VdcError
from vdcbench.protocol import Dataset, Protocol, canonical_sha256
from vdcbench.randomness import STREAM_VAL_FRAME_ORDER, rng_for


@dataclass(frozen=True)
class ValidationClips:
    """Validation clips (N, 3, T, crop, crop), already centre-cropped, with their labels."""

    videos: torch.Tensor
    labels: torch.Tensor


@dataclass(frozen=True)
class VideoSplit:
    """Whole videos (N, 3, L, H, W) uint8 at the protocol's resize, labels (N,) int64."""

    dataset: Dataset
    split: str
    videos: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def class_members(split: VideoSplit, label: int, needed: int, what: str) -> np.ndarray:
    """Indices of the videos of class ``label``; raises when fewer than ``needed`` exist."""
    members = torch.nonzero(split.labels == label).flatten().numpy()
    if len(members) < needed:
        name = split.class_names[label] if label < len(split.class_names) else str(label)
        raise VdcError(f"{what} needs {needed} videos of class {label} ({name!r}) of "
                       f"{split.dataset.name!r} but its {split.split} split has {len(members)}")
    return members


def dataset_sha256(dataset: Dataset) -> str:
    """The data-set hash result records carry: what was generated or prepared, not its name only."""
    if dataset.generator is not None:
        g = dataset.generator
        return canonical_sha256({"dataset": dataset.name, "generator": g.version, "seed": g.seed,
                                 "train": g.train_sha256, "val": g.val_sha256})
    raise NotBuiltError(f"the {dataset.name!r} data set (only 'synthetic' is built in this release)")


def open_split(dataset: Dataset, split: str) -> VideoSplit:
    if dataset.generator is None:
        raise NotBuiltError(f"the {dataset.name!r} data set (only 'synthetic' is built in this release)")
    data = synthetic.load_split(dataset.generator, split)
    return VideoSplit(dataset=dataset, split=split, videos=torch.from_numpy(data.videos),
                      labels=torch.from_numpy(data.labels), class_names=synthetic.CLASS_NAMES)


def validation_clips(protocol: Protocol, split: VideoSplit, *, shuffle_frames_seed: int | None = None):
    """One centred clip per video, centre-cropped, uint8 (N, 3, T, crop, crop).

    ``shuffle_frames_seed`` permutes each clip's frames (the temporal-order control only).
    """
    frames = protocol.sampling.frames
    length = int(split.videos.shape[2])
    interval = clip_interval(length, protocol.sampling, split.dataset)
    index = clip_indices(length, validation_start(length, interval, frames), interval, frames)
    clips = center_crop(split.videos[:, :, torch.from_numpy(index)], split.dataset.crop)
    if shuffle_frames_seed is not None:
        order = np.stack([rng_for(shuffle_frames_seed, STREAM_VAL_FRAME_ORDER, i).permutation(frames)
                          for i in range(len(split))])
        clips = torch.stack([clips[i][:, torch.from_numpy(order[i])] for i in range(len(split))])
    return ValidationClips(videos=clips.contiguous(), labels=split.labels)
