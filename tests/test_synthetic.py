"""The embedded synthetic data set: pinned bytes, the cache, flip invariance and time reversal."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vdcbench.core import paths
from vdcbench.data import synthetic
from vdcbench.data.synthetic import (CLASS_NAMES, _draw_params, _draw_scene, _render,
                                     generate_split, generate_video, load_split)
from vdcbench.core.errors import VdcError
from vdcbench.protocol import load_protocol

P = load_protocol(1)
SPEC = P.dataset("synthetic").generator
FRAMES, H, W = SPEC.frames, SPEC.height, SPEC.width


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("VDCBENCH_CACHE", str(root))
    return synthetic.split_cache_folder(SPEC)


def test_class_names():
    assert len(CLASS_NAMES) == P.dataset("synthetic").num_classes == 10
    assert CLASS_NAMES[::2] == ("pan-up", "zoom-in", "fade-in", "widen", "iris-open")
    assert CLASS_NAMES[1::2] == ("pan-down", "zoom-out", "fade-out", "narrow", "iris-close")


# --- (a) regeneration against the pinned hashes, and the cache ---------------------------------

@pytest.mark.slow   # 68 s on a loaded core (3 Dec); CI runs it in its `pytest -m slow` step
def test_regenerated_splits_match_the_pin_and_are_cached(cache, monkeypatch):
    assert paths.cache_root() == cache.parent.parent
    first = {}
    for split, per_class, pinned in (("train", SPEC.train_per_class, SPEC.train_sha256),
                                     ("val", SPEC.val_per_class, SPEC.val_sha256)):
        assert not (cache / f"{split}-videos.npy").exists()
        data = load_split(SPEC, split)
        assert data.sha256 == pinned, f"{split} split does not reproduce the protocol's sha256"
        assert data.videos.shape == (10 * per_class, 3, FRAMES, H, W)
        assert data.videos.dtype == np.uint8
        assert data.labels.dtype == np.int64
        assert data.labels.tolist() == np.repeat(np.arange(10), per_class).tolist()
        assert (cache / f"{split}-videos.npy").is_file()
        assert (cache / f"{split}-labels.npy").is_file()
        assert not list(cache.glob("*.tmp"))
        first[split] = data

    # The second call reads the cache: generating again would fail.
    def no_generation(*args, **kwargs):
        raise AssertionError("load_split regenerated a split that is in the cache")

    monkeypatch.setattr(synthetic, "generate_split", no_generation)
    for split in ("train", "val"):
        again = load_split(SPEC, split)
        assert again.sha256 == first[split].sha256
        assert np.array_equal(again.videos, first[split].videos)
    monkeypatch.undo()
    monkeypatch.setenv("VDCBENCH_CACHE", str(cache.parent.parent))

    # A cache whose bytes no longer match the pin is regenerated (verify=True) and rewritten,
    # and is returned as is with verify=False.
    videos_path = cache / "val-videos.npy"
    tampered = first["val"].videos.copy()
    tampered[0, 0, 0, 0, 0] ^= 1
    np.save(videos_path, tampered)
    unverified = load_split(SPEC, "val", verify=False)
    assert np.array_equal(unverified.videos, tampered)
    repaired = load_split(SPEC, "val")
    assert repaired.sha256 == SPEC.val_sha256
    assert np.array_equal(np.load(videos_path), first["val"].videos)


# --- the renderer as generate_video uses it ------------------------------------------------------

def _scene(label: int, index: int, split: str = "train"):
    """The canvas and parameters generate_video draws for (label, index), same rng sequence."""
    rng = np.random.default_rng([SPEC.seed, synthetic.SPLITS.index(split), label, index])
    canvas = _draw_scene(rng)
    params = _draw_params(rng, label // 2, FRAMES)
    return canvas, params


@pytest.mark.parametrize("label", range(10))
def test_generate_video_is_render_and_odd_classes_are_reversed(label):
    for index in range(2):
        canvas, params = _scene(label, index)
        forward = _render(canvas, label // 2, params, FRAMES, H, W)
        expected = forward[:, ::-1] if label % 2 else forward
        video = generate_video(SPEC.seed, "train", label, index, FRAMES, H, W,
                               distractors=False, noise=False)
        assert video.shape == (3, FRAMES, H, W) and video.dtype == np.uint8
        assert np.array_equal(video, np.clip(expected, 0, 255).astype(np.uint8))


# --- (b) the class-defining motion survives a horizontal flip -----------------------------------

@pytest.mark.parametrize("label", range(10))
def test_horizontal_flip_commutes_with_render(label):
    pair = label // 2
    for index in range(3):
        rng = np.random.default_rng([12345, label, index])
        canvas = _draw_scene(rng)
        params = _draw_params(rng, pair, FRAMES)
        video = _render(canvas, pair, params, FRAMES, H, W)
        mirrored_scene = _render(np.ascontiguousarray(canvas[:, :, ::-1]), pair, params,
                                 FRAMES, H, W)
        if label % 2:   # the odd class is the time reversal of its pair's render
            video, mirrored_scene = video[:, ::-1], mirrored_scene[:, ::-1]
        assert np.array_equal(mirrored_scene, video[..., ::-1]), (CLASS_NAMES[label], index)
        # not vacuous: the scene is not symmetric and the video moves
        assert not np.array_equal(canvas, canvas[:, :, ::-1])
        assert not np.array_equal(video, video[..., ::-1])
        assert not np.array_equal(video[:, 0], video[:, -1]), CLASS_NAMES[label]
        changed = sum(not np.array_equal(video[:, t], video[:, t + 1]) for t in range(FRAMES - 1))
        # The trend lasts 2 * half frames (the scene holds still outside it).
        assert changed >= params["half"], (CLASS_NAMES[label], changed)


@pytest.mark.parametrize("label", range(10))
def test_class_video_without_distractors_is_flip_invariant(label):
    # The same through the public function: the video of a mirrored scene is the mirrored video.
    canvas, params = _scene(label, 3)
    video = generate_video(SPEC.seed, "train", label, 3, FRAMES, H, W,
                           distractors=False, noise=False)
    mirrored = _render(canvas[:, :, ::-1], label // 2, params, FRAMES, H, W)
    if label % 2:
        mirrored = mirrored[:, ::-1]
    assert np.array_equal(np.clip(mirrored, 0, 255).astype(np.uint8), video[..., ::-1])


# --- (c) odd classes are time reversals: direction of the trend ---------------------------------

def _brightness(video: np.ndarray) -> np.ndarray:
    return video.astype(np.float64).mean(axis=(0, 2, 3))          # per frame


def _black_fraction(video: np.ndarray) -> np.ndarray:
    return (video.max(axis=0) <= 12).mean(axis=(1, 2))              # per frame, noise <= 12


@pytest.mark.parametrize("label, sign", [(4, +1), (5, -1)])
def test_fade_direction(label, sign):
    deltas = []
    for index in range(10):
        b = _brightness(generate_video(SPEC.seed, "train", label, index, FRAMES, H, W))
        deltas.append(b[-1] - b[0])
    assert sign * np.mean(deltas) > 20.0, deltas
    assert all(sign * d > 0 for d in deltas), deltas


@pytest.mark.parametrize("label, sign", [(8, -1), (9, +1)])
def test_iris_direction(label, sign):
    deltas = []
    for index in range(10):
        f = _black_fraction(generate_video(SPEC.seed, "train", label, index, FRAMES, H, W))
        deltas.append(f[-1] - f[0])
    assert sign * np.mean(deltas) > 0.3, deltas
    assert all(sign * d > 0 for d in deltas), deltas


@pytest.mark.parametrize("label", [4, 5, 8, 9])
def test_clean_trend_is_monotone(label):
    # Without distractors and noise the fade and the iris are monotone frame by frame.
    for index in range(5):
        video = generate_video(SPEC.seed, "val", label, index, FRAMES, H, W,
                               distractors=False, noise=False)
        series = _brightness(video) if label < 8 else -_black_fraction(video)
        steps = np.diff(series)
        if label % 2:
            steps = -steps
        assert (steps >= 0).all(), (label, index, steps)
        assert series[0] != series[-1]


def test_generate_video_is_deterministic_and_keyed():
    a = generate_video(SPEC.seed, "train", 2, 0, FRAMES, H, W)
    assert np.array_equal(a, generate_video(SPEC.seed, "train", 2, 0, FRAMES, H, W))
    assert not np.array_equal(a, generate_video(SPEC.seed, "val", 2, 0, FRAMES, H, W))
    assert not np.array_equal(a, generate_video(SPEC.seed, "train", 2, 1, FRAMES, H, W))
    assert not np.array_equal(a, generate_video(SPEC.seed + 1, "train", 2, 0, FRAMES, H, W))


# --- (d) errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("split", ["test", "Train", "validation", ""])
def test_bad_split_name(cache, split):
    with pytest.raises(VdcError, match="unknown split"):
        load_split(SPEC, split)
    assert not cache.exists()


def test_generator_version_mismatch(cache):
    future = dataclasses.replace(SPEC, version=SPEC.version + 1)
    with pytest.raises(VdcError, match=r"generator v2; this vdcbench has v1"):
        generate_split(future, "val")
    with pytest.raises(VdcError, match=r"generator v2"):
        load_split(future, "val")


def test_unreproducible_hash_raises(cache):
    wrong = dataclasses.replace(SPEC, val_per_class=1, val_sha256="0" * 64)
    wrong_cache = synthetic.split_cache_folder(wrong)
    assert wrong_cache != cache   # a different spec never shares the cached files
    with pytest.raises(VdcError, match="does not reproduce"):
        load_split(wrong, "val")
    assert not (wrong_cache / "val-videos.npy").exists()
    # verify=False accepts and caches it
    data = load_split(wrong, "val", verify=False)
    assert data.videos.shape == (10, 3, FRAMES, H, W)
    assert (wrong_cache / "val-videos.npy").is_file()
