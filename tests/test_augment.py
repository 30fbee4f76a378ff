"""Batched clip augmentation: keyed crop boxes, roi_align crops, flips, centre crop, Normalize."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vdcbench.protocol import load_protocol
from vdcbench.train.augment import (CropBoxes, Normalize, apply_crops, center_crop,
                                    center_crop_boxes, draw_crops, random_resized_crop_box,
                                    to_unit_float)

P = load_protocol(1)
SCALE, RATIO = P.trainer.crop_scale, P.trainer.crop_ratio


def _videos(b=3, c=3, t=4, h=64, w=64, seed=0, dtype=torch.uint8):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, (b, c, t, h, w), generator=g, dtype=torch.uint8)
    return torch.rand((b, c, t, h, w), generator=g)


# --- draw_crops: a pure function of (seed, epoch, clip id) --------------------------------------

def test_draw_crops_is_keyed_by_clip_not_position():
    ids = [5, 17, 0, 999, 42, 3]
    a = draw_crops(7, 2, ids, 64, 64, SCALE, RATIO, True)
    b = draw_crops(7, 2, ids[::-1], 64, 64, SCALE, RATIO, True)
    c = draw_crops(7, 2, [42], 64, 64, SCALE, RATIO, True)
    assert a.boxes.dtype == np.int64 and a.boxes.shape == (6, 4) and a.flips.shape == (6,)
    assert np.array_equal(a.boxes, b.boxes[::-1])
    assert np.array_equal(a.flips, b.flips[::-1])
    assert np.array_equal(c.boxes[0], a.boxes[4]) and c.flips[0] == a.flips[4]
    again = draw_crops(7, 2, np.array(ids), 64, 64, SCALE, RATIO, True)
    assert np.array_equal(again.boxes, a.boxes) and np.array_equal(again.flips, a.flips)


def test_draw_crops_depends_on_seed_and_epoch():
    ids = list(range(32))
    base = draw_crops(0, 0, ids, 64, 64, SCALE, RATIO, True)
    other_epoch = draw_crops(0, 1, ids, 64, 64, SCALE, RATIO, True)
    other_seed = draw_crops(1, 0, ids, 64, 64, SCALE, RATIO, True)
    assert not np.array_equal(base.boxes, other_epoch.boxes)
    assert not np.array_equal(base.boxes, other_seed.boxes)
    # different clips get different boxes
    assert len({tuple(b) for b in base.boxes}) > 25


def test_flips_are_drawn_after_the_box():
    # The flip flag does not change the box (same generator, flip drawn last).
    ids = list(range(40))
    with_flip = draw_crops(3, 4, ids, 64, 64, SCALE, RATIO, True)
    without = draw_crops(3, 4, ids, 64, 64, SCALE, RATIO, False)
    assert np.array_equal(with_flip.boxes, without.boxes)
    assert 5 < with_flip.flips.sum() < 35


def test_hflip_false_never_flips():
    crops = draw_crops(0, 0, range(500), 64, 64, SCALE, RATIO, False)
    assert not crops.flips.any()
    videos = _videos(b=4)
    out = apply_crops(videos, draw_crops(0, 0, range(4), 64, 64, (1.0, 1.0), (1.0, 1.0), False), 64)
    assert torch.equal(out, to_unit_float(videos))


def _rounding(t: float, ratio) -> float:
    """How far h*w of a successful attempt can be from its target area t: each side is rounded
    by at most 0.5, so |h*w - t| <= 0.5 * sqrt(t) * (sqrt(a) + 1/sqrt(a)) + 0.25."""
    worst = max(math.sqrt(r) + 1 / math.sqrt(r) for r in ratio)
    return 0.5 * math.sqrt(t) * worst + 0.25


def _fallback(height: int, width: int, ratio) -> tuple[int, int, int, int]:
    """torchvision's central-crop fallback after ten failed attempts."""
    if width / height < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif width / height > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


@pytest.mark.parametrize("height, width, scale", [
    (64, 64, (0.08, 1.0)), (128, 170, (0.08, 1.0)), (64, 64, (0.35, 1.0)), (37, 53, (0.5, 0.9)),
])
def test_boxes_inside_frame_and_area_in_bounds(height, width, scale):
    crops = draw_crops(11, 0, range(2000), height, width, scale, RATIO, True)
    top, left, h, w = crops.boxes.T
    assert (top >= 0).all() and (left >= 0).all()
    assert (h >= 1).all() and (w >= 1).all()
    assert (top + h <= height).all() and (left + w <= width).all()
    area = h * w
    fallback = (crops.boxes == np.array(_fallback(height, width, RATIO))).all(axis=1)
    low = height * width * scale[0] - _rounding(height * width * scale[0], RATIO)
    high = height * width * scale[1] + _rounding(height * width * scale[1], RATIO)
    assert ((area >= low) | fallback).all()
    assert ((area <= high) | fallback).all()
    assert (area <= height * width).all()
    # aspect ratio within bounds up to the rounding of each side
    aspect = w / h
    slack_lo = (np.sqrt(area * RATIO[0]) - 0.5) / (np.sqrt(area / RATIO[0]) + 0.5)
    slack_hi = (np.sqrt(area * RATIO[1]) + 0.5) / (np.sqrt(area / RATIO[1]) - 0.5)
    assert ((aspect >= slack_lo * 0.9) | fallback).all()
    assert ((aspect <= slack_hi * 1.1) | fallback).all()
    # the draws cover the range: some small and some large boxes
    rel = area / (height * width)
    assert rel.min() < scale[0] + 0.1 and rel.max() > scale[1] - 0.1


def test_box_matches_torchvision_algorithm():
    # Replay the draws by hand with the same NumPy generator.
    from vdcbench.core.randomness import STREAM_CROP, rng_for

    for clip in range(20):
        rng = rng_for(5, STREAM_CROP, 1, clip)
        area = 64 * 64
        expected = None
        for _ in range(10):
            target = area * rng.uniform(*SCALE)
            aspect = math.exp(rng.uniform(math.log(RATIO[0]), math.log(RATIO[1])))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= 64 and 0 < h <= 64:
                expected = (int(rng.integers(0, 64 - h + 1)), int(rng.integers(0, 64 - w + 1)), h, w)
                break
        flip = bool(rng.integers(0, 2))
        crops = draw_crops(5, 1, [clip], 64, 64, SCALE, RATIO, True)
        assert tuple(crops.boxes[0]) == expected
        assert crops.flips[0] == flip


@pytest.mark.parametrize("height, width, expected", [
    (10, 100, (0, 43, 10, 13)),     # too wide: h = H, w = round(H * 4/3), centred
    (100, 10, (43, 0, 13, 10)),     # too tall: w = W, h = round(W / (3/4)) ... centred
    (20, 20, (0, 0, 20, 20)),       # ratio within bounds: the whole frame
])
def test_fallback_box(height, width, expected):
    # scale close to 1 and an extreme frame: all ten attempts fail -> torchvision's fallback
    rng = np.random.default_rng(0)
    if height == width:
        scale = (1.5, 2.0)          # area above the frame: every attempt fails
    else:
        scale = (0.9, 1.0)
    assert random_resized_crop_box(rng, height, width, scale, RATIO) == expected
    assert _fallback(height, width, RATIO) == expected
    crops = draw_crops(0, 0, range(5), height, width, scale, RATIO, False)
    assert all(tuple(b) == expected for b in crops.boxes)


# --- apply_crops ---------------------------------------------------------------------------------

def test_full_frame_box_is_exact_identity():
    for h, w in ((48, 48), (64, 64)):
        videos = _videos(b=3, t=5, h=h, w=w)
        full = CropBoxes(np.tile(np.array([0, 0, h, w], dtype=np.int64), (3, 1)), np.zeros(3, bool))
        out = apply_crops(videos, full, h)
        assert out.dtype == torch.float32 and out.shape == (3, 3, 5, h, w)
        assert torch.equal(out, videos.float() / 255.0)


def test_full_frame_box_float_input_is_unchanged():
    videos = _videos(b=2, t=3, h=32, w=32, dtype=torch.float32)
    full = CropBoxes(np.tile(np.array([0, 0, 32, 32], dtype=np.int64), (2, 1)), np.zeros(2, bool))
    assert torch.equal(apply_crops(videos, full, 32), videos)


@pytest.mark.parametrize("height, width, size", [(64, 64, 56), (128, 170, 112), (65, 64, 56)])
def test_centre_box_equals_center_crop(height, width, size):
    videos = _videos(b=2, t=3, h=height, w=width)
    boxes = center_crop_boxes(2, height, width, size)
    assert tuple(boxes.boxes[0]) == (int(round((height - size) / 2)), int(round((width - size) / 2)),
                                     size, size)
    assert not boxes.flips.any()
    out = apply_crops(videos, boxes, size)
    ref = center_crop(videos, size)
    assert ref.dtype == torch.uint8 and ref.shape == (2, 3, 3, size, size)
    assert torch.equal(out, ref.float() / 255.0)


def test_center_crop_values():
    videos = torch.arange(10 * 12).reshape(1, 1, 1, 10, 12)
    crop = center_crop(videos, 4)
    assert crop.shape == (1, 1, 1, 4, 4)
    assert crop[0, 0, 0, 0, 0].item() == 3 * 12 + 4      # top = 3, left = 4
    assert crop.dtype == videos.dtype


def test_flip_flips_every_frame_of_the_clip_identically():
    videos = _videos(b=4, t=6, h=64, w=64, seed=1)
    crops = draw_crops(2, 0, range(4), 64, 64, SCALE, RATIO, True)
    unflipped = CropBoxes(crops.boxes, np.zeros(4, bool))
    flipped = CropBoxes(crops.boxes, np.array([True, False, True, True]))
    a = apply_crops(videos, unflipped, 56)
    b = apply_crops(videos, flipped, 56)
    for i, f in enumerate(flipped.flips):
        expected = torch.flip(a[i], dims=[-1]) if f else a[i]
        assert torch.equal(b[i], expected), i
    # and the frames of one clip share the crop: a clip of identical frames stays identical
    same = videos[:, :, :1].expand(-1, -1, 6, -1, -1).contiguous()
    out = apply_crops(same, flipped, 56)
    assert torch.equal(out, out[:, :, :1].expand_as(out))


def test_crop_region_is_the_box():
    # A box of the output size is a pure slice (no resampling), at the drawn position.
    videos = _videos(b=2, t=2, h=64, w=64, seed=4)
    crops = CropBoxes(np.array([[3, 5, 20, 20], [40, 0, 20, 20]], dtype=np.int64), np.zeros(2, bool))
    out = apply_crops(videos, crops, 20)
    assert torch.equal(out[0], videos[0, :, :, 3:23, 5:25].float() / 255)
    assert torch.equal(out[1], videos[1, :, :, 40:60, 0:20].float() / 255)


def test_apply_crops_shapes_and_range():
    videos = _videos(b=5, t=8, h=64, w=64)
    crops = draw_crops(0, 3, range(5), 64, 64, SCALE, RATIO, True)
    out = apply_crops(videos, crops, 56)
    assert out.shape == (5, 3, 8, 56, 56) and out.dtype == torch.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


# --- Normalize -----------------------------------------------------------------------------------

def test_normalize_matches_manual():
    mean, std = P.trainer.normalize_mean, P.trainer.normalize_std
    clips = _videos(b=2, t=4, h=8, w=8, dtype=torch.float32)
    out = Normalize(mean, std)(clips)
    manual = torch.empty_like(clips)
    for ch in range(3):
        manual[:, ch] = (clips[:, ch] - mean[ch]) / std[ch]
    assert out.shape == clips.shape
    assert torch.allclose(out, manual, atol=1e-6, rtol=0)
    zero = Normalize(mean, std)(torch.zeros(1, 3, 1, 1, 1)).flatten().tolist()
    assert zero == pytest.approx([-m / s for m, s in zip(mean, std)], abs=1e-6)


def test_to_unit_float():
    u = torch.tensor([0, 128, 255], dtype=torch.uint8)
    assert torch.equal(to_unit_float(u), torch.tensor([0.0, 128 / 255, 1.0]))
    f = torch.tensor([0.25, 0.5], dtype=torch.float64)
    out = to_unit_float(f)
    assert out.dtype == torch.float32 and torch.equal(out, torch.tensor([0.25, 0.5]))
