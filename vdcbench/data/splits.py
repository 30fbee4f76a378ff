"""A split of a data set as its consumers see it: variable-length videos read clip by clip.

A ``VideoSplit`` is the labels, the class names and the length of every video, plus a frame source
that serves ``clip(video, frame indices)``. The embedded ``synthetic`` set is held in memory (one
equal-length tensor); a real data set is read from its prepared frame store
(``vdcbench.data.store``), so no consumer decodes or holds a whole split. Methods, the trainer's
window source, the teacher and the evaluation all go through ``clip``/``clips`` and the per-video
``lengths``, never through a (N, 3, L, H, W) tensor. Also here: the validation clips of a track
(cached in the store for real data sets) and the data-set hash result records carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol as TypingProtocol, runtime_checkable

import numpy as np
import torch

from vdcbench.data import synthetic
from vdcbench.data.store import Store, StoreFrames, cached_validation_clips, open_store_for
from vdcbench.data.sampling import center_crop, clip_indices, clip_interval, validation_start
from vdcbench.core.errors import VdcError
from vdcbench.protocol import Dataset, Protocol, canonical_sha256
from vdcbench.core.randomness import STREAM_VAL_FRAME_ORDER, rng_for


@dataclass(frozen=True)
class ValidationClips:
    """Validation clips (N, 3, T, crop, crop), already centre-cropped, with their labels."""

    videos: torch.Tensor
    labels: torch.Tensor


@runtime_checkable
class FrameSource(TypingProtocol):
    """Where a split's frames come from: per-video lengths and uint8 (3, T, H, W) clip reads."""

    @property
    def lengths(self) -> np.ndarray: ...

    @property
    def frame_size(self) -> tuple[int, int]: ...

    def clip(self, video: int, frame_indices: np.ndarray) -> torch.Tensor: ...

    def clips(self, videos: Sequence[int], frame_indices: Sequence[np.ndarray]) -> torch.Tensor: ...


def _checked(indices: np.ndarray, length: int, video: int) -> np.ndarray:
    """Frame indices as int64, refused when outside the video (so no read spills into the next)."""
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= length):
        raise IndexError(f"frame indices {indices.tolist()} outside video {video} of {length} frames")
    return indices


class TensorFrames:
    """Equal-length videos held in memory as one uint8 tensor (N, 3, L, H, W)."""

    def __init__(self, videos: torch.Tensor):
        if videos.ndim != 5:
            raise ValueError(f"videos must be (N, 3, L, H, W), not {tuple(videos.shape)}")
        self.videos = videos
        self._lengths = np.full(int(videos.shape[0]), int(videos.shape[2]), dtype=np.int64)

    @property
    def lengths(self) -> np.ndarray:
        return self._lengths

    @property
    def frame_size(self) -> tuple[int, int]:
        return int(self.videos.shape[-2]), int(self.videos.shape[-1])

    def clip(self, video: int, frame_indices: np.ndarray) -> torch.Tensor:
        index = _checked(frame_indices, int(self._lengths[video]), video)
        return self.videos[int(video)][:, torch.from_numpy(index)]

    def clips(self, videos: Sequence[int], frame_indices: Sequence[np.ndarray]) -> torch.Tensor:
        videos = [int(v) for v in videos]
        if not videos:
            h, w = self.frame_size
            return torch.empty((0, 3, 0, h, w), dtype=self.videos.dtype)
        index = [np.asarray(f, dtype=np.int64) for f in frame_indices]
        if all(np.array_equal(index[0], f) for f in index[1:]):
            # One gather for the whole batch when every video reads the same frames (always so on
            # equal-length data): the same values as per-video reads, in one pass.
            _checked(index[0], int(self.videos.shape[2]), videos[0])
            return self.videos[torch.as_tensor(videos)][:, :, torch.from_numpy(index[0])]
        return torch.stack([self.clip(v, f) for v, f in zip(videos, index)])


def as_frame_source(videos: "VideoSplit | FrameSource | torch.Tensor") -> FrameSource:
    """A split, a frame source, or a bare (N, 3, L, H, W) tensor, as something that serves clips."""
    if isinstance(videos, torch.Tensor):
        return TensorFrames(videos)
    return videos


@dataclass(frozen=True)
class VideoSplit:
    """The videos of one split: labels (N,) int64, class names, and clip reads via ``frames``.

    Videos may differ in length (``lengths``); every frame has the protocol's resize
    (``frame_size``). ``clip`` returns uint8 (3, T, H, W), ``clips`` (N, 3, T, H, W).
    """

    dataset: Dataset
    split: str
    labels: torch.Tensor
    class_names: tuple[str, ...]
    frames: FrameSource

    @classmethod
    def from_tensor(cls, dataset: Dataset, split: str, videos: torch.Tensor, labels: torch.Tensor,
                    class_names: tuple[str, ...]) -> "VideoSplit":
        return cls(dataset=dataset, split=split, labels=labels, class_names=class_names,
                   frames=TensorFrames(videos))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        """Frames of each video, (N,) int64."""
        return self.frames.lengths

    @property
    def frame_size(self) -> tuple[int, int]:
        """(H, W) of every frame: the protocol's resize."""
        return self.frames.frame_size

    @property
    def videos(self) -> torch.Tensor:
        """The whole (N, 3, L, H, W) tensor of an in-memory split (synthetic); a store-backed
        split has no such tensor (read clips instead)."""
        if isinstance(self.frames, TensorFrames):
            return self.frames.videos
        raise AttributeError(f"the {self.dataset.name!r} {self.split} split is read from its "
                             "frame store clip by clip; it has no whole-split tensor")

    def clip(self, video: int, frame_indices: np.ndarray) -> torch.Tensor:
        return self.frames.clip(video, frame_indices)

    def clips(self, videos: Sequence[int], frame_indices: Sequence[np.ndarray]) -> torch.Tensor:
        return self.frames.clips(videos, frame_indices)

    @property
    def num_classes(self) -> int:
        """The data set's class count; for a data set declaring none, the largest label + 1."""
        return self.dataset.num_classes or int(self.labels.max()) + 1

    def interval(self, video: int, sampling) -> int:
        """The slide-window frame step of ``video`` (it depends on the video's length)."""
        return clip_interval(int(self.lengths[video]), sampling, self.dataset)


def class_members(split: VideoSplit, label: int, needed: int, what: str) -> np.ndarray:
    """Indices of the videos of class ``label``; raises when fewer than ``needed`` exist."""
    members = torch.nonzero(split.labels == label).flatten().numpy()
    if len(members) < needed:
        name = split.class_names[label] if label < len(split.class_names) else str(label)
        raise VdcError(f"{what} needs {needed} videos of class {label} ({name!r}) of "
                       f"{split.dataset.name!r} but its {split.split} split has {len(members)}")
    return members


def dataset_sha256(dataset: Dataset) -> str:
    """The data-set hash result records carry: what was generated or prepared, not its name only.

    A generated set hashes its generator and pinned split hashes; a prepared one is its store's
    hash (the ordered index with every video's content hash)."""
    if dataset.generator is not None:
        g = dataset.generator
        return canonical_sha256({"dataset": dataset.name, "generator": g.version, "seed": g.seed,
                                 "train": g.train_sha256, "val": g.val_sha256})
    return open_store_for(dataset).sha256


def open_split(dataset: Dataset, split: str) -> VideoSplit:
    """The ``split`` of ``dataset``: generated in memory (synthetic) or read from its store."""
    if dataset.generator is not None:
        data = synthetic.load_split(dataset.generator, split)
        return VideoSplit.from_tensor(dataset, split, torch.from_numpy(data.videos),
                                      torch.from_numpy(data.labels), synthetic.CLASS_NAMES)
    return store_split(open_store_for(dataset), dataset, split)


def store_split(store: Store, dataset: Dataset, split: str) -> VideoSplit:
    """The ``split`` of a prepared frame store, read clip by clip from its files."""
    if split not in ("train", "val"):
        raise VdcError(f"unknown split {split!r} of {dataset.name!r} (known: train, val)")
    rows = store.index.rows(split)
    return VideoSplit(dataset=dataset, split=split,
                      labels=torch.from_numpy(store.index.labels[rows].copy()),
                      class_names=store.classes, frames=StoreFrames(store, rows))


def centred_indices(split: VideoSplit, video: int, sampling, frames: int) -> np.ndarray:
    """Frame indices of ``video``'s centred (validation) window of ``frames`` frames."""
    length = int(split.lengths[video])
    interval = clip_interval(length, sampling, split.dataset)
    return clip_indices(length, validation_start(length, interval, frames), interval, frames)


def validation_clips(protocol: Protocol, split: VideoSplit, *, shuffle_frames_seed: int | None = None):
    """One centred clip per video, centre-cropped, uint8 (N, 3, T, crop, crop).

    ``shuffle_frames_seed`` permutes each clip's frames (the temporal-order control only). The
    clips of a store-backed split are cached in the store the first time they are asked for.
    """
    if shuffle_frames_seed is None and not isinstance(split.frames, TensorFrames):
        cached = cached_validation_clips(protocol, split, lambda: _validation_clips(protocol, split))
        return ValidationClips(videos=cached, labels=split.labels)
    return ValidationClips(videos=_validation_clips(protocol, split, shuffle_frames_seed),
                           labels=split.labels)


def _validation_clips(protocol: Protocol, split: VideoSplit,
                      shuffle_frames_seed: int | None = None) -> torch.Tensor:
    frames, crop = protocol.sampling.frames, split.dataset.crop
    n = len(split)
    out = []
    # Batches bound the memory of a store read: only cropped clips accumulate.
    for first in range(0, n, 256):
        videos = range(first, min(n, first + 256))
        index = [centred_indices(split, v, protocol.sampling, frames) for v in videos]
        out.append(center_crop(split.clips(list(videos), index), crop).contiguous())
    h, w = split.frame_size
    clips = torch.cat(out) if out else torch.empty((0, 3, frames, min(crop, h), min(crop, w)),
                                                   dtype=torch.uint8)
    if shuffle_frames_seed is not None and n:
        order = np.stack([rng_for(shuffle_frames_seed, STREAM_VAL_FRAME_ORDER, i).permutation(frames)
                          for i in range(n)])
        clips = torch.stack([clips[i][:, torch.from_numpy(order[i])] for i in range(n)])
    return clips.contiguous()
