"""A condensed set measured against its track: the budget (enforced, in frames) and the storage
ledger (reported, in bytes).

The writer and the reader run the same ``check_budget``, so a method cannot write an archive that
the reader would refuse.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from vdcbench.archive.errors import ArchiveError, ArchiveErrorCode
from vdcbench.archive.condensed import CondensedSet
from vdcbench.data.datasets import resolve_dataset
from vdcbench.core.errors import UnknownNameError, VdcError
from vdcbench.protocol import LabelSource, Protocol, Track

VIDEO_DTYPES = (torch.uint8, torch.float16, torch.float32)
LABEL_DTYPE = torch.int64
SOFT_LABEL_DTYPE = torch.float32
# The protocol's label source whose labels are stored in the archive as (N, K) soft labels.
SOFT_LABEL_SOURCE = LabelSource.ARCHIVE_LOGITS
CHANNELS = 3
# Float frames are pixel scale [0, 1]. Synthesised frames may stray past it (nothing clamps an
# optimiser), but a frame beyond this band is a writer's mistake (0-255 stored as float, or a
# normalised mean/std scale), not a distilled image; it would be scored on the wrong scale.
FLOAT_PIXEL_TOLERANCE = (-1.0, 2.0)


def budget_track(protocol: Protocol, dataset: str, track_id: str,
                 num_classes: int | None = None, *, subject: str) -> Track:
    """The track whose budget applies. A data set whose class count comes from the user's
    collection (``num_classes = 0`` in the protocol) takes it from ``num_classes``; for every
    other data set ``num_classes``, when given, must agree with the protocol."""
    try:
        # A prepared collection (``gt-actions``) resolves to the protocol's ``folder`` data set
        # with the store's classes; the name is checked before it is looked up on disk.
        ds = resolve_dataset(protocol, dataset)
    except VdcError as err:
        raise ArchiveError(ArchiveErrorCode.UNKNOWN_DATASET, f"{subject}: {err}") from None
    if ds.num_classes == 0:
        if not num_classes or num_classes < 1:
            raise ArchiveError(ArchiveErrorCode.NUM_CLASSES_MISMATCH,
                               f"{subject}: data set {dataset!r} takes its class count from the "
                               "collection; a positive num_classes is required")
        ds = dataclasses.replace(ds, num_classes=num_classes)
    elif num_classes is not None and num_classes != ds.num_classes:
        raise ArchiveError(ArchiveErrorCode.NUM_CLASSES_MISMATCH,
                           f"{subject}: num_classes {num_classes} does not match the "
                           f"{ds.num_classes} classes of data set {dataset!r}")
    try:
        return protocol.track(ds, track_id)
    except UnknownNameError as err:
        raise ArchiveError(ArchiveErrorCode.UNKNOWN_TRACK, f"{subject}: {err}") from None


def _refuse(code: ArchiveErrorCode, subject: str, detail: str) -> ArchiveError:
    return ArchiveError(code, f"{subject}: {detail}")


def check_budget(cs: CondensedSet, track: Track, protocol: Protocol, *, subject: str) -> None:
    """Refuse (``ArchiveError``) a set that breaks the track's budget or the tensor contract.

    Ordered from cheap metadata to full tensor scans, so the common mistakes are reported before
    any pass over the frames.
    """
    if cs.dataset != track.dataset.name or cs.track != track.id:
        raise _refuse(ArchiveErrorCode.UNKNOWN_TRACK, subject,
                      f"set is for {cs.dataset}/{cs.track}, checked against "
                      f"{track.dataset.name}/{track.id}")
    _check_label_strategy(cs, protocol, subject)
    _check_dtypes(cs, subject)
    _check_shapes(cs, track, subject)
    _check_labels(cs, track, subject)
    if cs.videos.is_floating_point():
        _check_float_frames(cs.videos, subject)
    if cs.soft_labels is not None and not _all_finite(cs.soft_labels):
        raise _refuse(ArchiveErrorCode.NON_FINITE, subject, "soft labels contain NaN or Inf values")


def _check_label_strategy(cs: CondensedSet, protocol: Protocol, subject: str) -> None:
    """The strategy exists, and soft labels are present exactly when it stores them."""
    strategy = protocol.label_strategies.get(cs.label_strategy)
    if strategy is None:
        raise _refuse(ArchiveErrorCode.LABEL_STRATEGY, subject,
                      f"unknown label strategy {cs.label_strategy!r} (known: "
                      f"{', '.join(sorted(protocol.label_strategies))})")
    wants_soft = strategy.labels is SOFT_LABEL_SOURCE
    if wants_soft and cs.soft_labels is None:
        raise _refuse(ArchiveErrorCode.LABEL_STRATEGY, subject,
                      f"label strategy {cs.label_strategy!r} requires soft labels and there "
                      "are none")
    if not wants_soft and cs.soft_labels is not None:
        raise _refuse(ArchiveErrorCode.LABEL_STRATEGY, subject,
                      f"label strategy {cs.label_strategy!r} takes no soft labels, but soft labels "
                      "are present")


def _check_dtypes(cs: CondensedSet, subject: str) -> None:
    if cs.videos.dtype not in VIDEO_DTYPES:
        raise _refuse(ArchiveErrorCode.BAD_DTYPE, subject,
                      f"videos have dtype {cs.videos.dtype}; expected uint8, float16 or float32")
    if cs.labels.dtype != LABEL_DTYPE:
        raise _refuse(ArchiveErrorCode.BAD_DTYPE, subject,
                      f"labels have dtype {cs.labels.dtype}; expected int64")
    if cs.soft_labels is not None and cs.soft_labels.dtype != SOFT_LABEL_DTYPE:
        raise _refuse(ArchiveErrorCode.BAD_DTYPE, subject,
                      f"soft labels have dtype {cs.soft_labels.dtype}; expected float32")


def _check_shapes(cs: CondensedSet, track: Track, subject: str) -> None:
    """(N, 3, T, H, W) videos with T, H and W of the track; labels and soft labels to match."""
    videos, labels, soft = cs.videos, cs.labels, cs.soft_labels
    if videos.ndim != 5:
        raise _refuse(ArchiveErrorCode.BAD_SHAPE, subject,
                      f"videos have shape {tuple(videos.shape)}; expected (N, 3, T, H, W)")
    n, channels, frames, height, width = (int(d) for d in videos.shape)
    if n == 0:
        raise _refuse(ArchiveErrorCode.BAD_SHAPE, subject, "the set holds no videos")
    if channels != CHANNELS:
        raise _refuse(ArchiveErrorCode.BAD_SHAPE, subject,
                      f"videos have {channels} channels; expected {CHANNELS} (RGB)")
    if tuple(labels.shape) != (n,):
        raise _refuse(ArchiveErrorCode.BAD_SHAPE, subject,
                      f"labels have shape {tuple(labels.shape)}; expected ({n},), one per video")
    if soft is not None:
        if soft.ndim != 2 or int(soft.shape[0]) != n:
            raise _refuse(ArchiveErrorCode.BAD_SHAPE, subject,
                          f"soft labels have shape {tuple(soft.shape)}; expected ({n}, "
                          f"{track.num_classes})")
        if int(soft.shape[1]) != track.num_classes:
            raise _refuse(ArchiveErrorCode.SOFT_LABEL_CLASSES, subject,
                          f"soft labels have {int(soft.shape[1])} classes; data set "
                          f"{track.dataset.name!r} has {track.num_classes}")
    if frames != track.frames:
        raise _refuse(ArchiveErrorCode.BUDGET_FRAMES, subject,
                      f"videos have {frames} frames; track {track.id} requires exactly "
                      f"{track.frames}")
    if (height, width) != (track.height, track.width):
        raise _refuse(ArchiveErrorCode.BUDGET_RESOLUTION, subject,
                      f"videos are {height}x{width}; track {track.id} of {track.dataset.name!r} "
                      f"requires {track.height}x{track.width}")


def _check_labels(cs: CondensedSet, track: Track, subject: str) -> None:
    """Every label a class of the data set, and no class over the track's IPC."""
    flat_labels = cs.labels.detach().reshape(-1)
    low, high = int(flat_labels.min()), int(flat_labels.max())
    if low < 0 or high >= track.num_classes:
        bad = low if low < 0 else high
        raise _refuse(ArchiveErrorCode.LABEL_OUT_OF_RANGE, subject,
                      f"label {bad} is outside [0, {track.num_classes})")
    counts = torch.bincount(flat_labels.to("cpu"), minlength=track.num_classes)
    worst = int(counts.argmax())
    if int(counts[worst]) > track.ipc:
        raise _refuse(ArchiveErrorCode.BUDGET_IPC, subject,
                      f"class {worst} has {int(counts[worst])} instances; track {track.id} allows "
                      f"at most {track.ipc} per class")


def _check_float_frames(videos: torch.Tensor, subject: str) -> None:
    """Finite and within ``FLOAT_PIXEL_TOLERANCE``, one instance at a time."""
    low, high = FLOAT_PIXEL_TOLERANCE
    seen_low, seen_high = float("inf"), float("-inf")
    for row in _rows(videos):
        finite = (np.isfinite(row) if isinstance(row, np.ndarray) else torch.isfinite(row)).all()
        if not bool(finite):
            raise _refuse(ArchiveErrorCode.NON_FINITE, subject, "videos contain NaN or Inf values")
        seen_low, seen_high = min(seen_low, float(row.min())), max(seen_high, float(row.max()))
    worst = seen_high if seen_high > high else seen_low if seen_low < low else None
    if worst is not None:
        raise _refuse(ArchiveErrorCode.FLOAT_RANGE, subject,
                      f"float frames reach {worst:g}: store pixel scale [0, 1] (synthesised "
                      f"frames may stray to [{low:g}, {high:g}], no further)")


def _rows(tensor: torch.Tensor):
    # CPU tensors go through numpy: its single-threaded kernels beat torch's thread pool by two
    # orders of magnitude when the cores are shared with training runs.
    rows = tensor.detach()
    return rows.numpy() if rows.device.type == "cpu" else rows


def _all_finite(tensor: torch.Tensor) -> bool:
    # One instance at a time: a whole-tensor isfinite() would allocate a mask as large as the set.
    # CPU tensors go through numpy: its single-threaded kernel beats torch's thread pool by two
    # orders of magnitude when the cores are shared with training runs.
    rows = tensor.detach()
    if rows.device.type == "cpu":
        return all(bool(np.isfinite(row).all()) for row in rows.numpy())
    return all(bool(torch.isfinite(row).all()) for row in rows)


@dataclass(frozen=True)
class StorageLedger:
    """What a condensed set costs in storage. Reported, never enforced: the budget is in frames."""

    instances: int
    frames_total: int
    frame_dtype: str
    frame_bytes: int
    hard_label_bytes: int
    soft_label_bytes: int
    total_tensor_bytes: int
    other_bytes: int          # everything stored that is not a tensor payload: manifest, headers
    archive_bytes: int        # size of the archive file; 0 for a set not yet written
    per_class_counts: tuple[int, ...]

    @classmethod
    def measure(cls, cs: CondensedSet, *, num_classes: int, stored_bytes: int | None = None,
                archive_bytes: int = 0) -> "StorageLedger":
        """``stored_bytes``: total size of the archive's members (manifest and tensor files)."""
        frame_bytes = _nbytes(cs.videos)
        hard = _nbytes(cs.labels)
        soft = _nbytes(cs.soft_labels) if cs.soft_labels is not None else 0
        total = frame_bytes + hard + soft
        frames = int(cs.videos.shape[0]) * int(cs.videos.shape[2]) if cs.videos.ndim == 5 else 0
        return cls(
            instances=cs.num_instances,
            frames_total=frames,
            frame_dtype=str(cs.videos.dtype).removeprefix("torch."),
            frame_bytes=frame_bytes,
            hard_label_bytes=hard,
            soft_label_bytes=soft,
            total_tensor_bytes=total,
            other_bytes=max(0, stored_bytes - total) if stored_bytes is not None else 0,
            archive_bytes=archive_bytes,
            per_class_counts=cs.per_class_counts(num_classes),
        )

    def rows(self) -> list[tuple[str, int | str]]:
        """(name, value) pairs in display order, for a two-column table."""
        counts = self.per_class_counts
        spread = f"{min(counts)}-{max(counts)}" if counts else "-"
        return [
            ("instances", self.instances),
            ("frames", self.frames_total),
            ("instances per class", spread),
            ("frame dtype", self.frame_dtype),
            ("frame bytes", self.frame_bytes),
            ("hard-label bytes", self.hard_label_bytes),
            ("soft-label bytes", self.soft_label_bytes),
            ("tensor bytes", self.total_tensor_bytes),
            ("other bytes", self.other_bytes),
            ("archive bytes", self.archive_bytes),
        ]

    def to_dict(self) -> dict[str, int | str | list[int]]:
        out = dataclasses.asdict(self)
        out["per_class_counts"] = list(self.per_class_counts)
        return out


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()
