"""Speed of serving random 8-frame slide-window clips: from the frame stores vs from the videos.

Run with ``python -m pytest tests/test_benchmark_store.py --benchmark-enable``; all three sit in
one group, each round reading the same ``CLIPS`` random (video, start) clips at 128x170:

* raw store: ``VideoSplit.clip`` — a copy of 8 frames out of the memory-mapped raw store;
* jpeg store: ``VideoSplit.clip`` — 8 byte ranges looked up and 8 JPEGs decoded;
* pyav: open the source video, seek to the keyframe before the window, decode to its last frame
  and resize the 8 frames as ``prepare`` does — the cheapest way to get the same clip without a
  store.

The source is five recordings of ``../shared/data/real/kth-sample`` (160x120 MPEG-4, 25 fps,
a 57-frame window at interval 8) when present, else five encoded videos of the same shape. By
default (--benchmark-disable) each function runs once, as a test that the raw store and PyAV give
the same pixels and the jpeg store the same within JPEG's loss.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from video_fixtures import encode_video

from vdcbench.data.decode import resize_frames
from vdcbench.data.listing import SourceListing, VideoEntry
from vdcbench.data.prepare import prepare_listing
from vdcbench.data.sampling import clip_indices, clip_interval, training_start
from vdcbench.data.splits import store_split

KTH = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "kth-sample"
CLIPS = 20
FRAMES = 8


def _sources(tmp: Path) -> list[Path]:
    if KTH.is_dir():
        return [sorted((KTH / cls).glob("*.avi"))[0] for cls in sorted(p.name for p in KTH.iterdir()
                                                                        if p.is_dir())]
    return [encode_video(tmp / f"v{i}.avi", 300, height=120, width=160, fps=25, seed=i)
            for i in range(5)]


@pytest.fixture(scope="module")
def setup(protocol, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench-store")
    paths = _sources(tmp)
    entries = tuple(VideoEntry(key=f"{i:02d}/{p.name}", path=p, label=i, split="train")
                    for i, p in enumerate(paths))
    listing = SourceListing(dataset="folder", root=tmp, classes=tuple(str(i) for i in range(len(paths))),
                            entries=entries)
    ds = dataclasses.replace(protocol.dataset("folder"), name="bench", classes=listing.classes,
                             num_classes=len(paths))
    splits = {}
    for frame_format in ("raw", "jpeg"):
        report = prepare_listing(listing, directory=tmp / frame_format, name="bench",
                                 dataset="folder", resize=tuple(ds.resize),
                                 frame_format=frame_format)
        splits[frame_format] = store_split(report.store, ds, "train")
    split = splits["raw"]
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(CLIPS):
        video = int(rng.integers(0, len(split)))
        length = int(split.lengths[video])
        step = clip_interval(length, protocol.sampling, ds)
        start = training_start(length, step, FRAMES, rng)
        draws.append((video, clip_indices(length, start, step, FRAMES)))
    return splits, paths, draws, tuple(ds.resize)


def store_clips(split, draws) -> list[torch.Tensor]:
    return [split.clip(video, index) for video, index in draws]


def pyav_clip(path: Path, index: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """The frames ``index`` of ``path``: seek before the first, decode through the last, resize."""
    wanted = {int(i): n for n, i in enumerate(index)}
    last = int(index.max())
    frames: list[np.ndarray | None] = [None] * len(index)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate
        container.seek(int(Fraction(int(index.min())) / rate / stream.time_base), stream=stream,
                       backward=True, any_frame=False)
        for frame in container.decode(stream):
            number = round(frame.time * rate)
            if number in wanted:
                frames[wanted[number]] = frame.to_ndarray(format="rgb24")
            if number >= last:
                break
    rgb = torch.from_numpy(np.stack(frames))
    return resize_frames(rgb, size).permute(3, 0, 1, 2)


def pyav_clips(paths, draws, size) -> list[torch.Tensor]:
    return [pyav_clip(paths[video], index, size) for video, index in draws]


def test_raw_store_clips(benchmark, setup):
    splits, _, draws, _ = setup
    benchmark.group = "8-frame clips at 128x170"
    benchmark.extra_info["clips_per_round"] = CLIPS
    clips = benchmark(store_clips, splits["raw"], draws)
    assert len(clips) == CLIPS and clips[0].shape == (3, FRAMES, 128, 170)


def test_jpeg_store_clips(benchmark, setup):
    splits, _, draws, _ = setup
    benchmark.group = "8-frame clips at 128x170"
    benchmark.extra_info["clips_per_round"] = CLIPS
    clips = benchmark(store_clips, splits["jpeg"], draws)
    # The same clips as the raw store's, within JPEG's loss.
    for clip, exact in zip(clips, store_clips(splits["raw"], draws)):
        assert clip.shape == exact.shape
        assert (clip.to(torch.int16) - exact.to(torch.int16)).abs().float().mean() < 3


def test_pyav_clips(benchmark, setup):
    splits, paths, draws, size = setup
    benchmark.group = "8-frame clips at 128x170"
    benchmark.extra_info["clips_per_round"] = CLIPS
    clips = benchmark(pyav_clips, paths, draws, size)
    # The comparison is fair: the raw store and PyAV serve the very same pixels.
    for clip, expected in zip(clips, store_clips(splits["raw"], draws)):
        assert torch.equal(clip, expected)
