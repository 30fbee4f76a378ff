"""The prepared frame store: every video of a data set decoded once, at the protocol's resize.

One directory per prepared data set, ``<cache>/stores/<name>/`` (or wherever ``prepare --out``
put it; a ``<cache>/stores/<name>.link`` file then names that directory), holding:

* the frames of all videos, in one of two formats (``vdcbench.data.frame_formats``): ``raw``,
  the default, one uint8 array (total_frames, H, W, 3) in ``frames.npy`` read through a memory
  map — a clip read is a copy of T frames (no decode, no source video touched) and the store is
  bit-exact, at 65,280 bytes a frame at 128x170 (see ``bytes_per_hour``); or ``jpeg``, every
  frame a JPEG in one append-only file with a byte-offset array — lossy, about a tenth the size,
  a clip read decodes T JPEGs;
* ``index.json`` — per video, in key order: key, label, split, offset (first frame in the
  store), length, the source's frame rate, and the sha256 of its stored bytes;
* ``manifest.json`` — written last, so its presence means the store is complete: data set,
  classes, split description and counts, resize, frame format, the missing/failed reports of
  ``prepare``, the versions of PyAV, FFmpeg, torch, Pillow and vdcbench that made it, the store
  hash and its size.
* ``cache/`` — derived tensors (the validation clips of a track), rebuilt on demand;
* ``leakage.json`` — the leakage check's result (``vdcbench.data.leakage``), written after the
  manifest and ignored when its store hash is not the store's.

The store hash is the sha256 of the ordered index (key, label, split, length and content hash of
every video) with the data set, classes, resize and (for jpeg) the frame format: two prepares of
the same videos in the same format give the same hash, a raw and a jpeg store of them never do,
and result records carry it as their data-set hash.
"""

from __future__ import annotations

import dataclasses
import functools
import platform
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import torch

from vdcbench.core.atomic_file import atomic_path, write_json_atomic, write_text_atomic
from vdcbench.data.frame_formats import (FILES, FRAME_FORMATS, JPEG, RAW, RAW_FILE, JpegFrames,
                                         RawFrames, check_frame_format, open_frames, open_writer)
from vdcbench.data.frame_formats import frames_sha256  # noqa: F401  (its home before formats)
from vdcbench.data.jpeg import SETTINGS as JPEG_SETTINGS
from vdcbench.data.jpeg import codec_versions
from vdcbench.core.errors import VdcError
from vdcbench.core.json_values import dumps_strict, parse_json_strict, plain_json
from vdcbench.core.paths import stores_dir
from vdcbench.protocol import Dataset, Protocol, canonical_sha256

FORMAT = "vdcbench-frame-store"
FORMAT_VERSION = 1
FRAMES_FILE = RAW_FILE
INDEX_FILE = "index.json"
MANIFEST_FILE = "manifest.json"
CACHE_DIR = "cache"
# The leakage check's result (``vdcbench.data.leakage``), keyed by the store hash; not content.
LEAKAGE_FILE = "leakage.json"
LINK_SUFFIX = ".link"
# The protocol's data set whose videos are the user's own collection (classes and split recorded
# in the store); a store of that data set is known by its own name.
COLLECTION_DATASET = "folder"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def valid_store_name(name: str) -> bool:
    """Store names are plain file names: an archive's data-set field never walks the disk."""
    return bool(_NAME.match(name)) and ".." not in name


def stores_root() -> Path:
    return stores_dir()


def default_store_dir(name: str) -> Path:
    if not valid_store_name(name):
        raise VdcError(f"store name {name!r} must be letters, digits, '.', '_' or '-' "
                       "(and start with a letter or digit)")
    return stores_root() / name


def find_store(name: str) -> Path | None:
    """The directory of the complete store called ``name``, or None."""
    if not valid_store_name(name):
        return None
    folder = stores_root() / name
    if (folder / MANIFEST_FILE).is_file():
        return folder
    link = stores_root() / f"{name}{LINK_SUFFIX}"
    if link.is_file():
        target = Path(link.read_text().strip())
        if (target / MANIFEST_FILE).is_file():
            return target
    return None


def link_store(name: str, directory: Path) -> None:
    """Make a store written elsewhere (``prepare --out``) findable by its name."""
    directory = Path(directory).resolve()
    if directory == (stores_root() / name).resolve():
        return
    write_text_atomic(stores_root() / f"{name}{LINK_SUFFIX}", f"{directory}\n")


def bytes_per_hour(fps: float, resize: tuple[int, int]) -> int:
    """Raw store bytes per hour of video: frames per hour x H x W x 3 (a byte per pixel channel).
    A jpeg store's size depends on the footage: measured, not computed (see the README)."""
    return int(round(fps * 3600)) * resize[0] * resize[1] * 3


@dataclass(frozen=True)
class StoreIndex:
    """Per video, in key order: where its frames are and what they hash to."""

    keys: tuple[str, ...]
    labels: np.ndarray      # (N,) int64
    splits: tuple[str, ...]
    offsets: np.ndarray     # (N,) int64, first frame in the store
    lengths: np.ndarray     # (N,) int64
    fps: tuple[float | None, ...]
    sha256: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.keys)

    def to_json(self) -> dict:
        return {"keys": list(self.keys), "labels": self.labels.tolist(),
                "splits": list(self.splits), "offsets": self.offsets.tolist(),
                "lengths": self.lengths.tolist(), "fps": list(self.fps),
                "sha256": list(self.sha256)}

    @classmethod
    def from_json(cls, data: dict) -> "StoreIndex":
        return cls(keys=tuple(data["keys"]), labels=np.asarray(data["labels"], dtype=np.int64),
                   splits=tuple(data["splits"]),
                   offsets=np.asarray(data["offsets"], dtype=np.int64),
                   lengths=np.asarray(data["lengths"], dtype=np.int64),
                   fps=tuple(data["fps"]), sha256=tuple(data["sha256"]))

    def rows(self, split: str) -> np.ndarray:
        return np.asarray([i for i, s in enumerate(self.splits) if s == split], dtype=np.int64)


def store_sha256(dataset: str, classes: Sequence[str], resize: tuple[int, int],
                 index: StoreIndex, frame_format: str = RAW) -> str:
    """The hash of a store's content: what result records carry as their data-set hash."""
    content = {
        "format": FORMAT_VERSION, "dataset": dataset, "classes": list(classes),
        "resize": list(resize),
        "videos": [[k, int(l), s, int(n), h] for k, l, s, n, h in
                   zip(index.keys, index.labels, index.splits, index.lengths, index.sha256)],
    }
    # Named only when not raw, so raw stores keep the hash they had before formats existed; a
    # jpeg store's content hashes differ anyway, this says why in the hashed content.
    if frame_format != RAW:
        content["frame_format"] = frame_format
    return canonical_sha256(content)


def tool_versions() -> dict[str, str]:
    """The decoder and framework versions a store records (decoders change pixels)."""
    from vdcbench.core.version import __version__
    versions = {"vdcbench": __version__, "torch": torch.__version__,
                "python": platform.python_version(), **codec_versions()}
    try:
        import av
        versions["pyav"] = av.__version__
        versions["ffmpeg"] = ", ".join(f"{lib} {'.'.join(str(v) for v in version)}"
                                       for lib, version in sorted(av.library_versions.items()))
    except ImportError:
        versions["pyav"] = versions["ffmpeg"] = "not installed"
    try:
        import torchvision
        versions["torchvision"] = torchvision.__version__
    except ImportError:
        versions["torchvision"] = "not installed"
    return versions


class StoreFrames:
    """The frames of some videos of a store (one split), served clip by clip by the store's
    frame reader (whatever its format)."""

    def __init__(self, store: "Store", rows: np.ndarray):
        self.store = store
        self.rows = np.asarray(rows, dtype=np.int64)
        self._offsets = store.index.offsets[self.rows]
        self._lengths = store.index.lengths[self.rows]

    @property
    def lengths(self) -> np.ndarray:
        return self._lengths

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.store.resize

    def _global(self, video: int, frame_indices: np.ndarray) -> np.ndarray:
        index = np.asarray(frame_indices, dtype=np.int64)
        length = int(self._lengths[video])
        if index.size and (int(index.min()) < 0 or int(index.max()) >= length):
            raise IndexError(f"frame indices {index.tolist()} outside video {video} of "
                             f"{length} frames")
        return self._offsets[video] + index

    def clip(self, video: int, frame_indices: np.ndarray) -> torch.Tensor:
        """uint8 (3, T, H, W): T frames of ``video``."""
        frames = self.store.frames.read(self._global(int(video), frame_indices))
        return frames.permute(3, 0, 1, 2).contiguous()

    def clips(self, videos: Sequence[int], frame_indices: Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 (N, 3, T, H, W), read with one gather over the store."""
        videos = [int(v) for v in videos]
        h, w = self.frame_size
        if not videos:
            return torch.empty((0, 3, 0, h, w), dtype=torch.uint8)
        index = [self._global(v, f) for v, f in zip(videos, frame_indices)]
        frames = self.store.frames.read(np.concatenate(index))
        return frames.reshape(len(videos), -1, h, w, 3).permute(0, 4, 1, 2, 3).contiguous()


@dataclass(frozen=True)
class StoreManifest:
    """``manifest.json`` of a store. Written once by ``write_store`` and only read after, so a
    field that is None was absent from the file and stays absent: ``frame_format`` in stores made
    before formats existed (they are raw), ``jpeg`` in raw stores, and what ``prepare`` records
    (listing hash, split, source, missing and failed videos) in stores it did not make.
    ``split``, ``source`` and ``versions`` stay mappings: they are reports, shown, never
    dispatched on."""

    name: str
    dataset: str
    classes: tuple[str, ...]
    resize: tuple[int, int]
    videos: Mapping[str, int]           # per split
    total_frames: int
    sha256: str
    size_bytes: int
    versions: Mapping[str, Any]
    frame_format: str | None = None
    jpeg: Mapping[str, Any] | None = None
    listing_sha256: str | None = None
    split: Mapping[str, Any] | None = None
    source: Mapping[str, Any] | None = None
    missing: tuple[tuple[str, str], ...] | None = None     # (key, reason)
    failed: tuple[tuple[str, str], ...] | None = None      # (key, reason)
    # Keys this vdcbench does not know (a store written by another version), kept as they were
    # so the store stays readable and its manifest would be written back unchanged.
    other: Mapping[str, Any] = dataclasses.field(default_factory=lambda: MappingProxyType({}))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "name": self.name,
            "dataset": self.dataset, "classes": list(self.classes),
            "num_classes": self.num_classes, "resize": list(self.resize),
            "videos": dict(self.videos), "total_frames": self.total_frames,
            "sha256": self.sha256, "size_bytes": self.size_bytes, "versions": plain_json(self.versions),
            **plain_json(self.other),
        }
        for key in _STORE_OPTIONAL:
            value = getattr(self, key)
            if value is not None:
                out[key] = plain_json(value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StoreManifest":
        """Raises ValueError, KeyError or TypeError on a manifest this vdcbench cannot read."""
        if data.get("format") != FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, not {FORMAT!r}")
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format version {data.get('format_version')!r} is not "
                             f"{FORMAT_VERSION}; prepare it again with this vdcbench")
        known = {"format", "format_version", "num_classes", *cls.__dataclass_fields__} - {"other"}
        other = MappingProxyType({k: v for k, v in data.items() if k not in known})
        pairs = {k: tuple(tuple(p) for p in data[k]) for k in ("missing", "failed") if k in data}
        maps = {k: MappingProxyType(dict(data[k])) for k in ("videos", "versions", "jpeg",
                                                             "split", "source") if k in data}
        return cls(name=data["name"], dataset=data["dataset"], classes=tuple(data["classes"]),
                   resize=tuple(data["resize"]), total_frames=int(data["total_frames"]),
                   sha256=data["sha256"], size_bytes=data["size_bytes"],
                   frame_format=data.get("frame_format"),
                   listing_sha256=data.get("listing_sha256"), other=other, **maps, **pairs)


_STORE_OPTIONAL = ("frame_format", "jpeg", "listing_sha256", "split", "source", "missing",
                   "failed")


class Store:
    """An opened, complete store: its manifest, its index, and a reader of its frames."""

    def __init__(self, path: Path):
        self.path = Path(path)
        manifest_path = self.path / MANIFEST_FILE
        try:
            self.manifest = StoreManifest.from_dict(parse_json_strict(manifest_path.read_bytes()))
            if self.frame_format not in FRAME_FORMATS:
                raise ValueError(f"frame format {self.frame_format!r} is not one this vdcbench "
                                 f"reads ({', '.join(FRAME_FORMATS)})")
        except FileNotFoundError as exc:
            raise VdcError(f"{self.path} is not a complete frame store (no {Path(exc.filename).name})"
                           ) from None
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
            # OverflowError: int() of an infinite count ("total_frames": 1e400).
            raise VdcError(f"{self.path} is not a readable frame store: {exc}") from None

    @functools.cached_property
    def index(self) -> StoreIndex:
        """Read on first use: the hash and the counts need only the manifest."""
        try:
            return StoreIndex.from_json(parse_json_strict((self.path / INDEX_FILE).read_bytes()))
        except FileNotFoundError:
            raise VdcError(f"{self.path} is not a complete frame store (no {INDEX_FILE})") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise VdcError(f"the index of frame store {self.path} is unreadable: {exc}") from None

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def dataset(self) -> str:
        return self.manifest.dataset

    @property
    def classes(self) -> tuple[str, ...]:
        return self.manifest.classes

    @property
    def resize(self) -> tuple[int, int]:
        return self.manifest.resize

    @property
    def sha256(self) -> str:
        return self.manifest.sha256

    @property
    def frame_format(self) -> str:
        """``raw`` or ``jpeg``; stores made before formats existed are raw."""
        return self.manifest.frame_format or RAW

    @functools.cached_property
    def frames(self) -> RawFrames | JpegFrames:
        """The reader of the store's frames (``RawFrames`` or ``JpegFrames``): ``read(index)``
        gives uint8 (n, H, W, 3) of store-wide frame numbers."""
        return open_frames(self.frame_format, self.path, self.manifest.total_frames,
                           self.resize)

    def video_frames(self, row: int) -> np.ndarray:
        """All frames of index row ``row``, (L, H, W, 3) uint8."""
        offset, length = int(self.index.offsets[row]), int(self.index.lengths[row])
        return self.frames.read(np.arange(offset, offset + length)).numpy()

    def size_bytes(self) -> int:
        names = (*FILES[self.frame_format], INDEX_FILE, MANIFEST_FILE)
        return sum(p.stat().st_size for p in (self.path / n for n in names) if p.is_file())


def open_store(path: Path) -> Store:
    """The store at ``path``; opened once per process while its manifest is unchanged, so the
    many hash and split look-ups of an evaluation share one index and one memory map."""
    path = Path(path).resolve()
    try:
        stamp = (path / MANIFEST_FILE).stat().st_mtime_ns
    except OSError:
        return Store(path)      # raises the one-line "not a complete frame store"
    return _open_store(path, stamp)


@functools.lru_cache(maxsize=8)
def _open_store(path: Path, manifest_mtime_ns: int) -> Store:
    return Store(path)


def prepare_command(dataset: Dataset) -> str:
    if dataset.split == "recorded-in-store":
        return f"vdcbench prepare folder --root PATH --name {dataset.name}"
    return f"vdcbench prepare {dataset.name} --root PATH"


def open_store_for(dataset: Dataset) -> Store:
    """The prepared store of ``dataset`` (by its name), checked against the protocol's resize."""
    path = find_store(dataset.name)
    if path is None:
        raise VdcError(f"the {dataset.name!r} data set is not prepared on this machine; run "
                       f"`{prepare_command(dataset)}` (stores live in {stores_root()})")
    store = open_store(path)
    expected = COLLECTION_DATASET if dataset.split == "recorded-in-store" else dataset.name
    if store.dataset != expected:
        raise VdcError(f"store {path} holds the {store.dataset!r} data set, not {expected!r}")
    if store.resize != tuple(dataset.resize):
        raise VdcError(f"store {path} was prepared at {store.resize[0]}x{store.resize[1]}, the "
                       f"protocol resizes {dataset.name!r} to {dataset.resize[0]}x"
                       f"{dataset.resize[1]}; prepare it again")
    return store


# ------------------------------------------------------------------------------- writing
@dataclass(frozen=True)
class StoredVideo:
    """One decoded video as it enters the store (its offset follows from the order)."""

    key: str
    label: int
    split: str
    length: int
    fps: float | None


def write_store(directory: Path, *, name: str, dataset: str, classes: Sequence[str],
                resize: tuple[int, int], videos: Sequence[StoredVideo],
                read_frames: Callable[[int], object], manifest_extra: Mapping[str, Any],
                frame_format: str = RAW,
                progress: Callable[[int, int], None] | None = None) -> Store:
    """Write frames, index and manifest of ``videos`` (sorted by key here) into ``directory``.

    ``read_frames(i)`` gives what ``videos[i]`` is stored as: its (L, H, W, 3) uint8 frames for a
    raw store, its ``EncodedFrames`` for a jpeg one. Each file is written to a temporary name and
    renamed; the manifest goes last, so a store is either complete or absent.
    """
    directory = Path(directory)
    check_frame_format(frame_format)
    order = sorted(range(len(videos)), key=lambda i: videos[i].key)
    lengths = np.asarray([videos[i].length for i in order], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(order) else \
        np.zeros(0, dtype=np.int64)
    total = int(lengths.sum())
    h, w = resize
    for stale in (MANIFEST_FILE, INDEX_FILE, LEAKAGE_FILE,
                  *(f for files in FILES.values() for f in files)):
        (directory / stale).unlink(missing_ok=True)
    shutil.rmtree(directory / CACHE_DIR, ignore_errors=True)
    hashes = []
    writer = open_writer(frame_format, directory, total, resize)
    try:
        for done, i in enumerate(order):
            hashes.append(writer.add(videos[i].key, videos[i].length, read_frames(i)))
            if progress is not None:
                progress(done + 1, len(order))
        writer.commit()
    finally:
        writer.discard()
    index = StoreIndex(keys=tuple(videos[i].key for i in order),
                       labels=np.asarray([videos[i].label for i in order], dtype=np.int64),
                       splits=tuple(videos[i].split for i in order), offsets=offsets,
                       lengths=lengths, fps=tuple(videos[i].fps for i in order),
                       sha256=tuple(hashes))
    write_text_atomic(directory / INDEX_FILE, dumps_strict(index.to_json(), separators=(",", ":")))
    counts = {s: int(sum(1 for x in index.splits if x == s)) for s in ("train", "val")}
    size = sum((directory / f).stat().st_size for f in (*FILES[frame_format], INDEX_FILE))
    manifest = StoreManifest(
        name=name, dataset=dataset, classes=tuple(classes), resize=(h, w),
        frame_format=frame_format, videos=counts, total_frames=total,
        sha256=store_sha256(dataset, classes, resize, index, frame_format),
        size_bytes=size, versions=tool_versions(),
        jpeg=dict(JPEG_SETTINGS) if frame_format == JPEG else None, **manifest_extra)
    write_json_atomic(directory / MANIFEST_FILE, manifest.to_dict())
    return open_store(directory)


# ----------------------------------------------------------------------------- verifying
@dataclass(frozen=True)
class Verification:
    """What ``verify_store`` found: every problem as one line (none when the store is sound)."""

    videos: int
    frames: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_store(store: Store, progress: Callable[[int, int], None] | None = None) -> Verification:
    """Recount the store and rehash every video's stored bytes against its index and manifest."""
    problems = []
    index, manifest = store.index, store.manifest
    for split, count in manifest.videos.items():
        actual = int(sum(1 for s in index.splits if s == split))
        if actual != count:
            problems.append(f"{split}: the index lists {actual} videos, the manifest {count}")
    total = int(index.lengths.sum())
    if total != manifest.total_frames:
        problems.append(f"the index counts {total} frames, the manifest {manifest.total_frames}")
    expected_offsets = np.concatenate([[0], np.cumsum(index.lengths)[:-1]]) if len(index) else []
    if not np.array_equal(index.offsets, expected_offsets):
        problems.append("the index offsets do not follow its lengths")
    if store_sha256(store.dataset, store.classes, store.resize, index,
                    store.frame_format) != store.sha256:
        problems.append("the store hash does not match its index")
    if not problems:
        frames = store.frames
        if len(frames) != total:
            problems.append(f"the {store.frame_format} frames number {len(frames)}, the index "
                            f"{total}")
        problems += frames.problems()
        if not problems:
            for row in range(len(index)):
                offset, length = int(index.offsets[row]), int(index.lengths[row])
                if frames.video_sha256(offset, length) != index.sha256[row]:
                    problems.append(f"video {index.keys[row]!r}: frames do not match their sha256")
                if progress is not None:
                    progress(row + 1, len(index))
    return Verification(videos=len(index), frames=total, problems=tuple(problems))


# ------------------------------------------------------------------- validation-clip cache
def cached_validation_clips(protocol: Protocol, split, compute: Callable[[], torch.Tensor]
                            ) -> torch.Tensor:
    """The validation clips of a store-backed split, from ``<store>/cache`` or computed and kept.

    Keyed by the store hash, the sampling rule (frames, tau, declared interval) and the crop, so
    an evaluation reads one tensor file instead of gathering clips. A store on a read-only disk
    just computes them every time.
    """
    from safetensors.torch import load_file, save_file

    store: Store = split.frames.store
    ds, sampling = split.dataset, protocol.sampling
    name = (f"val-clips-{store.sha256[:16]}-{split.split}-t{sampling.frames}-tau{sampling.tau}"
            f"-i{ds.interval or 0}-c{ds.crop}.safetensors")
    path = store.path / CACHE_DIR / name
    labels = split.labels.to(torch.int64)
    if path.is_file():
        try:
            cached = load_file(str(path))
            if torch.equal(cached["labels"], labels) and cached["videos"].dtype == torch.uint8:
                return cached["videos"]
        except Exception:   # a damaged cache file is rebuilt, never trusted
            pass
    clips = compute()
    try:
        with atomic_path(path) as tmp:
            save_file({"videos": clips.contiguous(), "labels": labels.contiguous()}, str(tmp))
    except (OSError, VdcError):   # a cache that cannot be written is only a slower next run
        pass
    return clips
