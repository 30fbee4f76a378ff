"""The leakage check: near-duplicate footage on both sides of a store's train / validation split.

A split made file by file cannot know that two files show the same recording (clips cut from one
source video, a re-encoded or cropped copy, the same person in the same room); a score on such a
split measures memory as well as condensation. This check compares every training video with
every validation video by a cheap signature of their stored frames and reports the pairs that
look alike.

**Signature.** Per video, ``SIGNATURE_FRAMES`` (16) frames evenly spaced over its length, each
reduced to a 63-bit DCT perceptual hash: luma (BT.601), a centred crop keeping ``scale`` of each
side, area-averaged to 32x32, a 2-D DCT-II, the 8x8 lowest frequencies without the DC term, one
bit per coefficient (above the median of the 63 or not). Low frequencies survive re-encoding and
the store's resize; each frame is hashed at the centred scales ``SCALES`` (1 down to 0.8) so that
a copy cropped by up to 10 % a side still meets its original at one of them.

**Distance of two videos**, in bits: for each frame of one, the Hamming distance to its best
match among the other's frames; the median of those over the frames; the smaller of the two
directions (a clip that is a time-shifted piece of a longer one matches from its side), and the
smallest over the scale pairs (one video at full scale, the other at any of ``SCALES``). The
median is the lower one (the 8th smallest of 16): at least half the frames must match.

**Candidates.** Only pairs whose 8x8 average hashes (64 bits, full frame) lie within
``PREFILTER_BITS`` (16) by the same distance rule are compared by the DCT hashes; the average
hash barely moves under crops and re-encoding (copies below: 0-5 bits) and rules out most pairs
of unrelated footage (comparing 2,100 x 900 videos of unrelated footage takes about 4 s of
CPU; were every pair a candidate, about 40 s).

**Threshold** ``THRESHOLD_BITS`` = 8 of 63. Measured on real footage: copies re-encoded,
centre-cropped 5-10 % a side and shifted by 10 frames lie at 2-5 bits (gt-actions and KTH
recordings); other trials of the same person in the same room and camera (gt-actions) at 0-10,
so a split of gt-actions by file puts every validation video within 8 bits of a training one;
different people or recordings, even on one background (gt-actions split by person, KTH cut into
clips and split by recording), at 10 bits or more. At 8 the copies are found with a margin and
different recordings are not. The check finds footage, not identity: the same person in another
recording of another scene is not flagged; ``--group`` is the tool for that.

The result is kept beside the store (``leakage.json``, keyed by the store hash) for ``vdcbench
data info``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vdcbench.core.atomic_file import write_json_atomic
from vdcbench.core.errors import VdcError
from vdcbench.core.json_values import load_json_strict
from vdcbench.data.store import LEAKAGE_FILE, Store

SIGNATURE_FRAMES = 16
SCALES = (1.0, 0.95, 0.9, 0.85, 0.8)
_THUMB = 32          # side of the area-averaged thumbnail the DCT runs on
_LOW = 8             # the LOW x LOW lowest frequencies make the hash
HASH_BITS = _LOW * _LOW - 1
THRESHOLD_BITS = 8
# The candidate filter: an 8x8 average hash (64 bits), which crops and re-encoding barely move;
# only pairs within PREFILTER_BITS of it are compared by the DCT hashes.
_AVERAGE = 8
PREFILTER_BITS = 16
_MEDIAN = (SIGNATURE_FRAMES - 1) // 2    # the lower median: the 8th smallest of 16
MAX_PAIRS_KEPT = 1000   # pairs written to leakage.json (all are counted)
FORMAT = "vdcbench-leakage-check"
VERSION = 1
# Frames hashed per batch (bounds the float copy of the frames) and comparison block size
# (frame pairs held at once: 8 bytes each while XORed).
_FRAMES_PER_BATCH = 512
_BLOCK_PAIRS = 8 * 1024 * 1024
_FAR = 255           # the distance of a pair the candidate filter rules out

Progress = Callable[[int, int, str], None]   # (done, total, what)

SIGNATURE = (f"{SIGNATURE_FRAMES} evenly spaced frames a video, 63-bit DCT hash (luma, "
             f"{_THUMB}x{_THUMB} area average, {_LOW}x{_LOW} low frequencies without DC, above "
             f"their median) at centre scales {', '.join(f'{s:g}' for s in SCALES)}; distance = "
             "lower median over frames of the best-match Hamming distance, the smaller direction "
             f"and scale pair; candidates within {PREFILTER_BITS} of 64 bits of an 8x8 average "
             "hash")


@dataclass(frozen=True)
class Signatures:
    """The signatures of some videos: bits packed into uint64, one per frame."""

    dct: np.ndarray        # (n, len(SCALES), SIGNATURE_FRAMES) uint64, 63 bits used
    average: np.ndarray    # (n, SIGNATURE_FRAMES) uint64

    def __len__(self) -> int:
        return len(self.average)

    def take(self, rows) -> "Signatures":
        return Signatures(dct=self.dct[rows], average=self.average[rows])


@dataclass(frozen=True)
class LeakPair:
    """A training and a validation video that look like the same footage, and their distance."""

    train: str
    val: str
    distance: int        # bits of HASH_BITS


@dataclass(frozen=True)
class LeakageReport:
    """What the check found in one store: counts, the closest pairs, and how it looked."""

    store_sha256: str
    train: int
    val: int
    pair_count: int                 # every pair at or under the threshold
    val_flagged: int                # validation videos with at least one such training video
    pairs: tuple[LeakPair, ...]     # the closest ones, at most MAX_PAIRS_KEPT
    threshold: int
    seconds: float
    signature: str = SIGNATURE

    @property
    def clean(self) -> bool:
        return self.pair_count == 0

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "store_sha256": self.store_sha256,
                "train": self.train, "val": self.val, "pair_count": self.pair_count,
                "val_flagged": self.val_flagged, "threshold_bits": self.threshold,
                "hash_bits": HASH_BITS, "seconds": round(self.seconds, 3),
                "signature": self.signature,
                "pairs": [[p.train, p.val, p.distance] for p in self.pairs]}

    @classmethod
    def from_json(cls, data: dict) -> "LeakageReport":
        """Raises ValueError, KeyError or TypeError on a file this vdcbench does not read."""
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError(f"not a {FORMAT} v{VERSION} file")
        return cls(store_sha256=str(data["store_sha256"]), train=int(data["train"]),
                   val=int(data["val"]), pair_count=int(data["pair_count"]),
                   val_flagged=int(data["val_flagged"]),
                   pairs=tuple(LeakPair(str(t), str(v), int(d)) for t, v, d in data["pairs"]),
                   threshold=int(data["threshold_bits"]), seconds=float(data["seconds"]),
                   signature=str(data["signature"]))


def _dct_matrix(n: int) -> torch.Tensor:
    """The orthonormal DCT-II matrix: ``D @ x @ D.T`` is the 2-D DCT of an n x n block."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return torch.tensor(m, dtype=torch.float32)


_DCT = _dct_matrix(_THUMB)
_LUMA = torch.tensor([0.299, 0.587, 0.114])   # BT.601


def _pack(bits: np.ndarray) -> np.ndarray:
    """bool (..., k <= 64) -> uint64 (...): the bits of each hash in one word."""
    packed = np.packbits(bits, axis=-1, bitorder="little")
    pad = np.zeros((*packed.shape[:-1], 8 - packed.shape[-1]), dtype=np.uint8)
    return np.ascontiguousarray(np.concatenate([packed, pad], axis=-1)).view(np.uint64)[..., 0]


def frame_hashes(frames: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, H, W, 3) frames -> (DCT hashes (len(SCALES), n), average hashes (n,)), uint64."""
    luma = torch.as_tensor(frames).to(torch.float32) @ _LUMA
    h, w = luma.shape[-2:]
    dct = []
    for scale in SCALES:
        ch, cw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        top, left = (h - ch) // 2, (w - cw) // 2
        thumb = F.adaptive_avg_pool2d(luma[:, None, top:top + ch, left:left + cw], _THUMB)[:, 0]
        coeffs = (_DCT @ thumb @ _DCT.T)[:, :_LOW, :_LOW].reshape(len(thumb), -1)[:, 1:]
        dct.append(_pack((coeffs > coeffs.median(dim=1, keepdim=True).values).numpy()))
    small = F.adaptive_avg_pool2d(luma[:, None], _AVERAGE)[:, 0].reshape(len(luma), -1)
    average = _pack((small > small.mean(dim=1, keepdim=True)).numpy())
    return np.stack(dct), average


def signature_frames(length: int) -> np.ndarray:
    """The frame numbers a video of ``length`` frames is hashed at (repeated when it is short)."""
    return np.floor(np.linspace(0, length - 1, SIGNATURE_FRAMES)).astype(np.int64)


def video_signatures(store: Store, rows: np.ndarray, progress: Progress | None = None,
                     done_before: int = 0, total: int | None = None) -> Signatures:
    """The signatures of the videos at index ``rows`` of ``store``."""
    rows = np.asarray(rows, dtype=np.int64)
    total = len(rows) if total is None else total
    dct = np.zeros((len(rows), len(SCALES), SIGNATURE_FRAMES), dtype=np.uint64)
    average = np.zeros((len(rows), SIGNATURE_FRAMES), dtype=np.uint64)
    per_batch = max(1, _FRAMES_PER_BATCH // SIGNATURE_FRAMES)
    for first in range(0, len(rows), per_batch):
        batch = rows[first:first + per_batch]
        index = np.concatenate([int(store.index.offsets[r]) +
                                signature_frames(int(store.index.lengths[r])) for r in batch])
        frame_dct, frame_average = frame_hashes(store.frames.read(index))
        part = slice(first, first + len(batch))
        dct[part] = frame_dct.reshape(len(SCALES), len(batch), SIGNATURE_FRAMES).transpose(1, 0, 2)
        average[part] = frame_average.reshape(len(batch), SIGNATURE_FRAMES)
        if progress is not None:
            progress(done_before + first + len(batch), total, "signatures")
    return Signatures(dct=dct, average=average)


def _directed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """uint8 (na, nb) distances of uint64 frame hashes a (na, F) and b (nb, F): per pair the
    smaller direction of the lower median over frames of the best-match Hamming distance."""
    d = np.bitwise_count(a[:, :, None, None] ^ b[None, None, :, :])      # (na, F, nb, F)
    a_to_b = np.sort(d.min(axis=3).transpose(0, 2, 1), axis=-1)[..., _MEDIAN]
    b_to_a = np.sort(d.min(axis=1), axis=-1)[..., _MEDIAN]
    return np.minimum(a_to_b, b_to_a)


def signature_distances(train: Signatures, val: Signatures,
                        progress: Progress | None = None) -> np.ndarray:
    """(n_train, n_val) uint8 distances in bits of HASH_BITS; pairs the average hash rules out
    are 255."""
    n_train, n_val = len(train), len(val)
    result = np.full((n_train, n_val), _FAR, dtype=np.uint8)
    if n_train == 0 or n_val == 0:
        return result
    chunk = max(1, _BLOCK_PAIRS // (n_train * SIGNATURE_FRAMES * SIGNATURE_FRAMES))
    for first in range(0, n_val, chunk):
        cols = slice(first, min(n_val, first + chunk))
        candidates = _directed(train.average, val.average[cols]) <= PREFILTER_BITS
        rows = np.nonzero(candidates.any(axis=1))[0]
        if len(rows):
            a, b = train.dct[rows], val.dct[cols]
            best = _directed(a[:, 0], b[:, 0])
            for s in range(1, len(SCALES)):
                best = np.minimum(best, _directed(a[:, s], b[:, 0]))
                best = np.minimum(best, _directed(a[:, 0], b[:, s]))
            result[rows, cols] = np.where(candidates[rows], best, _FAR)
        if progress is not None:
            progress(cols.stop, n_val, "comparing")
    return result


def check_leakage(store: Store, *, threshold: int = THRESHOLD_BITS,
                  progress: Progress | None = None, save: bool = True) -> LeakageReport:
    """Compare every training video of ``store`` with every validation video; keep the result
    beside the store (``leakage.json``) unless ``save`` is False or the store is read-only."""
    started = time.perf_counter()
    index = store.index
    train_rows, val_rows = index.rows("train"), index.rows("val")
    n = len(train_rows) + len(val_rows)
    train = video_signatures(store, train_rows, progress, 0, n)
    val = video_signatures(store, val_rows, progress, len(train_rows), n)
    distances = signature_distances(train, val, progress)
    ti, vi = np.nonzero(distances <= threshold)
    order = np.lexsort((vi, ti, distances[ti, vi]))
    pairs = tuple(LeakPair(index.keys[train_rows[ti[k]]], index.keys[val_rows[vi[k]]],
                           int(distances[ti[k], vi[k]])) for k in order[:MAX_PAIRS_KEPT])
    report = LeakageReport(store_sha256=store.sha256, train=len(train_rows), val=len(val_rows),
                           pair_count=int(len(ti)), val_flagged=int(len(np.unique(vi))),
                           pairs=pairs, threshold=int(threshold),
                           seconds=time.perf_counter() - started)
    if save:
        try:
            write_json_atomic(store.path / LEAKAGE_FILE, report.to_json())
        except (OSError, VdcError):   # a read-only store is checked, just not annotated
            pass
    return report


def stored_leakage(store: Store) -> LeakageReport | None:
    """The check kept beside ``store``, or None when there is none or it is of other content."""
    path = store.path / LEAKAGE_FILE
    try:
        text = path.read_bytes()
    except OSError:
        return None
    try:
        report = LeakageReport.from_json(load_json_strict(text, str(path)))
    except (VdcError, ValueError, KeyError, TypeError, AttributeError):
        return None        # an unreadable result is checked again, never trusted
    return report if report.store_sha256 == store.sha256 else None


def split_hint(layout: str | None) -> str:
    """How a store of ``layout`` keeps a source video on one side of its split."""
    if layout == "folder":
        return ("keep each source on one side: prepare with --group REGEX (the part of the file "
                "names that names the source video or person) or --split-file FILE")
    if layout == "rawframes":
        return "keep each source on one side: move its videos to one list (train or val)"
    return (f"the split is the official {layout} one (scores on it compare with published "
            "ones); these pairs are in it")
