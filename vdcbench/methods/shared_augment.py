"""One crop and flip for a whole batch of clips, differentiable: the augmentation distillation uses.

The evaluation trainer gives every clip its own crop (``vdcbench.train.augment``). Distillation
instead draws one set of parameters per call and applies it to every clip of the batch: DSA's
"Siamese" mode (the image DM) shares one transform between the real and the synthetic batch so
that their embeddings differ only by content, and EDC's recover applies a torchvision transform
to the whole batch tensor, which draws one crop for all images. The crop is the trainer's
RandomResizedCrop algorithm (``random_resized_crop_box``) and the resize its ``roi_align``, which
is differentiable in its input, so gradients reach the synthetic pixels; all frames of a clip
share the box, as everywhere in vdcbench.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vdcbench.train.augment import CropBoxes, apply_crops, random_resized_crop_box


@dataclass(frozen=True)
class SharedCrop:
    """One crop box (top, left, height, width) in pixels of a ``size`` x ``size`` clip, one flip."""

    size: int
    box: tuple[int, int, int, int]
    flip: bool

    def apply(self, videos: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, size, size) float (or uint8) -> the same shape, float32, cropped, resized
        back to ``size`` and flipped; differentiable in ``videos``."""
        if videos.shape[-2:] != (self.size, self.size):
            raise ValueError(f"a shared crop drawn for {self.size}x{self.size} clips cannot cut "
                             f"{tuple(videos.shape[-2:])} frames")
        count = videos.shape[0]
        boxes = np.tile(np.asarray(self.box, dtype=np.int64), (count, 1))
        return apply_crops(videos, CropBoxes(boxes, np.full(count, self.flip)), self.size)


@dataclass(frozen=True)
class SharedAugment:
    """How shared crops are drawn: RandomResizedCrop's area and aspect ranges, and the flip."""

    scale: tuple[float, float]
    ratio: tuple[float, float]
    hflip: bool

    def draw(self, rng: np.random.Generator, size: int) -> SharedCrop:
        box = random_resized_crop_box(rng, size, size, self.scale, self.ratio)
        return SharedCrop(size=size, box=box, flip=self.hflip and bool(rng.integers(0, 2)))


def identity_crop(size: int) -> SharedCrop:
    """The crop that changes nothing (the whole frame, no flip): augmentation switched off."""
    return SharedCrop(size=size, box=(0, 0, size, size), flip=False)


def shared_augment(scale: Sequence[float], ratio: Sequence[float], hflip: bool) -> SharedAugment:
    return SharedAugment(scale=(float(scale[0]), float(scale[1])),
                         ratio=(float(ratio[0]), float(ratio[1])), hflip=bool(hflip))
