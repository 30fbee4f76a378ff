"""The embedded ``synthetic`` data set: ten classes of whole-scene motion in five time-reversed pairs.

Why it looks like this:

* Classes are defined by motion, so one frame cannot tell a class from its pair: every odd class
  is literally the time reversal of a video generated for its even partner, and each trend is
  centred at a random time so the centred validation window does not leak direction.
* Every motion is symmetric about the vertical axis (vertical pan, isotropic zoom, fade,
  widen/narrow about the centre, an iris centred in the frame), so a horizontal flip, which the
  protocol trainer applies, never changes the class. ``tests/test_synthetic.py`` checks this.
* Appearance varies within a class (texture kind, palette, objects, sizes, speeds, moving
  distractors, pixel noise), so one clip cannot stand for its class.
* Each trend lasts a random part of the video and the scene holds still outside it, so some
  clips show no motion: without that the full-data teacher saturated (98 %), leaving no room to
  separate methods.
* A feasibility run found motions of small objects too slow for MiniC3D to learn from 800 videos,
  and zoom confused with a vertical stretch; "widen" therefore stretches one axis while
  squashing the other (the opposite of zoom in the vertical direction), and the fifth pair is an
  iris rather than a second stretch.

Reproducibility: NumPy's PCG64, seeded per video by (seed, split, class, index), and integer
(fixed-point) arithmetic only, so every machine produces the same bytes; the protocol pins the
sha256 of both splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vdcbench.core.atomic_file import write_atomic
from vdcbench.core.errors import VdcError
from vdcbench.core.locks import exclusive
from vdcbench.core.paths import synthetic_dir
from vdcbench.protocol import GeneratorSpec

GENERATOR_VERSION = 1
CLASS_NAMES = (
    "pan-up", "pan-down",
    "zoom-in", "zoom-out",
    "fade-in", "fade-out",
    "widen", "narrow",
    "iris-open", "iris-close",
)
SPLITS = ("train", "val")

_F = 1024          # fixed-point unit
_CANVAS = 256      # scene side, in canvas pixels
_PAIR_PAN, _PAIR_ZOOM, _PAIR_FADE, _PAIR_WIDEN, _PAIR_IRIS = range(5)


@dataclass(frozen=True)
class SyntheticSplit:
    """One generated split: uint8 videos (N, 3, T, H, W) in class-major order, int64 labels."""

    videos: np.ndarray
    labels: np.ndarray

    @property
    def sha256(self) -> str:
        return split_sha256(self.videos, self.labels)


def split_sha256(videos: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(videos, dtype=np.uint8).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype="<i8").tobytes())
    return digest.hexdigest()


def _uniform(rng: np.random.Generator, low: float, high: float) -> int:
    """A fixed-point value uniform in [low, high]."""
    return int(rng.integers(round(low * _F), round(high * _F) + 1))


def _draw_scene(rng: np.random.Generator) -> np.ndarray:
    """A textured canvas (3, C, C) int32 with a palette, a background pattern and objects."""
    size = _CANVAS
    palette = rng.integers(0, 256, size=(int(rng.integers(3, 7)), 3))
    kind = int(rng.integers(0, 3))
    if kind == 0:  # blocks of random palette colours
        cell = int(rng.choice([8, 16, 32]))
        grid = rng.integers(0, len(palette), size=(size // cell, size // cell))
        index = np.repeat(np.repeat(grid, cell, axis=0), cell, axis=1)
    elif kind == 1:  # stripes along one axis, random widths
        widths = rng.integers(4, 25, size=size)
        bands = np.repeat(rng.integers(0, len(palette), size=size), widths)[:size]
        index = np.broadcast_to(bands[:, None] if rng.integers(0, 2) else bands[None, :],
                                (size, size))
    else:  # checkerboard of two colours
        cell = int(rng.choice([8, 12, 16, 24]))
        yy, xx = np.indices((size, size))
        index = ((yy // cell + xx // cell) % 2) * int(rng.integers(1, len(palette)))
    canvas = palette[index].transpose(2, 0, 1).astype(np.int32)

    yy, xx = np.indices((size, size))
    # Objects gather near the centre, where every motion's view lies, so most clips show some.
    for _ in range(int(rng.integers(6, 15))):
        colour = rng.integers(0, 256, size=3)
        cy, cx = rng.integers(size // 5, size - size // 5, size=2)
        hy, hx = rng.integers(6, 33, size=2)
        if rng.integers(0, 2):
            mask = (np.abs(yy - cy) <= hy) & (np.abs(xx - cx) <= hx)
        else:
            mask = ((yy - cy) ** 2) * hx * hx + ((xx - cx) ** 2) * hy * hy <= (hx * hy) ** 2
        canvas[:, mask] = colour[:, None]
    grain = int(rng.integers(8, 25))
    canvas += rng.integers(-grain, grain + 1, size=(1, size, size))
    return canvas


def _axis_map(centre_fp: int, scale_fp: int, length: int, mirror: bool) -> np.ndarray:
    """Canvas index of each output pixel along one axis (nearest neighbour, fixed point).

    Output pixel i sits (2i - length + 1) / 2 output pixels from the centre. With ``mirror`` the
    first half is the exact reflection of the second, so the map commutes with a flip about the
    canvas centre (used for x, which is what keeps the classes flip-invariant). That needs an even
    ``length``: with an odd one the middle pixel has no partner; the protocol's width is 64.
    """
    offsets = 2 * np.arange(length, dtype=np.int64) - (length - 1)
    index = (centre_fp + offsets * scale_fp // 2) // _F
    if mirror:
        half = length // 2
        index[:half] = (_CANVAS - 1) - index[length - 1:length - 1 - half:-1]
    return np.clip(index, 0, _CANVAS - 1)


def _render(canvas: np.ndarray, pair: int, params: dict[str, int], frames: int, height: int,
            width: int) -> np.ndarray:
    """The forward (even-class) video of one pair: (3, T, H, W) int32, before distractors/noise."""
    out = np.empty((3, frames, height, width), dtype=np.int32)
    centre = _CANVAS * _F // 2
    yy, xx = np.indices((height, width))
    radius2 = (2 * yy - (height - 1)) ** 2 + (2 * xx - (width - 1)) ** 2
    for t in range(frames):
        # The trend runs for 2 * half frames around tc; outside it the scene holds still.
        u = min(max(t - params["tc"], -params["half"]), params["half"])
        sy = sx = params["scale"]
        cy = centre
        if pair == _PAIR_PAN:
            cy = centre - params["speed"] * u
        elif pair == _PAIR_ZOOM:
            sy = sx = params["scale"] - params["speed"] * u
        elif pair == _PAIR_WIDEN:
            sx = params["scale"] - params["speed"] * u
            sy = params["scale"] + params["speed"] * u
        ymap = _axis_map(cy, sy, height, mirror=False)
        xmap = _axis_map(centre, sx, width, mirror=True)
        frame = canvas[:, ymap[:, None], xmap[None, :]]
        if pair == _PAIR_FADE:
            alpha = min(_F, max(0, params["level"] + params["speed"] * u))
            frame = frame * alpha // _F
        elif pair == _PAIR_IRIS:
            r = max(0, params["level"] + params["speed"] * u)
            frame = frame * (4 * r * r >= radius2 * _F * _F)
        out[:, t] = frame
    return out


def _draw_params(rng: np.random.Generator, pair: int, frames: int) -> dict[str, int]:
    # The trend is centred at a random frame and lasts a random time, so that no fixed window
    # sees the same phase and some windows see little or no motion (about 3.5 % of centred
    # validation windows are static, 15 % see at most 3 moving frames), which keeps the
    # full-data teacher from saturating (v1's target is 70-95 %).
    timing = {"tc": int(rng.integers(frames * 3 // 16, frames - frames * 3 // 16)),
              "half": int(rng.integers(5, frames * 7 // 16 + 1))}
    if pair == _PAIR_PAN:
        return {**timing, "scale": _uniform(rng, 1.0, 1.3), "speed": _uniform(rng, 1.0, 2.2)}
    if pair == _PAIR_ZOOM:
        return {**timing, "scale": _uniform(rng, 1.4, 1.6), "speed": _uniform(rng, 0.025, 0.035)}
    if pair == _PAIR_WIDEN:
        return {**timing, "scale": _uniform(rng, 1.3, 1.5), "speed": _uniform(rng, 0.022, 0.030)}
    if pair == _PAIR_FADE:
        return {**timing, "scale": _uniform(rng, 1.0, 1.3), "level": _uniform(rng, 0.5, 0.6),
                "speed": _uniform(rng, 0.018, 0.024)}
    return {**timing, "scale": _uniform(rng, 1.0, 1.3), "level": _uniform(rng, 22, 28),
            "speed": _uniform(rng, 0.9, 1.2)}


def _add_distractors(video: np.ndarray, rng: np.random.Generator) -> None:
    """Small squares moving in random directions, drawn over the scene (not part of any class)."""
    _, frames, height, width = video.shape
    for _ in range(int(rng.integers(0, 4))):
        side = int(rng.integers(3, 8))
        colour = rng.integers(0, 256, size=3)
        y0, x0 = _uniform(rng, 0, height - side), _uniform(rng, 0, width - side)
        vy, vx = _uniform(rng, -1.5, 1.5), _uniform(rng, -1.5, 1.5)
        for t in range(frames):
            y = min(max((y0 + vy * t) // _F, 0), height - side)
            x = min(max((x0 + vx * t) // _F, 0), width - side)
            video[:, t, y:y + side, x:x + side] = colour[:, None, None]


def generate_video(seed: int, split: str, label: int, index: int, frames: int, height: int,
                   width: int, *, distractors: bool = True, noise: bool = True) -> np.ndarray:
    """One video (3, T, H, W) uint8 of class ``label``; odd classes are reversed even ones."""
    rng = np.random.default_rng([seed, SPLITS.index(split), label, index])
    pair = label // 2
    canvas = _draw_scene(rng)
    params = _draw_params(rng, pair, frames)
    video = _render(canvas, pair, params, frames, height, width)
    if distractors:
        _add_distractors(video, rng)
    if noise:
        amplitude = int(rng.integers(0, 13))
        video += rng.integers(-amplitude, amplitude + 1, size=(1, frames, height, width))
    if label % 2 == 1:
        video = video[:, ::-1]
    return np.clip(video, 0, 255).astype(np.uint8)


# Called with (videos generated, videos in the split) after each video.
GenerationProgress = Callable[[int, int], None]


def generate_split(spec: GeneratorSpec, split: str,
                   progress: GenerationProgress | None = None) -> SyntheticSplit:
    if split not in SPLITS:
        raise VdcError(f"unknown split {split!r} of the synthetic data set (known: train, val)")
    if spec.version != GENERATOR_VERSION:
        raise VdcError(f"the protocol asks for synthetic generator v{spec.version}; this "
                       f"vdcbench has v{GENERATOR_VERSION}")
    per_class = spec.train_per_class if split == "train" else spec.val_per_class
    videos = np.empty((len(CLASS_NAMES) * per_class, 3, spec.frames, spec.height, spec.width),
                      dtype=np.uint8)
    labels = np.repeat(np.arange(len(CLASS_NAMES), dtype=np.int64), per_class)
    for n, label in enumerate(labels):
        videos[n] = generate_video(spec.seed, split, int(label), n % per_class, spec.frames,
                                   spec.height, spec.width)
        if progress is not None:
            progress(n + 1, len(labels))
    return SyntheticSplit(videos=videos, labels=labels)


def split_cache_folder(spec: GeneratorSpec) -> Path:
    """Where the generated splits of ``spec`` are cached: named by everything that shapes them."""
    return synthetic_dir() / (
        f"g{spec.version}-seed{spec.seed}-{spec.frames}x{spec.height}x{spec.width}"
        f"-{spec.train_per_class}-{spec.val_per_class}")


def _split_paths(spec: GeneratorSpec, split: str) -> tuple[Path, Path]:
    folder = split_cache_folder(spec)
    return folder / f"{split}-videos.npy", folder / f"{split}-labels.npy"


def is_generated(spec: GeneratorSpec, split: str) -> bool:
    """Whether the split's files are in the cache (so ``load_split`` will not generate it)."""
    return all(path.is_file() for path in _split_paths(spec, split))


def load_split(spec: GeneratorSpec, split: str, *, verify: bool = True,
               progress: GenerationProgress | None = None) -> SyntheticSplit:
    """The split from the cache, generated (and cached) on first use; checked against the pin.
    ``progress`` hears of each video when the split is generated here."""
    if split not in SPLITS:
        raise VdcError(f"unknown split {split!r} of the synthetic data set (known: train, val)")
    folder = split_cache_folder(spec)
    videos_path, labels_path = _split_paths(spec, split)
    expected = spec.train_sha256 if split == "train" else spec.val_sha256
    data = _cached(videos_path, labels_path, expected, verify)
    if data is not None:
        return data
    # Two runs starting on an empty cache generate once: the second waits, then reads the cache.
    with exclusive(folder, f"{split}-generate", what=f"generating the synthetic {split} split"):
        return _generate_and_cache(spec, split, videos_path, labels_path, expected, verify,
                                   progress)


def _cached(videos_path: Path, labels_path: Path, expected: str, verify: bool
            ) -> SyntheticSplit | None:
    if not (videos_path.is_file() and labels_path.is_file()):
        return None
    data = SyntheticSplit(np.load(videos_path, allow_pickle=False),
                          np.load(labels_path, allow_pickle=False))
    return data if not verify or data.sha256 == expected else None


def _generate_and_cache(spec: GeneratorSpec, split: str, videos_path: Path, labels_path: Path,
                        expected: str, verify: bool,
                        progress: GenerationProgress | None) -> SyntheticSplit:
    data = _cached(videos_path, labels_path, expected, verify)
    if data is not None:
        return data
    data = generate_split(spec, split, progress)
    if verify and data.sha256 != expected:
        raise VdcError(f"the synthetic {split} split generated here has sha256 {data.sha256[:16]}…, "
                       f"not the protocol's {expected[:16]}…; this machine does not reproduce it")
    for path, array in ((labels_path, data.labels), (videos_path, data.videos)):
        write_atomic(path, lambda fh, array=array: np.save(fh, array, allow_pickle=False))
    return data
