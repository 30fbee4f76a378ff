"""Collections for the leakage check: textured videos that differ from seed to seed, and copies
of one that are re-encoded, centre-cropped and shifted in time, as a careless collection holds."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

HEIGHT, WIDTH, FRAMES, FPS = 96, 128, 40, 25


def textured_frames(seed: int, frames: int = FRAMES) -> np.ndarray:
    """(frames, H, W, 3) uint8: a smooth random scene, panning one pixel a frame, with a bright
    square crossing it; scenes of two seeds share nothing."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(6, 8, 3)).astype(np.float32)
    big_h, big_w = HEIGHT + 8, WIDTH + frames + 8
    ys = np.linspace(0, 5, big_h)
    xs = np.linspace(0, 7, big_w)
    y0, x0 = np.floor(ys).astype(int).clip(0, 4), np.floor(xs).astype(int).clip(0, 6)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    scene = (coarse[y0][:, x0] * (1 - fy) * (1 - fx) + coarse[y0 + 1][:, x0] * fy * (1 - fx)
             + coarse[y0][:, x0 + 1] * (1 - fy) * fx + coarse[y0 + 1][:, x0 + 1] * fy * fx)
    out = np.empty((frames, HEIGHT, WIDTH, 3), dtype=np.uint8)
    top = int(rng.integers(10, HEIGHT - 30))
    for t in range(frames):
        frame = scene[4:4 + HEIGHT, t:t + WIDTH].copy()
        left = (3 * t) % (WIDTH - 20)
        frame[top:top + 20, left:left + 20] = 255
        out[t] = frame.clip(0, 255).astype(np.uint8)
    return out


def encode(path: Path, frames: np.ndarray, qscale: int = 2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"qscale": str(qscale)}
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def careless_copy(frames: np.ndarray, crop: float, shift: int) -> np.ndarray:
    """The footage cropped by ``crop`` of each side and starting ``shift`` frames later."""
    h, w = frames.shape[1:3]
    top, left = int(round(h * crop)), int(round(w * crop))
    return frames[shift:, top:h - top, left:w - left]


def make_collection(root: Path, copies: bool) -> tuple[Path, Path, list[tuple[str, str]]]:
    """``root/<class>/v<k>.avi``, two classes of four distinct videos (three train, one val by
    the split file), plus with ``copies`` two validation videos that are careless copies of
    training ones. Returns (root, split file, [(train key, val key) of each copy])."""
    lines, pairs = [], []
    seed = 0
    for cls in ("left", "right"):
        for k in range(4):
            encode(root / cls / f"v{k}.avi", textured_frames(seed))
            lines.append(f"{cls}/v{k}.avi {'val' if k == 3 else 'train'}")
            seed += 1
    if copies:
        for cls, source, crop, shift in (("left", 0, 0.05, 6), ("right", 1, 0.08, 10)):
            original = textured_frames(0 if cls == "left" else 5)
            name = f"copy-of-v{source}.avi"
            encode(root / cls / name, careless_copy(original, crop, shift), qscale=8)
            lines.append(f"{cls}/{name} val")
            pairs.append((f"{cls}/v{source}.avi", f"{cls}/{name}"))
    split = root.parent / f"{root.name}-split.txt"
    split.write_text("\n".join(lines) + "\n")
    return root, split, pairs
