"""Where training clips come from: a condensed set's stored clips, or windows of whole videos."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vdcbench.data.sampling import clip_indices, training_start
from vdcbench.data.splits import FrameSource
from vdcbench.core.randomness import STREAM_FRAME_ORDER, STREAM_WINDOW, rng_for


@dataclass(frozen=True)
class StoredClips:
    """Fixed clips (N, 3, T, H, W), uint8 or float in [0, 1]: what a condensed set holds."""

    videos: torch.Tensor
    labels: torch.Tensor
    soft_labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def clips(self, indices: np.ndarray, seed: int, epoch: int) -> torch.Tensor:
        return self.videos[torch.from_numpy(indices)]


@dataclass(frozen=True)
class VideoWindows:
    """Whole videos of a split (any lengths); each draw takes a random slide-window clip.

    ``videos`` serves clips (a ``VideoSplit``, or any frame source with ``lengths`` and
    ``clips``); ``intervals`` is each video's frame step (it depends on the video's length, see
    ``clip_interval``). The window of clip ``index`` in ``epoch`` is drawn from
    ``rng_for(seed, STREAM_WINDOW, epoch, index)`` whatever the video's length.
    ``shuffle_frames`` permutes the frames of every draw: the control that shows how much a
    model relies on temporal order. It is a diagnostic, never a protocol setting.
    """

    videos: FrameSource
    labels: torch.Tensor
    frames: int
    intervals: np.ndarray
    shuffle_frames: bool = False

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def frame_indices(self, index: int, seed: int, epoch: int) -> np.ndarray:
        length = int(self.videos.lengths[index])
        interval = int(self.intervals[index])
        start = training_start(length, interval, self.frames,
                               rng_for(seed, STREAM_WINDOW, epoch, index))
        frames = clip_indices(length, start, interval, self.frames)
        if self.shuffle_frames:
            frames = rng_for(seed, STREAM_FRAME_ORDER, epoch, index).permutation(frames)
        return frames

    def clips(self, indices: np.ndarray, seed: int, epoch: int) -> torch.Tensor:
        indices = [int(i) for i in indices]
        return self.videos.clips(indices, [self.frame_indices(i, seed, epoch) for i in indices])
