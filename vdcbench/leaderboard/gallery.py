"""Pictures of a condensed set (the study's Figures 5 and 6): a frame grid per class as a PNG,
and an animated GIF per class.

The grid has one row per instance, grouped by class (the class name on the left of the first
row of each block), and one column per frame. Float videos (pixel scale, unclamped for
synthesised data) are clamped to [0, 1] for display only. Output is deterministic: the same set
gives the same bytes (no timestamps or other metadata in the PNG or GIF).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from vdcbench.core.atomic_file import write_bytes_atomic
from vdcbench.archive.condensed import CondensedSet
from vdcbench.core.errors import VdcError

GAP = 2            # pixels between frames
BLOCK_GAP = 6      # extra pixels between classes
MAX_SIDE = 32768   # pixels: a larger grid asks for --per-class, --max-classes or --tile
BACKGROUND = (255, 255, 255)
TEXT = (20, 20, 20)


def class_names(dataset: str, num_classes: int) -> list[str]:
    """Names of the classes where vdcbench knows them (the embedded data set), else numbers."""
    if dataset == "synthetic":
        from vdcbench.data.synthetic import CLASS_NAMES
        if len(CLASS_NAMES) >= num_classes:
            return list(CLASS_NAMES[:num_classes])
    return [f"class {k}" for k in range(num_classes)]


def frames_uint8(videos: torch.Tensor) -> np.ndarray:
    """(N, 3, T, H, W) uint8 or pixel-scale float -> (N, T, H, W, 3) uint8 for display."""
    v = videos.detach().to("cpu")
    if v.dtype != torch.uint8:
        v = (v.float().nan_to_num(0.0).clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return v.permute(0, 2, 3, 4, 1).contiguous().numpy()


def _tile(frame: np.ndarray, tile: int | None) -> Image.Image:
    image = Image.fromarray(frame)
    if tile is not None and max(image.size) > tile:
        scale = tile / max(image.size)
        image = image.resize((max(1, round(image.width * scale)),
                              max(1, round(image.height * scale))), Image.Resampling.BILINEAR)
    return image


def _selection(cs: CondensedSet, per_class: int | None,
               max_classes: int | None) -> list[tuple[int, list[int]]]:
    """(class, instance indices) for the classes present, in class order."""
    labels = cs.labels.detach().to("cpu", torch.int64).reshape(-1).tolist()
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(index)
    chosen = sorted(by_class.items())
    if max_classes is not None:
        chosen = chosen[:max_classes]
    return [(c, idx[:per_class] if per_class else idx) for c, idx in chosen]


def frame_grid(cs: CondensedSet, *, num_classes: int | None = None, per_class: int | None = None,
               max_classes: int | None = None, tile: int | None = None) -> Image.Image:
    """The frame grid of ``cs``: rows = instances grouped by class, columns = frames."""
    if cs.videos.ndim != 5 or cs.videos.shape[0] == 0:
        raise VdcError("the condensed set holds no videos to show")
    frames = frames_uint8(cs.videos)
    selection = _selection(cs, per_class, max_classes)
    names = class_names(cs.dataset, max(num_classes or 0, max(c for c, _ in selection) + 1))
    font = ImageFont.load_default()
    sample = _tile(frames[0, 0], tile)
    width, height = sample.size
    label_width = 8 + max(int(font.getlength(names[c])) for c, _ in selection)
    count = frames.shape[1]
    rows = sum(len(idx) for _, idx in selection)
    size = (label_width + count * (width + GAP),
            rows * (height + GAP) + (len(selection) - 1) * BLOCK_GAP)
    if max(size) > MAX_SIDE:
        raise VdcError(f"a grid of {rows} instances x {count} frames would be {size[0]}x{size[1]} "
                       "pixels; limit it with per_class / max_classes / tile (--per-class, "
                       "--max-classes, --tile)")
    canvas = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    y = 0
    for c, indices in selection:
        draw.text((4, y + 2), names[c], fill=TEXT, font=font)
        for index in indices:
            for t in range(count):
                canvas.paste(_tile(frames[index, t], tile), (label_width + t * (width + GAP), y))
            y += height + GAP
        y += BLOCK_GAP
    return canvas


def class_gifs(cs: CondensedSet, *, per_class: int | None = None, tile: int | None = None,
               duration_ms: int = 125) -> dict[int, bytes]:
    """An animated GIF per class: the class's instances side by side, played over time."""
    frames = frames_uint8(cs.videos)
    out = {}
    for c, indices in _selection(cs, per_class, None):
        sample = _tile(frames[indices[0], 0], tile)
        width, height = sample.size
        pictures = []
        for t in range(frames.shape[1]):
            canvas = Image.new("RGB", (len(indices) * (width + GAP) - GAP, height), BACKGROUND)
            for k, index in enumerate(indices):
                canvas.paste(_tile(frames[index, t], tile), (k * (width + GAP), 0))
            pictures.append(canvas.convert("P", palette=Image.Palette.ADAPTIVE, colors=255,
                                           dither=Image.Dither.NONE))
        buffer = io.BytesIO()
        pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:],
                         duration=duration_ms, loop=0, optimize=False, disposal=1)
        out[c] = buffer.getvalue()
    return out


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


@dataclass(frozen=True)
class ShowResult:
    png: Path
    gifs: tuple[Path, ...]
    classes: int
    instances: int


def show(archive: str | os.PathLike[str], output: str | os.PathLike[str] | None = None, *,
         per_class: int | None = None, max_classes: int | None = None, tile: int | None = None,
         gif_dir: str | os.PathLike[str] | None = None) -> ShowResult:
    """Read (and verify) an archive and write its frame grid as a PNG (default:
    ``<archive name>-grid.png`` in the current directory); with ``gif_dir``, also an animated
    GIF per class there."""
    from vdcbench.archive import read_archive

    target = (Path(output) if output is not None
              else Path(Path(archive).name.split(".")[0] + "-grid.png"))
    if target.suffix.lower() != ".png":
        raise VdcError(f"the grid is written as PNG; name the output *.png, not {target.name}")
    loaded = read_archive(archive)
    cs = loaded.condensed
    grid = frame_grid(cs, num_classes=loaded.track.num_classes, per_class=per_class,
                      max_classes=max_classes, tile=tile)
    write_bytes_atomic(target, png_bytes(grid))
    gifs = []
    if gif_dir is not None:
        names = class_names(cs.dataset, loaded.track.num_classes)
        for c, data in class_gifs(cs, per_class=per_class, tile=tile).items():
            path = Path(gif_dir) / f"{c:03d}-{_safe(names[c])}.gif"
            write_bytes_atomic(path, data)
            gifs.append(path)
    selection = _selection(cs, per_class, max_classes)
    return ShowResult(png=target, gifs=tuple(gifs), classes=len(selection),
                      instances=sum(len(i) for _, i in selection))


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name)
