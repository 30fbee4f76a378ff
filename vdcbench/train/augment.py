"""Batched clip augmentation on tensors: per-clip RandomResizedCrop and flip, one call per batch.

Each clip gets its own crop box and flip, shared by all of its frames (as the reference applies
torchvision transforms to a whole [T, C, H, W] stack). Boxes are drawn with torchvision's
RandomResizedCrop algorithm from a generator keyed by (seed, epoch, clip index); the resize is
``torchvision.ops.roi_align`` with adaptive sampling, which averages several samples per output
pixel when a crop shrinks (an antialiased resize) and interpolates bilinearly when it grows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import roi_align

from vdcbench.data.sampling import center_crop  # noqa: F401  (re-exported: the validation crop)
from vdcbench.core.randomness import STREAM_CROP, rng_for


@dataclass(frozen=True)
class CropBoxes:
    """Per-clip crop boxes (top, left, height, width) in pixels, and flip flags."""

    boxes: np.ndarray  # (B, 4) int64
    flips: np.ndarray  # (B,) bool


def random_resized_crop_box(rng: np.random.Generator, height: int, width: int,
                            scale: Sequence[float], ratio: Sequence[float]) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop.get_params, drawing from a NumPy generator."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def draw_crops(seed: int, epoch: int, clip_ids: Sequence[int], height: int, width: int,
               scale: Sequence[float], ratio: Sequence[float], hflip: bool) -> CropBoxes:
    boxes = np.empty((len(clip_ids), 4), dtype=np.int64)
    flips = np.zeros(len(clip_ids), dtype=bool)
    for row, clip in enumerate(clip_ids):
        rng = rng_for(seed, STREAM_CROP, epoch, int(clip))
        boxes[row] = random_resized_crop_box(rng, height, width, scale, ratio)
        flips[row] = hflip and bool(rng.integers(0, 2))
    return CropBoxes(boxes, flips)


def center_crop_boxes(count: int, height: int, width: int, size: int) -> CropBoxes:
    """The validation crop: torchvision CenterCrop's box, for every clip."""
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    boxes = np.tile(np.array([top, left, size, size], dtype=np.int64), (count, 1))
    return CropBoxes(boxes, np.zeros(count, dtype=bool))


def to_unit_float(videos: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [0, 1]; float input is taken as already in pixel scale [0, 1]."""
    if videos.dtype == torch.uint8:
        return videos.float().div_(255.0)
    return videos.float()


def apply_crops(videos: torch.Tensor, crops: CropBoxes, size: int) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, C, T, size, size) float32, each clip cropped, resized and flipped."""
    b, c, t, h, w = videos.shape
    x = to_unit_float(videos).reshape(b, c * t, h, w)
    boxes = torch.from_numpy(crops.boxes).to(x.device, torch.float32)
    rois = torch.stack([
        torch.arange(b, device=x.device, dtype=torch.float32),
        boxes[:, 1], boxes[:, 0], boxes[:, 1] + boxes[:, 3], boxes[:, 0] + boxes[:, 2],
    ], dim=1)
    out = roi_align(x, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=-1,
                    aligned=True)
    if crops.flips.any():
        flip = torch.from_numpy(crops.flips).to(x.device)
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    return out.reshape(b, c, t, size, size)


class Normalize:
    """ImageNet mean/std normalisation of (B, 3, T, H, W) float clips in [0, 1]."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1, 1)

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        if self.mean.device != clips.device:
            self.mean, self.std = self.mean.to(clips.device), self.std.to(clips.device)
        return (clips - self.mean) / self.std
