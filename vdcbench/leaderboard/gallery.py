"""Pictures of a condensed set (the study's Figures 5 and 6): a frame grid per class as a PNG,
an animated GIF per class, and the leaderboard's contact sheet of a whole archive.

The grid has one row per instance, grouped by class (the class name on the left of the first
row of each block), and one column per frame. The contact sheet (:func:`contact_sheet`) has one
row per class and every clip in it as a few key frames, under a header naming the archive.
Float videos (pixel scale, unclamped for
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
SHEET_FONT_SIZE = 12
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


def _font(size: int):
    """Pillow's own font at ``size`` (Pillow 10.1 and later; older ones have one size only)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


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


def key_frames(count: int, wanted: int = 3) -> list[int]:
    """``wanted`` frame indices spread over ``count`` frames, first and last included (so a
    motion's start and end are both shown)."""
    if count <= wanted:
        return list(range(count))
    return sorted({round(k * (count - 1) / (wanted - 1)) for k in range(wanted)})


def contact_sheet(cs: CondensedSet, *, archive_sha256: str, num_classes: int | None = None,
                  per_class: int | None = None, max_classes: int | None = None,
                  frames: int = 3, tile: int | None = None) -> Image.Image:
    """Every clip of ``cs`` on one sheet, as a function of the whole archive: a header naming
    the archive (method, track, label strategy, hash, clip count), then a row per class with
    each of its clips (up to ``per_class``) as ``frames`` key frames side by side.

    Unlike :func:`frame_grid`, which shows every frame of the first clips, this shows every clip,
    so two sets that share their first clip per class (a method at IPC 1 and at IPC 10) still
    look different; the header tells apart archives that share their clips (the same clips under
    two label strategies)."""
    if cs.videos.ndim != 5 or cs.videos.shape[0] == 0:
        raise VdcError("the condensed set holds no videos to show")
    video = frames_uint8(cs.videos)
    selection = _selection(cs, per_class, max_classes)
    names = class_names(cs.dataset, max(num_classes or 0, max(c for c, _ in selection) + 1))
    picks = key_frames(video.shape[1], frames)
    font = _font(SHEET_FONT_SIZE)
    stored = " (stored)" if cs.soft_labels is not None else ""
    shown = sum(len(idx) for _, idx in selection)
    header = [f"{cs.method.name} · {cs.track} · labels: {cs.label_strategy}{stored}",
              f"archive {archive_sha256[:12]} · {cs.num_instances} clips"
              + (f" ({shown} shown)" if shown != cs.num_instances else "")
              + f" · frames {', '.join(str(t + 1) for t in picks)} of {video.shape[1]}"]
    line = max(font.getbbox(text)[3] for text in header) + 3
    width, height = _tile(video[0, 0], tile).size
    clip_width = len(picks) * (width + 1) - 1
    label_width = 8 + max(int(font.getlength(names[c])) for c, _ in selection)
    most = max(len(idx) for _, idx in selection)
    top = len(header) * line + BLOCK_GAP
    size = (max(label_width + most * (clip_width + BLOCK_GAP),
                8 + max(int(font.getlength(text)) for text in header)),
            top + len(selection) * (height + GAP))
    if max(size) > MAX_SIDE:
        raise VdcError(f"a sheet of {shown} clips would be {size[0]}x{size[1]} pixels; limit it "
                       "with per_class / max_classes / tile")
    canvas = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for k, text in enumerate(header):
        draw.text((4, 2 + k * line), text, fill=TEXT, font=font)
    y = top
    for c, indices in selection:
        draw.text((4, y + max(0, (height - line) // 2)), names[c], fill=TEXT, font=font)
        for k, index in enumerate(indices):
            x = label_width + k * (clip_width + BLOCK_GAP)
            for j, t in enumerate(picks):
                canvas.paste(_tile(video[index, t], tile), (x + j * (width + 1), y))
        y += height + GAP
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


def png_bytes(image: Image.Image, *, palette: bool = False) -> bytes:
    """PNG bytes without metadata; with ``palette``, reduced to 256 colours first (no dither,
    so the same image gives the same bytes) for pictures that must stay light."""
    if palette:
        # Octree: a hundredth of median cut's time on a sheet, and as deterministic.
        image = image.quantize(colors=256, method=Image.Quantize.FASTOCTREE,
                               dither=Image.Dither.NONE)
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
