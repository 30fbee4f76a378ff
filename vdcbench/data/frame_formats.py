"""How a frame store keeps its pixels: ``raw`` (the default) or ``jpeg``, each with one reader
and one writer, chosen by the manifest's ``frame_format``.

* ``raw`` — ``frames.npy``: all frames as one uint8 (total_frames, H, W, 3) array read through a
  memory map. A clip read is a copy of T frames, bit-exact; 65,280 bytes a frame at 128x170.
* ``jpeg`` — ``frames.jpg.bin``: every frame a JPEG (``vdcbench.data.jpeg``), appended in store
  order; ``frame_offsets.npy``: int64 (total_frames + 1,), frame i being the bytes
  ``[offsets[i], offsets[i + 1])``. A clip read decodes T JPEGs. Lossy, about a tenth the size.

A video's content hash is over what is stored, so ``--verify`` rehashes the bytes on disk without
decoding: for raw the sha256 of its (L, H, W, 3) bytes (as before stores had formats, so raw
stores keep their hashes), for jpeg the sha256 of its frames' byte sizes (int64 little-endian)
followed by their JPEG bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from vdcbench.data.jpeg import EncodedFrames, decode_frames
from vdcbench.core.errors import UnknownNameError, VdcError

RAW = "raw"
JPEG = "jpeg"
FRAME_FORMATS = (RAW, JPEG)
RAW_FILE = "frames.npy"
JPEG_FILE = "frames.jpg.bin"
JPEG_OFFSETS_FILE = "frame_offsets.npy"
FILES = {RAW: (RAW_FILE,), JPEG: (JPEG_FILE, JPEG_OFFSETS_FILE)}


def check_frame_format(name: str) -> str:
    if name not in FRAME_FORMATS:
        raise UnknownNameError("store format", name, FRAME_FORMATS)
    return name


def frames_sha256(frames: np.ndarray) -> str:
    """Content hash of one video in a raw store: sha256 of its (L, H, W, 3) uint8 bytes."""
    return hashlib.sha256(np.ascontiguousarray(frames, dtype=np.uint8).data).hexdigest()


def jpeg_sha256(sizes: np.ndarray, data) -> str:
    """Content hash of one video in a jpeg store: its frame sizes, then its JPEG bytes (the sizes
    make a shifted frame boundary a different hash)."""
    digest = hashlib.sha256(np.asarray(sizes, dtype="<i8").tobytes())
    digest.update(memoryview(data))
    return digest.hexdigest()


# ------------------------------------------------------------------------------- readers
class RawFrames:
    """``frames.npy`` through a read-only memory map."""

    def __init__(self, directory: Path, total: int, resize: tuple[int, int]):
        path = Path(directory) / RAW_FILE
        try:
            self.array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise VdcError(f"cannot read the frames of store {directory}: {exc}") from None
        expected = (total, *resize, 3)
        if self.array.dtype != np.uint8 or tuple(self.array.shape) != expected:
            raise VdcError(f"{path} holds {self.array.dtype} {tuple(self.array.shape)}, not uint8 "
                           f"{expected}; prepare the store again")

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def read(self, index: np.ndarray) -> torch.Tensor:
        """uint8 (n, H, W, 3): frames ``index`` (store-wide numbers), copied out of the map."""
        return torch.from_numpy(np.asarray(self.array[index]))

    def video_sha256(self, offset: int, length: int) -> str:
        return frames_sha256(self.array[offset:offset + length])

    def problems(self) -> list[str]:
        return []      # the shape is checked on opening; nothing else can be inconsistent


class JpegFrames:
    """``frames.jpg.bin`` through a read-only memory map, cut by ``frame_offsets.npy``."""

    def __init__(self, directory: Path, total: int, resize: tuple[int, int]):
        self.directory, self.resize = Path(directory), tuple(resize)
        blob = self.directory / JPEG_FILE
        try:
            self.offsets = np.load(self.directory / JPEG_OFFSETS_FILE, mmap_mode="r",
                                   allow_pickle=False)
            size = blob.stat().st_size
            # An empty file cannot be mapped; a store with frames never has one.
            self.blob = (np.memmap(blob, dtype=np.uint8, mode="r") if size
                         else np.zeros(0, dtype=np.uint8))
        except (OSError, ValueError) as exc:
            raise VdcError(f"cannot read the frames of store {directory}: {exc}") from None
        if self.offsets.dtype != np.int64 or tuple(self.offsets.shape) != (total + 1,):
            raise VdcError(f"{JPEG_OFFSETS_FILE} of store {directory} holds {self.offsets.dtype} "
                           f"{tuple(self.offsets.shape)}, not int64 ({total + 1},); prepare the "
                           "store again")
        if int(self.offsets[0]) != 0 or int(self.offsets[-1]) != size:
            raise VdcError(f"{JPEG_FILE} of store {directory} holds {size:,} bytes, its offsets "
                           f"span {int(self.offsets[0]):,}..{int(self.offsets[-1]):,}; prepare "
                           "the store again")

    def __len__(self) -> int:
        return int(self.offsets.shape[0]) - 1

    def read(self, index: np.ndarray) -> torch.Tensor:
        """uint8 (n, H, W, 3): frames ``index`` (store-wide numbers), each decoded from its JPEG."""
        index = np.asarray(index, dtype=np.int64)
        h, w = self.resize
        if index.size == 0:
            return torch.empty((0, h, w, 3), dtype=torch.uint8)
        starts, ends = self.offsets[index].tolist(), self.offsets[index + 1].tolist()
        try:
            # A copy per frame (a few kB): torch will not wrap a read-only map without warning.
            frames = decode_frames([bytearray(self.blob[a:b]) for a, b in zip(starts, ends)])
        except (RuntimeError, ValueError) as exc:
            raise VdcError(f"a frame of store {self.directory} does not decode ({exc}); check "
                           "the store with `vdcbench prepare ... --verify`") from None
        if tuple(frames.shape[2:]) != (h, w):
            raise VdcError(f"store {self.directory} holds {frames.shape[2]}x{frames.shape[3]} "
                           f"frames, its manifest says {h}x{w}; prepare the store again")
        return frames.permute(0, 2, 3, 1)

    def video_sha256(self, offset: int, length: int) -> str:
        offsets = np.asarray(self.offsets[offset:offset + length + 1])
        return jpeg_sha256(np.diff(offsets), self.blob[int(offsets[0]):int(offsets[-1])])

    def problems(self) -> list[str]:
        if np.any(np.diff(np.asarray(self.offsets)) <= 0):
            return [f"{JPEG_OFFSETS_FILE} is not increasing: a frame has no bytes"]
        return []


def open_frames(frame_format: str, directory: Path, total: int, resize: tuple[int, int]
                ) -> RawFrames | JpegFrames:
    reader = {RAW: RawFrames, JPEG: JpegFrames}[check_frame_format(frame_format)]
    return reader(directory, total, tuple(resize))


# ------------------------------------------------------------------------------- writers
class RawWriter:
    """Fills ``frames.npy`` video by video under a temporary name; ``commit`` renames it."""

    def __init__(self, directory: Path, total: int, resize: tuple[int, int]):
        self.final = Path(directory) / RAW_FILE
        self.tmp = Path(directory) / f".{RAW_FILE}.tmp"
        self.shape = (total, *resize, 3)
        self.out = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=np.uint8, shape=self.shape)
        self.position = 0

    def add(self, key: str, length: int, frames: np.ndarray) -> str:
        """Append one video's (L, H, W, 3) frames; returns its content hash."""
        if frames.shape != (length, *self.shape[1:]) or frames.dtype != np.uint8:
            raise ValueError(f"video {key!r}: frames {frames.dtype} {frames.shape}, expected "
                             f"uint8 {(length, *self.shape[1:])}")
        self.out[self.position:self.position + length] = frames
        self.position += length
        return frames_sha256(frames)

    def commit(self) -> None:
        if self.position != self.shape[0]:
            raise ValueError(f"{self.position} frames written, {self.shape[0]} expected")
        self.out.flush()
        del self.out
        os.replace(self.tmp, self.final)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


class JpegWriter:
    """Appends each video's JPEGs to ``frames.jpg.bin`` under a temporary name; ``commit`` writes
    ``frame_offsets.npy`` and renames both into place."""

    def __init__(self, directory: Path, total: int, resize: tuple[int, int]):
        self.directory = Path(directory)
        self.tmp = self.directory / f".{JPEG_FILE}.tmp"
        self.tmp_offsets = self.directory / f".{JPEG_OFFSETS_FILE}.tmp"
        self.offsets = np.zeros(total + 1, dtype=np.int64)
        self.position = 0
        self.fh = open(self.tmp, "wb")

    def add(self, key: str, length: int, encoded: EncodedFrames) -> str:
        """Append one video's JPEGs; returns its content hash."""
        sizes = np.asarray(encoded.sizes, dtype=np.int64)
        if len(sizes) != length or int(sizes.sum()) != len(encoded.data) or np.any(sizes <= 0):
            raise ValueError(f"video {key!r}: {len(sizes)} JPEG sizes summing to "
                             f"{int(sizes.sum())} for {length} frames of {len(encoded.data)} bytes")
        self.fh.write(encoded.data)
        start = self.offsets[self.position]
        self.offsets[self.position + 1:self.position + 1 + length] = start + np.cumsum(sizes)
        self.position += length
        return jpeg_sha256(sizes, encoded.data)

    def commit(self) -> None:
        if self.position != len(self.offsets) - 1:
            raise ValueError(f"{self.position} frames written, {len(self.offsets) - 1} expected")
        self.fh.close()
        with open(self.tmp_offsets, "wb") as fh:
            np.save(fh, self.offsets, allow_pickle=False)
        os.replace(self.tmp_offsets, self.directory / JPEG_OFFSETS_FILE)
        os.replace(self.tmp, self.directory / JPEG_FILE)

    def discard(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)
        self.tmp_offsets.unlink(missing_ok=True)


def open_writer(frame_format: str, directory: Path, total: int, resize: tuple[int, int]
                ) -> RawWriter | JpegWriter:
    writer = {RAW: RawWriter, JPEG: JpegWriter}[check_frame_format(frame_format)]
    return writer(directory, total, tuple(resize))
