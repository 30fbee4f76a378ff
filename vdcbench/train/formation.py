"""Temporal formations: how a condensed instance of T frames becomes the clips the net eats.

The evaluation nets take clips of ``clip_frames`` (protocol v1: 8) frames. A condensed instance
may hold more or fewer (the temporal tracks ``ipcK-tT``); a formation, one of protocol v1's
``temporal_formations``, says how its frames are used (the study's section 3.1 and Table 5):

- ``none``: T equals the clip length; the instance is the clip.
- ``segment``: T is a multiple of the clip length; the instance is cut into T / 8 separate clips
  (frames 0-7, 8-15, ...), every one a training clip of its own (Wang et al.'s formation).
- ``slide-window``: T is longer than a clip; each draw takes 8 consecutive frames from a start
  uniform in 0 .. T - 8 (the reference's ``sample`` mode), and wherever a deterministic choice is
  needed (feature extraction, scoring a candidate) the centred window, start ``(T - 8) // 2``.
- ``interpolate-duplicate`` / ``interpolate-linear``: fewer frames than a clip are brought to 8:
  output frame i repeats input frame ``floor(i * w / 8)`` (the reference's ``duplicate``: 4 -> 8
  as f0 f0 f1 f1 ...), or blends its two neighbours as ``F.interpolate(mode="trilinear",
  align_corners=False)`` does along time (the reference's ``linear``). With a ``window`` w
  (``interpolate-linear-w4``) the formation first slides a w-frame window over a longer instance,
  as ``slide-window`` does, and interpolates that: the reference's ``sample_linear`` /
  ``sample_dup`` (16 stored frames -> a random 4-frame window -> 8 frames).

Every formation is a fixed linear map from the instance's frames to each clip's frames: a
:class:`FramePlan` holds, per output frame, two source frames and the weight of the second. A
selection (none, segment, slide-window, duplicate) has weight 0 everywhere and is applied as an
exact gather that keeps the dtype (uint8 stays uint8, so an 8-frame window cut here is bit for
bit the clip an 8-frame archive would store); ``interpolate-linear`` blends in float, pixel scale
[0, 1]. :func:`form_clips` applies a formation to a batch of instances, differentiably, which is
the hook the distillation methods call on their long synthetic videos every iteration (the
study's co-optimised slide-window).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vdcbench.core.errors import VdcError

NONE = "none"
SEGMENT = "segment"
SLIDE_WINDOW = "slide-window"
INTERPOLATE_DUPLICATE = "interpolate-duplicate"
INTERPOLATE_LINEAR = "interpolate-linear"
FORMATIONS = (NONE, SEGMENT, SLIDE_WINDOW, INTERPOLATE_DUPLICATE, INTERPOLATE_LINEAR)
INTERPOLATIONS = (INTERPOLATE_DUPLICATE, INTERPOLATE_LINEAR)
CLIP_FRAMES = 8     # protocol v1's sampling.frames; callers with a protocol pass theirs

_WINDOW_SUFFIX = re.compile(r"^(?P<name>.+)-w(?P<window>[0-9]+)$")


@dataclass(frozen=True)
class FramePlan:
    """Per clip s and output frame i: ``(1 - weight) * x[lo] + weight * x[hi]``, (S, F) each."""

    lo: np.ndarray       # int64
    hi: np.ndarray       # int64
    weight: np.ndarray   # float64; all 0 for a pure selection

    @property
    def clips(self) -> int:
        return int(self.lo.shape[0])


@dataclass(frozen=True)
class Formation:
    """A formation by name (protocol v1's list) and, for interpolation, its sliding window.

    ``window``: frames an interpolating formation takes per draw before bringing them to
    ``clip_frames``; None takes the whole instance (which must then be shorter than a clip).
    """

    name: str
    window: int | None = None
    clip_frames: int = CLIP_FRAMES

    def __post_init__(self) -> None:
        if self.name not in FORMATIONS:
            raise VdcError(f"unknown temporal formation {self.name!r} (known: "
                           f"{', '.join(FORMATIONS)}; interpolations take a sliding window as "
                           f"interpolate-linear-w4)")
        if self.clip_frames < 1:
            raise VdcError(f"a formation's clip length must be at least 1, not {self.clip_frames}")
        if self.window is not None:
            if self.name not in INTERPOLATIONS:
                raise VdcError(f"formation {self.name} takes no window (only "
                               f"{' and '.join(INTERPOLATIONS)} do)")
            if not 1 <= self.window < self.clip_frames:
                raise VdcError(f"formation {self.name}: a window of {self.window} frames is not "
                               f"between 1 and {self.clip_frames - 1} (interpolation brings "
                               f"fewer frames than a clip to {self.clip_frames})")

    @classmethod
    def parse(cls, text: str, clip_frames: int = CLIP_FRAMES) -> "Formation":
        """``none``, ``segment``, ``slide-window``, ``interpolate-linear``, or an interpolation
        with its window, ``interpolate-linear-w4``: the inverse of :attr:`id`."""
        text = str(text).strip()
        match = _WINDOW_SUFFIX.match(text)
        if match and match["name"] in INTERPOLATIONS:
            return cls(match["name"], int(match["window"]), clip_frames)
        return cls(text, None, clip_frames)

    @property
    def id(self) -> str:
        """The formation as records, paths and method configs spell it."""
        return self.name if self.window is None else f"{self.name}-w{self.window}"

    def __str__(self) -> str:
        return self.id

    def check(self, frames: int, where: str = "") -> None:
        """Refuse (one line) a formation that cannot form instances of ``frames`` frames."""
        clip, place = self.clip_frames, f" ({where})" if where else ""
        problem = None
        if frames < 1:
            problem = f"instances of {frames} frames"
        elif self.name == NONE and frames != clip:
            problem = f"none needs instances of exactly {clip} frames, not {frames}"
        elif self.name == SEGMENT and (frames <= clip or frames % clip):
            problem = (f"segment needs a multiple of {clip} frames above {clip} (16, 24, ...), "
                       f"not {frames}")
        elif self.name == SLIDE_WINDOW and frames <= clip:
            problem = f"slide-window needs more than {clip} frames, not {frames}"
        elif self.name in INTERPOLATIONS and self.window is None and frames >= clip:
            problem = (f"{self.name} brings fewer than {clip} frames to {clip}; instances of "
                       f"{frames} frames need a window ({self.name}-w4) or another formation")
        elif self.name in INTERPOLATIONS and self.window is not None and frames < self.window:
            problem = f"{self.id} slides a {self.window}-frame window over {frames} frames"
        if problem is not None:
            raise VdcError(f"temporal formation {self.id}{place}: {problem}")

    def clips_per_instance(self, frames: int) -> int:
        """Clips one instance of ``frames`` frames yields per draw (T / 8 for segment, else 1)."""
        self.check(frames)
        return frames // self.clip_frames if self.name == SEGMENT else 1

    @property
    def selects(self) -> bool:
        """Whether every clip frame is an instance frame (no blending): the dtype is kept."""
        return self.name != INTERPOLATE_LINEAR

    def span(self, frames: int) -> int:
        """Consecutive instance frames one draw reads before it is brought to the clip length."""
        if self.name in (NONE, SEGMENT):
            return frames if self.name == NONE else self.clip_frames
        if self.name == SLIDE_WINDOW:
            return self.clip_frames
        return frames if self.window is None else self.window

    def start(self, frames: int, rng: np.random.Generator | None = None) -> int:
        """First frame of the window a draw reads: uniform in 0 .. T - span with ``rng``, the
        centred ``(T - span) // 2`` without (the deterministic choice); 0 where nothing slides."""
        self.check(frames)
        slack = frames - self.span(frames)
        if self.name == SEGMENT or slack == 0:
            return 0
        if rng is None:
            return slack // 2
        return int(rng.integers(0, slack + 1))

    def plan(self, frames: int, rng: np.random.Generator | None = None) -> FramePlan:
        """Which instance frames make each clip frame, for one draw (``rng``) or the
        deterministic one (None)."""
        start = self.start(frames, rng)
        clip = self.clip_frames
        if self.name == SEGMENT:
            lo = np.arange(frames, dtype=np.int64).reshape(frames // clip, clip)
            return FramePlan(lo, lo.copy(), np.zeros(lo.shape))
        span = self.span(frames)
        if self.name in (NONE, SLIDE_WINDOW):
            lo = (start + np.arange(clip, dtype=np.int64))[None]
            return FramePlan(lo, lo.copy(), np.zeros(lo.shape))
        out = np.arange(clip, dtype=np.float64)
        if self.name == INTERPOLATE_DUPLICATE:
            # torch's "nearest": source floor(i * span / clip); 4 -> 8 repeats every frame twice.
            lo = np.minimum(np.floor(out * span / clip).astype(np.int64), span - 1)
            return FramePlan((start + lo)[None], (start + lo)[None], np.zeros((1, clip)))
        # torch's linear resampling with align_corners=False: source (i + 0.5) * span / clip - 0.5,
        # clamped at 0; the last frame's right neighbour is itself.
        source = np.maximum((out + 0.5) * span / clip - 0.5, 0.0)
        lo = np.minimum(np.floor(source).astype(np.int64), span - 1)
        hi = np.minimum(lo + 1, span - 1)
        weight = np.where(hi > lo, source - lo, 0.0)
        return FramePlan((start + lo)[None], (start + hi)[None], weight[None])


def default_formation(frames: int, clip_frames: int = CLIP_FRAMES) -> Formation:
    """A track's formation when neither the archive nor the caller names one: ``none`` at the
    clip length, ``slide-window`` above it (the study's proposal), ``interpolate-linear`` below
    (its Table 4a and 4b cells of 4 frames)."""
    if frames == clip_frames:
        return Formation(NONE, clip_frames=clip_frames)
    if frames > clip_frames:
        return Formation(SLIDE_WINDOW, clip_frames=clip_frames)
    return Formation(INTERPOLATE_LINEAR, clip_frames=clip_frames)


def track_formation(declared: Sequence[str], frames: int, text: str | None,
                    clip_frames: int = CLIP_FRAMES, where: str = "") -> Formation:
    """The formation ``text`` names (None or empty: the track's default), refused unless the
    protocol declares its name (``declared``: its ``temporal_formations``) and it can form
    instances of ``frames`` frames."""
    formation = (default_formation(frames, clip_frames) if not text
                 else Formation.parse(text, clip_frames))
    if formation.name not in declared:
        raise VdcError(f"temporal formation {formation.name!r} is not one the protocol declares "
                       f"({', '.join(declared)})")
    formation.check(frames, where)
    return formation


@dataclass(frozen=True)
class FormedClips:
    """Clips (B·S, C, F, H, W) formed from B instances, and the instance each came from (B·S,)."""

    clips: torch.Tensor
    owners: np.ndarray


Draws = np.random.Generator | Sequence[np.random.Generator] | None


def _plans(formation: Formation, frames: int, count: int, rng: Draws) -> list[FramePlan]:
    if rng is None or isinstance(rng, np.random.Generator):
        return [formation.plan(frames, rng) for _ in range(count)]
    if len(rng) != count:
        raise ValueError(f"{len(rng)} generators for {count} instances")
    return [formation.plan(frames, r) for r in rng]


def form_clips(videos: torch.Tensor, formation: Formation, rng: Draws = None) -> FormedClips:
    """Form the clips of a batch of instances (B, C, T, H, W) under ``formation``.

    ``rng``: None for the deterministic draw (centred windows), one generator drawn from for
    each instance in turn, or one generator per instance (the trainer's, keyed by seed, epoch and
    instance). Clips come out instance by instance (an instance's segments in order). Selections
    keep the dtype; ``interpolate-linear`` returns float32 in pixel scale (uint8 / 255).
    Differentiable in ``videos``: distillation calls it on its synthetic videos every iteration.
    """
    if videos.ndim != 5:
        raise ValueError(f"instances must be (B, C, T, H, W), not {tuple(videos.shape)}")
    b, frames = int(videos.shape[0]), int(videos.shape[2])
    formation.check(frames)
    plans = _plans(formation, frames, b, rng)
    per = formation.clips_per_instance(frames)
    owners = np.repeat(np.arange(b, dtype=np.int64), per)
    if formation.name == NONE:
        return FormedClips(videos, owners)
    lo = torch.from_numpy(np.stack([p.lo for p in plans])).to(videos.device)    # (B, S, F)
    rows = torch.arange(b, device=videos.device)[:, None, None]
    x = videos.transpose(1, 2)                                                   # (B, T, C, H, W)
    if formation.selects:
        picked = x[rows, lo]                                                     # (B, S, F, C, H, W)
    else:
        hi = torch.from_numpy(np.stack([p.hi for p in plans])).to(videos.device)
        weight = torch.from_numpy(np.stack([p.weight for p in plans])).to(videos.device,
                                                                          torch.float32)
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        w = weight[..., None, None, None]
        picked = (1.0 - w) * x[rows, lo] + w * x[rows, hi]
    c, h, w_ = picked.shape[-3:]
    clips = picked.permute(0, 1, 3, 2, 4, 5).reshape(b * per, c, formation.clip_frames, h, w_)
    return FormedClips(clips, owners)


def mean_by_owner(values: torch.Tensor, owners: np.ndarray) -> torch.Tensor:
    """Per instance, the mean of its clips' rows of ``values`` (B·S, ...) -> (B, ...), instances
    in order 0 .. max(owners): one feature, logit or loss per instance under ``segment``."""
    owners_t = torch.from_numpy(np.asarray(owners, dtype=np.int64)).to(values.device)
    count = int(owners_t.max()) + 1 if owners_t.numel() else 0
    sums = torch.zeros((count, *values.shape[1:]), dtype=values.dtype, device=values.device)
    sums.index_add_(0, owners_t, values)
    per = torch.bincount(owners_t, minlength=count).to(values.dtype)
    return sums / per.reshape(-1, *([1] * (values.ndim - 1)))


def clip_ids(indices: np.ndarray, per_instance: int) -> np.ndarray:
    """Keys of the clips instances ``indices`` yield (for their crop draws): the instance index
    itself when it yields one clip, ``index * S + s`` for its S segments."""
    indices = np.asarray(indices, dtype=np.int64)
    if per_instance == 1:
        return indices
    return (indices[:, None] * per_instance + np.arange(per_instance)).reshape(-1)
