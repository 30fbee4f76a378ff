"""Where training clips come from: a condensed set's stored clips, or windows of whole videos."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vdcbench.data.sampling import clip_indices, training_start
from vdcbench.data.splits import FrameSource
from vdcbench.core.randomness import STREAM_FRAME_ORDER, STREAM_WINDOW, rng_for
from vdcbench.train.formation import Formation, clip_ids, form_clips


@dataclass(frozen=True)
class StoredClips:
    """Fixed instances (N, 3, T, H, W), uint8 or float in [0, 1]: what a condensed set holds.

    ``formation`` turns an instance of T frames into the clips the net eats (see ``formation``);
    None (or ``none``) serves each instance as its one clip, as before formations existed. A
    sliding window of instance ``index`` in ``epoch`` is drawn from
    ``rng_for(seed, STREAM_WINDOW, epoch, index)``, the stream whole videos' windows use. A draw
    of B instances yields ``clips_per_instance`` clips each (T / 8 under ``segment``);
    ``owners`` and ``clip_ids`` say whose they are and key their crops.
    """

    videos: torch.Tensor
    labels: torch.Tensor
    soft_labels: torch.Tensor | None = None
    formation: Formation | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def clips_per_instance(self) -> int:
        if self.formation is None:
            return 1
        return self.formation.clips_per_instance(int(self.videos.shape[2]))

    def clips(self, indices: np.ndarray, seed: int, epoch: int) -> torch.Tensor:
        chosen = self.videos[torch.from_numpy(indices)]
        if self.formation is None or self.formation.name == "none":
            return chosen
        rngs = [rng_for(seed, STREAM_WINDOW, epoch, int(i)) for i in indices]
        return form_clips(chosen, self.formation, rngs).clips

    def owners(self, indices: np.ndarray) -> np.ndarray:
        """The instance of each clip ``clips(indices)`` returns."""
        return np.repeat(np.asarray(indices, dtype=np.int64), self.clips_per_instance)

    def clip_ids(self, indices: np.ndarray) -> np.ndarray:
        """A key per clip for its crop draw: the instance index when it yields one clip."""
        return clip_ids(indices, self.clips_per_instance)


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

    def owners(self, indices: np.ndarray) -> np.ndarray:
        return np.asarray(indices, dtype=np.int64)

    def clip_ids(self, indices: np.ndarray) -> np.ndarray:
        return np.asarray(indices, dtype=np.int64)

    def clips(self, indices: np.ndarray, seed: int, epoch: int) -> torch.Tensor:
        indices = [int(i) for i in indices]
        return self.videos.clips(indices, [self.frame_indices(i, seed, epoch) for i in indices])
