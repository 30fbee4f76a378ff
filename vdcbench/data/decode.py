"""Decoding a listed video into uint8 frames at the protocol's resize: the one place pixels are made.

Videos are decoded with PyAV (FFmpeg) with threaded decoding (``thread_type = "AUTO"``), every
frame converted to rgb24; mmaction-style rawframes folders are decoded with
``torchvision.io.decode_jpeg`` (libjpeg-turbo). Every frame is then resized in torch exactly as
the study's reference code does (Video-DC ``dataset.py``: ``ToDtype(float32, scale=True)`` then
``Resize(pre_size, antialias=True)``, i.e. bilinear with antialiasing on [0, 1] floats, no
``align_corners``) and quantised back to uint8 by rounding, because the store holds 8-bit frames
(the reference reads 8-bit JPEGs, so this changes no pixel by more than half a grey level).

All frames of one recording are decoded in one sequential pass, and the clips a source cuts out
of it (``VideoEntry.start_seconds``/``end_seconds``) are taken by each frame's presentation time
in ``[start, end)``: decoding from the first frame never depends on where a seek lands, so two
prepares of the same file give the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vdcbench.data.listing import VideoEntry

# Frames are resized in chunks so a long 640x480 recording never sits in memory as float.
_CHUNK = 32
_TIME_EPSILON = 1e-6
RAWFRAME_SUFFIXES = (".jpg", ".jpeg")


class DecodeError(Exception):
    """A video that cannot be decoded (corrupt, empty, no video stream): reported, then skipped."""


@dataclass(frozen=True)
class DecodedVideo:
    """The frames of one listed video, (L, H, W, 3) uint8 at the requested size, and its rate."""

    frames: np.ndarray
    fps: float | None


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> uint8 (T, h, w, 3): the reference's float bilinear antialiased resize,
    rounded back to uint8. Frames already at ``size`` are returned unchanged."""
    if tuple(frames.shape[1:3]) == tuple(size):
        return frames.contiguous()
    x = frames.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
    y = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return y.mul_(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


class _Collector:
    """Gathers the frames of one clip, resizing them in chunks as they arrive."""

    def __init__(self, size: tuple[int, int]):
        self.size = size
        self.pending: list[np.ndarray] = []
        self.done: list[torch.Tensor] = []

    def add(self, rgb: np.ndarray) -> None:
        if self.pending and self.pending[0].shape != rgb.shape:
            self.flush()     # a stream that changes resolution midway: resize what came before
        self.pending.append(rgb)
        if len(self.pending) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.done.append(resize_frames(torch.from_numpy(np.stack(self.pending)), self.size))
            self.pending = []

    def frames(self) -> np.ndarray:
        self.flush()
        if not self.done:
            return np.empty((0, *self.size, 3), dtype=np.uint8)
        return torch.cat(self.done).numpy()


def decode_video_file(path: Path, size: tuple[int, int],
                      cuts: Sequence[tuple[float | None, float | None]] = ((None, None),)
                      ) -> tuple[list[np.ndarray], float | None]:
    """Decode ``path`` once; the frames of each ``(start, end)`` cut (None, None = the whole video)
    resized to ``size``, and the stream's average frame rate. Raises ``DecodeError``."""
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise DecodeError(f"cannot open: {exc}") from None
    collectors = [_Collector(size) for _ in cuts]
    try:
        with container:
            if not container.streams.video:
                raise DecodeError("no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else None
            last_end = max((float("inf") if end is None else end) for _, end in cuts)
            origin = None
            for number, frame in enumerate(container.decode(stream)):
                time = frame.time
                if time is None:   # no timestamps: count frames at the stream's rate
                    time = number / fps if fps else float(number)
                # Cuts count from the first frame: MP4/WebM streams may start at a non-zero time.
                origin = time if origin is None else origin
                time -= origin
                if time >= last_end - _TIME_EPSILON:
                    break
                rgb = None
                for (start, end), collector in zip(cuts, collectors):
                    if start is not None and time < start - _TIME_EPSILON:
                        continue
                    if end is not None and time >= end - _TIME_EPSILON:
                        continue
                    rgb = frame.to_ndarray(format="rgb24") if rgb is None else rgb
                    collector.add(rgb)
    except DecodeError:
        raise
    except (av.FFmpegError, OSError, ValueError, RuntimeError) as exc:
        raise DecodeError(f"decoding failed: {exc}") from None
    return [c.frames() for c in collectors], fps


def decode_rawframes(folder: Path, size: tuple[int, int]) -> np.ndarray:
    """The JPEG frames of an mmaction rawframes folder (``img_00001.jpg``, ... in name order),
    decoded with libjpeg-turbo and resized to ``size``. Raises ``DecodeError``."""
    from torchvision.io import ImageReadMode, decode_jpeg

    folder = Path(folder)
    if not folder.is_dir():
        raise DecodeError("not a folder of frames")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in RAWFRAME_SUFFIXES)
    images = [p for p in files if p.name.startswith("img_")] or files
    collector = _Collector(size)
    for first in range(0, len(images), _CHUNK):
        data = [torch.frombuffer(bytearray(p.read_bytes()), dtype=torch.uint8)
                for p in images[first:first + _CHUNK]]
        try:
            decoded = decode_jpeg(data, mode=ImageReadMode.RGB)
        except RuntimeError as exc:
            raise DecodeError(f"bad JPEG frame: {exc}") from None
        for image in decoded:
            collector.add(image.permute(1, 2, 0).numpy())
    return collector.frames()


def decode_entries(entries: Sequence[VideoEntry], size: tuple[int, int]
                   ) -> list[DecodedVideo | DecodeError]:
    """Decode the entries of one source file (or one rawframes folder) in one pass.

    Returns, per entry, its frames or the ``DecodeError`` that says why it has none; an empty
    result (a zero-length video, a cut past the end) is an error too."""
    if not entries:
        return []
    paths = {e.path for e in entries}
    if len(paths) != 1:
        raise ValueError("decode_entries takes the entries of one file")
    first = entries[0]
    try:
        if first.kind == "rawframes":
            frames, fps = [decode_rawframes(first.path, size)] * len(entries), None
        else:
            frames, fps = decode_video_file(first.path, size,
                                            [(e.start_seconds, e.end_seconds) for e in entries])
    except DecodeError as exc:
        return [exc] * len(entries)
    out: list[DecodedVideo | DecodeError] = []
    for clip in frames:
        out.append(DecodedVideo(clip, fps) if len(clip) else DecodeError("no frames decoded"))
    return out
