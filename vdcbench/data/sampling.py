"""Slide-window clip sampling, as protocol v1 declares it (frames counted from 0).

The reference code (Video-DC ``dataset.py``) names frames from 1; the rules here are its rules
converted to 0-based indices, so that a video of length L yields the same frames.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from vdcbench.protocol import Dataset, Sampling

log = logging.getLogger(__name__)


def clip_interval(num_frames: int, sampling: Sampling, dataset: Dataset) -> int:
    """Frame step of a clip: the data set's declared interval, else tau or max(1, L // frames)."""
    if dataset.interval is not None:
        return dataset.interval
    if num_frames >= sampling.frames * sampling.tau:
        return sampling.tau
    return max(1, num_frames // sampling.frames)


def max_start(num_frames: int, interval: int, frames: int) -> int:
    """Largest start whose window still fits: L - 1 - (frames - 1) * interval (may be negative)."""
    return num_frames - 1 - (frames - 1) * interval


def validation_start(num_frames: int, interval: int, frames: int) -> int:
    """The reference's centred window, (L - (T-1) * interval) // 2 in 1-based names, minus one."""
    return max(0, (num_frames - (frames - 1) * interval) // 2 - 1)


def clip_indices(num_frames: int, start: int, interval: int, frames: int) -> np.ndarray:
    """Frame indices of the clip starting at ``start``; short videos are stretched by linspace."""
    if num_frames < frames or max_start(num_frames, interval, frames) < 0:
        log.warning("video of %d frames is shorter than a %d-frame clip; frames repeat",
                    num_frames, frames)
        return np.floor(np.linspace(0, num_frames - 1, frames)).astype(np.int64)
    return start + interval * np.arange(frames, dtype=np.int64)


def training_start(num_frames: int, interval: int, frames: int, rng: np.random.Generator) -> int:
    """A start drawn uniformly from 0 .. L - 1 - (frames - 1) * interval."""
    return int(rng.integers(0, max(0, max_start(num_frames, interval, frames)) + 1))


def center_crop(videos: torch.Tensor, size: int) -> torch.Tensor:
    """Exact centre crop by slicing (no resampling), dtype kept."""
    h, w = videos.shape[-2:]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return videos[..., top:top + size, left:left + size]
