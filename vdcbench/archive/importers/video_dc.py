"""Condensed sets in the layouts of the study's code (Video-DC), as CondensedSets.

Two layouts are read, both as the reference evaluation (``val.py``) reads them:

* **JPEG folders** (RDED, EDC, and DATM's exports): ``DIR/<class:05d>/class{c:05d}_id{i:05d}_
  t{t:03d}.jpg``. The frames were written by PIL after denormalising, so they are pixels; they
  are imported as uint8 (N, 3, T, H, W), exactly the decoded JPEG values. Clips are ordered by
  (class, id); folder names that are not five digits are ignored, as the reference ignores them.
* **DATM tensors**: ``DIR/images_best.pt`` (ImageNet-normalised clips, (N, 3, T, H, W) or
  (N, T, 3, H, W)) and optionally ``DIR/labels_best.pt`` (logits (N, K), or hard labels (N,)).
  Clips are class-major, ``ipc`` per class, as the reference assumes when it builds hard labels
  ``[i] * IPC``. The clips are denormalised to pixel scale [0, 1], unclamped, float32 (float16
  stays float16). Both files are loaded with ``torch.load(weights_only=True)`` and must each hold
  one tensor (:mod:`vdcbench.archive.importers.tensor_file`).

The ``soft`` label strategy takes its logits from ``labels_best.pt`` (in either layout, rows in
clip order). The imported set is recorded as method ``import:video-dc`` with the layout, the
source folder's name and a sha256 over the files read, so an archive says where it came from.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vdcbench.archive.condensed import CondensedSet, MethodInfo, MethodKind
from vdcbench.core.errors import VdcError
from vdcbench.archive.importers.tensor_file import load_tensor_file
from vdcbench.protocol import Dataset, Protocol

METHOD_NAME = "import:video-dc"
FORMATS = ("auto", "jpeg", "pt")
NORMALIZATIONS = ("imagenet", "none")
IMAGES_FILE = "images_best.pt"
LABELS_FILE = "labels_best.pt"
CLASS_FOLDER = re.compile(r"^\d{5}$")
FRAME_FILE = re.compile(r"^class(\d{5})_id(\d{5})_t(\d{3})\.jpe?g$", re.IGNORECASE)


@dataclass(frozen=True)
class _Target:
    """What the imported set must fit: resolved once from the user's options."""

    protocol: Protocol
    dataset: Dataset
    num_classes: int
    ipc: int
    frames: int | None
    wants_soft: bool

    def track_id(self, frames: int) -> str:
        """The track of ``frames`` frames at this IPC; an unknown one is refused with the known."""
        return self.protocol.track(self.dataset, f"ipc{self.ipc}-t{frames}").id


def import_video_dc(directory: str | Path, *, protocol: Protocol, dataset: str, ipc: int,
                    frames: int | None = None, label_strategy: str = "hard",
                    kind: str = "distillation", num_classes: int | None = None,
                    source_format: str = "auto", normalization: str = "imagenet",
                    source_method: str | None = None) -> CondensedSet:
    """Read the condensed set in ``directory`` for ``dataset`` at ``ipc`` instances per class.

    ``frames`` (the track's T) defaults to what the set holds; ``num_classes`` is needed only for
    the ``folder`` data set; ``kind`` records whether the source method selected or synthesised;
    ``source_method`` (e.g. ``rded``) is recorded in the method config.
    """
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise VdcError(f"condensed set folder {directory} "
                       f"{'is not a folder' if directory.exists() else 'does not exist'}")
    if source_format not in FORMATS:
        raise VdcError(f"format must be one of {', '.join(FORMATS)}, not {source_format!r}")
    if normalization not in NORMALIZATIONS:
        raise VdcError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, "
                       f"not {normalization!r}")
    kind = MethodKind.parse(kind, "kind")
    if ipc < 1:
        raise VdcError(f"ipc must be at least 1, not {ipc}")
    target = _target(protocol, dataset, ipc, frames, label_strategy, num_classes)

    has_pt = (directory / IMAGES_FILE).is_file()
    has_jpeg = any(p.is_dir() and CLASS_FOLDER.match(p.name) for p in directory.iterdir())
    chosen = source_format
    if chosen == "auto":
        # The tensors are what DATM optimised; its JPEG export lost precision and range.
        chosen = "pt" if has_pt else "jpeg" if has_jpeg else ""
    if not chosen or (chosen == "pt" and not has_pt) or (chosen == "jpeg" and not has_jpeg):
        raise VdcError(f"{directory} holds no condensed set in the study code's layout: expected "
                       "class folders 00000/, 00001/, ... of class{c:05d}_id{i:05d}_t{t:03d}.jpg "
                       f"frames, or {IMAGES_FILE}")
    digest = hashlib.sha256()
    if chosen == "jpeg":
        videos, labels = _read_jpeg_folders(directory, target, digest)
    else:
        videos = _read_images(directory, target, normalization, protocol, digest)
    # Read once, whichever of the hard labels (tensor layout) or the soft labels needs it.
    given = (_load_labels(directory, digest) if chosen == "pt" or target.wants_soft else None)
    if chosen == "pt":
        labels = _hard_labels(given, target, int(videos.shape[0]))
    soft = _soft_labels(given, directory, target, int(videos.shape[0]))

    config = {"importer": "video-dc", "format": chosen, "source": directory.resolve().name,
              "source_sha256": digest.hexdigest()}
    if chosen == "pt":
        config["normalization"] = normalization
    if source_method:
        config["source_method"] = source_method
    track = target.track_id(int(videos.shape[2]))
    return CondensedSet(videos=videos.contiguous(), labels=labels, soft_labels=soft,
                        label_strategy=label_strategy, dataset=dataset, track=track,
                        method=MethodInfo(name=METHOD_NAME, kind=kind, config=config))


def _target(protocol: Protocol, dataset: str, ipc: int, frames: int | None, label_strategy: str,
            num_classes: int | None) -> _Target:
    from vdcbench.data.datasets import resolve_dataset
    ds = resolve_dataset(protocol, dataset)
    strategy = protocol.label_strategy(label_strategy)
    if ds.num_classes == 0:
        if not num_classes or num_classes < 1:
            raise VdcError(f"data set {dataset!r} takes its class count from the collection; "
                           "pass --num-classes")
        count = num_classes
    else:
        if num_classes is not None and num_classes != ds.num_classes:
            raise VdcError(f"--num-classes {num_classes} does not match the {ds.num_classes} "
                           f"classes of {dataset!r}")
        count = ds.num_classes
    target = _Target(protocol=protocol, dataset=ds, num_classes=count, ipc=ipc, frames=frames,
                     wants_soft=strategy.labels == "archive-logits")
    if frames is not None:
        target.track_id(frames)
    return target


def _read_jpeg_folders(directory: Path, target: _Target, digest) -> tuple[torch.Tensor,
                                                                            torch.Tensor]:
    clips: dict[tuple[int, int], dict[int, Path]] = defaultdict(dict)
    folders = sorted(p for p in directory.iterdir() if p.is_dir() and CLASS_FOLDER.match(p.name))
    for folder in folders:
        label = int(folder.name)
        if label >= target.num_classes:
            raise VdcError(f"class folder {folder.name} is beyond the {target.num_classes} "
                           f"classes of {target.dataset.name!r}")
        for path in sorted(folder.iterdir()):
            match = FRAME_FILE.match(path.name)
            if match is None or not path.is_file():
                continue
            c, i, t = (int(g) for g in match.groups())
            if c != label:
                raise VdcError(f"{folder.name}/{path.name} names class {c} inside class folder "
                               f"{folder.name}")
            if t in clips[(c, i)]:
                raise VdcError(f"{folder.name}/{path.name}: frame {t} of clip {i} appears twice")
            clips[(c, i)][t] = path
    if not clips:
        raise VdcError(f"the class folders of {directory} hold no class{{c:05d}}_id{{i:05d}}_"
                       "t{t:03d}.jpg frames")
    per_class: dict[int, int] = defaultdict(int)
    for c, _ in clips:
        per_class[c] += 1
    worst = max(per_class, key=per_class.get)
    if per_class[worst] > target.ipc:
        # Checked before decoding, so an oversized folder costs no decode.
        raise VdcError(f"class {worst} has {per_class[worst]} clips; --ipc {target.ipc} allows "
                       f"at most {target.ipc}")
    keys = sorted(clips)
    lengths = {len(clips[k]) for k in keys}
    frames = target.frames if target.frames is not None else max(lengths)
    for c, i in keys:
        if sorted(clips[(c, i)]) != list(range(frames)):
            have = sorted(clips[(c, i)])
            raise VdcError(f"clip {i} of class {c} has frames t{have[0]:03d}..t{have[-1]:03d} "
                           f"({len(have)} files); expected t000..t{frames - 1:03d}")

    target.track_id(frames)

    videos, size = None, None
    for n, key in enumerate(keys):
        for t in range(frames):
            path = clips[key][t]
            data = path.read_bytes()
            digest.update(f"{path.parent.name}/{path.name}\0".encode())
            digest.update(data)
            image = _decode_jpeg(data, f"{path.parent.name}/{path.name}", size)
            if videos is None:
                size = tuple(image.shape[1:])
                videos = torch.empty((len(keys), 3, frames, *size), dtype=torch.uint8)
            videos[n, :, t] = image
    labels = torch.tensor([c for c, _ in keys], dtype=torch.int64)
    return videos, labels


def _decode_jpeg(data: bytes, name: str, size: tuple[int, int] | None) -> torch.Tensor:
    """(3, H, W) uint8 RGB, refusing a frame whose size differs from the set's before decoding."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                raise VdcError(f"{name} is a {image.format} image, not a JPEG")
            if size is not None and (image.height, image.width) != size:
                raise VdcError(f"{name} is {image.height}x{image.width}; the set's frames are "
                               f"{size[0]}x{size[1]}")
            pixels = np.asarray(image.convert("RGB"))
    # PIL reports a damaged file as UnidentifiedImageError, OSError (truncated) or ValueError.
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "corrupt"
        raise VdcError(f"{name} is not a readable JPEG ({detail})") from None
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)


def _hash_file(digest, path: Path) -> None:
    digest.update(f"{path.name}\0".encode())
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)


def _read_images(directory: Path, target: _Target, normalization: str, protocol: Protocol,
                 digest) -> torch.Tensor:
    path = directory / IMAGES_FILE
    images = load_tensor_file(path)
    _hash_file(digest, path)
    if not images.is_floating_point():
        raise VdcError(f"{IMAGES_FILE} holds {images.dtype} values; expected normalised floats")
    if images.ndim != 5:
        raise VdcError(f"{IMAGES_FILE} has shape {tuple(images.shape)}; expected (N, 3, T, H, W) "
                       "or (N, T, 3, H, W)")
    if images.shape[1] != 3 and images.shape[2] == 3:
        images = images.permute(0, 2, 1, 3, 4)  # Dancing-style (N, T, 3, H, W)
    elif images.shape[1] != 3:
        raise VdcError(f"{IMAGES_FILE} has shape {tuple(images.shape)}; no axis of 3 colour "
                       "channels at position 1 or 2")
    if target.frames is not None and images.shape[2] != target.frames:
        raise VdcError(f"{IMAGES_FILE} clips have {images.shape[2]} frames; --frames asks for "
                       f"{target.frames}")
    out_dtype = torch.float16 if images.dtype == torch.float16 else torch.float32
    pixels = images.to(torch.float32)
    if normalization == "imagenet":
        mean = torch.tensor(protocol.trainer.normalize_mean).view(1, 3, 1, 1, 1)
        std = torch.tensor(protocol.trainer.normalize_std).view(1, 3, 1, 1, 1)
        pixels = pixels * std + mean
    return pixels.to(out_dtype)


def _load_labels(directory: Path, digest) -> torch.Tensor | None:
    path = directory / LABELS_FILE
    if not path.exists():
        return None
    tensor = load_tensor_file(path)
    _hash_file(digest, path)
    return tensor


def _hard_labels(given: torch.Tensor | None, target: _Target, n: int) -> torch.Tensor:
    if given is not None and given.ndim == 1:
        if given.is_floating_point() or given.dtype == torch.bool or int(given.shape[0]) != n:
            raise VdcError(f"{LABELS_FILE} has shape {tuple(given.shape)} and dtype "
                           f"{given.dtype}; expected ({n},) integer labels or ({n}, "
                           f"{target.num_classes}) logits")
        return given.to(torch.int64)
    # The reference's rule: clips are class-major, IPC per class.
    if n != target.num_classes * target.ipc:
        raise VdcError(f"{IMAGES_FILE} holds {n} clips; class-major labels need "
                       f"{target.num_classes} classes x ipc {target.ipc} = "
                       f"{target.num_classes * target.ipc}")
    return torch.arange(target.num_classes).repeat_interleave(target.ipc)


def _soft_labels(given: torch.Tensor | None, directory: Path, target: _Target,
                 n: int) -> torch.Tensor | None:
    if not target.wants_soft:
        return None
    if given is None:
        raise VdcError(f"the soft label strategy takes its logits from {LABELS_FILE}, which "
                       f"{directory} lacks")
    if (given.ndim != 2 or not given.is_floating_point()
            or tuple(given.shape) != (n, target.num_classes)):
        raise VdcError(f"{LABELS_FILE} has shape {tuple(given.shape)} and dtype {given.dtype}; "
                       f"soft labels must be ({n}, {target.num_classes}) logits")
    return given.to(torch.float32).contiguous()
