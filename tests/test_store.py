"""The frame store: decoding, writing, reading clips, hashing, resuming, skipping, caching, in
both frame formats (raw, jpeg).

Videos are tiny (32x24, 5-20 frames) and the resize small (16x20), so the whole module runs in
seconds; one test compares a store at the protocol's 128x170 against PyAV directly.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from video_fixtures import encode_video, write_corrupt, write_empty

from vdcbench.data.decode import decode_entries, resize_frames
from vdcbench.data.frame_formats import JPEG_FILE, JPEG_OFFSETS_FILE
from vdcbench.data.listing import SourceListing, VideoEntry
from vdcbench.data.prepare import PARTS_DIR, prepare_listing
from vdcbench.data.splits import store_split
from vdcbench.data.store import (CACHE_DIR, FRAMES_FILE, MANIFEST_FILE, bytes_per_hour,
                                 find_store, open_store, verify_store)
from vdcbench.core.errors import UnknownNameError, VdcError
from vdcbench.protocol import canonical_sha256

RESIZE = (16, 20)
CLASSES = ("jump", "wave")
# (class, name, frames, split); the corrupt and empty files are added by ``_layout``.
VIDEOS = [("jump", "a.avi", 12, "train"), ("jump", "b.avi", 20, "train"), ("jump", "c.avi", 9, "val"),
          ("wave", "d.avi", 15, "train"), ("wave", "e.avi", 5, "train"), ("wave", "f.avi", 10, "val")]
BROKEN = {"jump/corrupt.avi": "corrupt", "wave/empty.avi": "empty"}


def _layout(root: Path) -> SourceListing:
    entries = []
    for seed, (cls, name, frames, split) in enumerate(VIDEOS):
        path = encode_video(root / cls / name, frames, seed=seed)
        entries.append(VideoEntry(key=f"{cls}/{name}", path=path, label=CLASSES.index(cls),
                                  split=split))
    write_corrupt(root / "jump" / "corrupt.avi")
    write_empty(root / "wave" / "empty.avi")
    for key in BROKEN:
        cls = key.split("/")[0]
        entries.append(VideoEntry(key=key, path=root / key, label=CLASSES.index(cls), split="train"))
    return SourceListing(dataset="folder", root=root, classes=CLASSES,
                         entries=tuple(sorted(entries, key=lambda e: e.key)),
                         split_description="hand-made")


def _prepare(listing, directory, **kwargs):
    return prepare_listing(listing, directory=directory, name="tiny", dataset="folder",
                           resize=RESIZE, **kwargs)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-videos")
    listing = _layout(root)
    report = _prepare(listing, tmp_path_factory.mktemp("tiny-store"))
    return listing, report


def _decoded(listing, key):
    entry = next(e for e in listing.entries if e.key == key)
    return decode_entries([entry], RESIZE)[0].frames


def test_store_round_trip_clips_equal_the_decoded_frames(tiny):
    listing, report = tiny
    store = report.store
    assert store.index.keys == tuple(sorted(k for k in (f"{c}/{n}" for c, n, *_ in VIDEOS)))
    assert store.frame_format == "raw"
    assert store.frames.array.shape == (12 + 20 + 9 + 15 + 5 + 10, *RESIZE, 3)
    for row, key in enumerate(store.index.keys):
        assert np.array_equal(store.video_frames(row), _decoded(listing, key))
    train = store_split(store, _folder_dataset(), "train")
    assert train.lengths.tolist() == [12, 20, 15, 5]
    assert train.labels.tolist() == [0, 0, 1, 1]
    assert train.frame_size == RESIZE
    frames = _decoded(listing, "jump/b.avi")
    index = np.array([1, 3, 5, 7, 9, 11, 13, 19])
    clip = train.clip(1, index)
    assert clip.dtype == torch.uint8 and clip.shape == (3, 8, *RESIZE)
    assert torch.equal(clip, torch.from_numpy(frames[index]).permute(3, 0, 1, 2))
    batch = train.clips([1, 0], [index, np.arange(8)])
    assert torch.equal(batch[0], clip) and torch.equal(batch[1], train.clip(0, np.arange(8)))
    with pytest.raises(IndexError):
        train.clip(3, np.arange(8))     # a 5-frame video: never read into the next one


def _folder_dataset():
    import dataclasses
    from vdcbench.protocol import load_protocol
    folder = load_protocol(1).dataset("folder")
    return dataclasses.replace(folder, name="tiny", classes=CLASSES, num_classes=2, resize=RESIZE)


def test_decoded_frames_are_pyav_rgb24_resized_bilinear_antialiased(tiny):
    listing, _ = tiny
    entry = next(e for e in listing.entries if e.key == "wave/d.avi")
    with av.open(str(entry.path)) as container:
        raw = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    x = torch.from_numpy(raw).permute(0, 3, 1, 2).float() / 255
    y = torch.nn.functional.interpolate(x, size=RESIZE, mode="bilinear", antialias=True)
    expected = (y * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(_decoded(listing, "wave/d.avi"), expected)
    same = torch.from_numpy(raw[:2])
    assert resize_frames(same, raw.shape[1:3]) is not None
    assert torch.equal(resize_frames(same, raw.shape[1:3]), same)


def test_failed_videos_are_reported_and_skipped(tiny):
    _, report = tiny
    assert [key for key, _ in report.failed] == sorted(BROKEN)
    assert all(reason for _, reason in report.failed)
    manifest = report.store.manifest
    assert [f[0] for f in manifest.failed] == sorted(BROKEN)
    assert not set(BROKEN) & set(report.store.index.keys)
    assert manifest.videos == {"train": 4, "val": 2}
    assert manifest.split["listed"] == {"train": 6, "val": 2}


def test_manifest_records_versions_hash_and_size(tiny):
    store = tiny[1].store
    m = json.loads((store.path / MANIFEST_FILE).read_text())
    assert m["versions"]["pyav"] == av.__version__ and "libavcodec" in m["versions"]["ffmpeg"]
    assert m["versions"]["torch"] == torch.__version__ and "vdcbench" in m["versions"]
    assert m["resize"] == list(RESIZE) and m["classes"] == list(CLASSES)
    assert m["size_bytes"] >= (store.path / FRAMES_FILE).stat().st_size
    assert len(m["sha256"]) == 64 and m["sha256"] == store.sha256
    assert not (store.path / PARTS_DIR).exists()


def test_two_prepares_give_the_same_store_hash(tiny, tmp_path):
    listing, report = tiny
    again = _prepare(listing, tmp_path / "again", workers=2)
    assert again.store.sha256 == report.store.sha256
    assert (tmp_path / "again" / FRAMES_FILE).read_bytes() == \
        (report.store.path / FRAMES_FILE).read_bytes()


def test_an_interrupted_prepare_resumes_from_its_parts(tiny, tmp_path):
    listing, report = tiny
    seen = []

    def interrupt(done, total, what):
        seen.append(done)
        if done >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _prepare(listing, tmp_path / "resume", progress=interrupt)
    assert not (tmp_path / "resume" / MANIFEST_FILE).exists()
    parts = list((tmp_path / "resume" / PARTS_DIR).glob("*.npy"))
    assert len(parts) == 3
    resumed = _prepare(listing, tmp_path / "resume")
    assert resumed.resumed == 3 and resumed.decoded == 3
    assert resumed.store.sha256 == report.store.sha256
    # A complete store of the same listing is left as it is.
    again = _prepare(listing, tmp_path / "resume")
    assert again.already_prepared and again.decoded == 0


def test_a_store_of_other_videos_is_not_overwritten_silently(tiny, tmp_path):
    listing, _ = tiny
    _prepare(listing, tmp_path / "s")
    fewer = SourceListing(dataset="folder", root=listing.root, classes=CLASSES,
                          entries=listing.entries[:-1])
    with pytest.raises(VdcError, match="--overwrite"):
        _prepare(fewer, tmp_path / "s")
    assert len(_prepare(fewer, tmp_path / "s", overwrite=True).store.index) == 5


def test_clip_reads_do_not_touch_the_source_videos(tiny, tmp_path):
    listing, report = tiny
    copy = tmp_path / "store"
    shutil.copytree(report.store.path, copy)
    moved = tmp_path / "gone"
    shutil.move(str(listing.root), str(moved))
    try:
        from vdcbench.data.splits import store_split
        split = store_split(open_store(copy), _folder_dataset(), "val")
        assert split.clips([0, 1], [np.arange(8), np.arange(8)]).shape == (2, 3, 8, *RESIZE)
    finally:
        shutil.move(str(moved), str(listing.root))


def _verify_with_a_flipped_byte(store, tmp_path, name, position, mask):
    """Verify a copy of ``store`` whose file ``name`` has one byte XOR-ed with ``mask``."""
    copy = tmp_path / "damaged"
    shutil.copytree(store.path, copy)
    data = bytearray((copy / name).read_bytes())
    data[position] ^= mask
    (copy / name).write_bytes(bytes(data))
    return verify_store(open_store(copy))


def test_verify_finds_damaged_frames(tiny, tmp_path):
    _, report = tiny
    assert verify_store(report.store).ok
    result = _verify_with_a_flipped_byte(report.store, tmp_path, FRAMES_FILE, -1, 0xFF)
    assert not result.ok and "wave/f.avi" in result.problems[0]


def test_an_empty_listing_and_an_unwritable_output_are_refused(tiny, tmp_path):
    listing, _ = tiny
    with pytest.raises(VdcError, match="no videos"):
        _prepare(SourceListing(dataset="folder", root=tmp_path, classes=CLASSES, entries=()),
                 tmp_path / "x")
    (tmp_path / "file").write_text("")
    with pytest.raises(VdcError, match="output"):
        _prepare(listing, tmp_path / "file" / "store")


def test_clip_cuts_come_from_one_pass_by_presentation_time(tmp_path):
    path = encode_video(tmp_path / "long.avi", 30, fps=10, seed=3)
    cuts = [VideoEntry(key=f"v#{k}", path=path, label=0, split="train",
                       start_seconds=k * 1.0, end_seconds=(k + 1) * 1.0) for k in range(3)]
    whole = decode_entries([VideoEntry(key="v", path=path, label=0, split="train")], RESIZE)[0]
    parts = decode_entries(cuts, RESIZE)
    assert [len(p.frames) for p in parts] == [10, 10, 10]
    assert np.array_equal(np.concatenate([p.frames for p in parts]), whole.frames)
    assert parts[0].fps == 10.0


def test_clip_cuts_count_from_the_first_frame_when_the_stream_starts_late(tmp_path):
    import av
    from video_fixtures import video_frames
    path = tmp_path / "late.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        for number, image in enumerate(video_frames(20, 24, 32, seed=5)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = number + 15           # the first frame is shown at 1.5 s
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    cuts = [VideoEntry(key=f"v#{k}", path=path, label=0, split="train",
                       start_seconds=k * 1.0, end_seconds=(k + 1) * 1.0) for k in range(2)]
    assert [len(p.frames) for p in decode_entries(cuts, RESIZE)] == [10, 10]


# ----------------------------------------------------------------- data sets on the store
def _install(report, name):
    """Put a prepared store under the test cache's stores folder as ``name``."""
    from vdcbench.data.store import stores_root
    target = stores_root() / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(report.store.path, target)
    manifest = json.loads((target / MANIFEST_FILE).read_text())
    manifest["name"] = name
    (target / MANIFEST_FILE).write_text(json.dumps(manifest))
    return target


def test_a_prepared_collection_resolves_to_the_folder_data_set(tiny, protocol):
    from vdcbench.data.datasets import resolve_dataset
    _install(tiny[1], "tiny-set")
    ds = resolve_dataset(protocol, "tiny-set")
    assert ds.name == "tiny-set" and ds.classes == CLASSES and ds.num_classes == 2
    assert ds.crop == protocol.dataset("folder").crop
    assert resolve_dataset(protocol, "ucf101") is protocol.dataset("ucf101")
    assert resolve_dataset(protocol, "folder").num_classes == 0
    with pytest.raises(UnknownNameError, match="tiny-set"):
        resolve_dataset(protocol, "tiny-sett")
    for hostile in ("../tiny-set", "/etc", "tiny-set/..", ""):
        assert find_store(hostile) is None


def test_unprepared_and_mis_sized_stores_name_the_command(tiny, protocol):
    import dataclasses
    from vdcbench.data.datasets import resolve_dataset
    from vdcbench.data.splits import dataset_sha256, open_split
    with pytest.raises(VdcError, match=r"vdcbench prepare hmdb51 --root PATH"):
        open_split(protocol.dataset("hmdb51"), "train")
    _install(tiny[1], "tiny-set")
    ds = resolve_dataset(protocol, "tiny-set")     # the protocol's 128x170, not this 16x20 store
    with pytest.raises(VdcError, match="prepare it again"):
        open_split(ds, "train")
    ok = dataclasses.replace(ds, resize=RESIZE)
    assert dataset_sha256(ok) == tiny[1].store.sha256
    assert len(open_split(ok, "val")) == 2


def test_validation_clips_are_cached_in_the_store(tiny, protocol, monkeypatch):
    import dataclasses
    from vdcbench.data import splits
    target = _install(tiny[1], "tiny-val")
    ds = dataclasses.replace(_folder_dataset(), name="tiny-val", crop=12)
    val = splits.open_split(ds, "val")
    first = splits.validation_clips(protocol, val)
    assert first.videos.shape == (2, 3, 8, 12, 12) and first.videos.dtype == torch.uint8
    cached = list((target / CACHE_DIR).glob("val-clips-*.safetensors"))
    assert len(cached) == 1
    monkeypatch.setattr(splits, "_validation_clips", lambda *a, **k: pytest.fail("recomputed"))
    again = splits.validation_clips(protocol, splits.open_split(ds, "val"))
    assert torch.equal(again.videos, first.videos) and torch.equal(again.labels, first.labels)
    # The centred window of each (short) video, centre-cropped.
    lengths = val.lengths.tolist()
    assert lengths == [9, 10]
    from vdcbench.data.sampling import center_crop, clip_indices, clip_interval, validation_start
    for v, n in enumerate(lengths):
        step = clip_interval(n, protocol.sampling, ds)
        index = clip_indices(n, validation_start(n, step, 8), step, 8)
        assert torch.equal(first.videos[v], center_crop(val.clip(v, index), 12))


def test_training_windows_follow_each_videos_length(tiny):
    from vdcbench.train.sources import VideoWindows
    store = tiny[1].store
    train = store_split(store, _folder_dataset(), "train")
    windows = VideoWindows(train, train.labels, 8, np.ones(len(train), dtype=np.int64))
    clips = windows.clips(np.arange(len(train)), seed=0, epoch=0)
    assert clips.shape == (4, 3, 8, *RESIZE)
    for i in range(len(train)):
        index = windows.frame_indices(i, 0, 0)
        assert index.max() < train.lengths[i]
        assert torch.equal(clips[i], train.clip(i, index))


def test_store_bytes_per_hour_at_128x170():
    assert bytes_per_hour(25, (128, 170)) == 90_000 * 65_280          # 5.9 GB an hour at 25 fps
    assert bytes_per_hour(30, (128, 170)) == 108_000 * 65_280


# ------------------------------------------------------------------------- jpeg stores
@pytest.fixture(scope="module")
def tiny_jpeg(tiny, tmp_path_factory):
    listing, _ = tiny
    return _prepare(listing, tmp_path_factory.mktemp("tiny-jpeg"), frame_format="jpeg")


def _mean_abs_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).mean())


def test_jpeg_store_clips_equal_the_decoded_frames_within_jpeg_tolerance(tiny, tiny_jpeg):
    listing, raw = tiny
    store = tiny_jpeg.store
    assert store.frame_format == "jpeg" and store.manifest.jpeg["quality"] == 90
    assert store.index.keys == raw.store.index.keys
    assert store.index.lengths.tolist() == raw.store.index.lengths.tolist()
    assert not (store.path / FRAMES_FILE).exists()
    offsets = np.load(store.path / JPEG_OFFSETS_FILE)
    assert offsets.dtype == np.int64 and offsets.shape == (store.manifest.total_frames + 1,)
    assert offsets[-1] == (store.path / JPEG_FILE).stat().st_size
    for row, key in enumerate(store.index.keys):
        frames = store.video_frames(row)
        assert frames.shape == (int(store.index.lengths[row]), *RESIZE, 3)
        assert _mean_abs_diff(frames, _decoded(listing, key)) < 3
    train = store_split(store, _folder_dataset(), "train")
    index = np.array([1, 3, 5, 7, 9, 11, 13, 19])
    clip = train.clip(1, index)
    assert clip.dtype == torch.uint8 and clip.shape == (3, 8, *RESIZE)
    expected = torch.from_numpy(_decoded(listing, "jump/b.avi")[index])
    assert _mean_abs_diff(clip, expected.permute(3, 0, 1, 2)) < 3
    batch = train.clips([1, 0], [index, np.arange(8)])
    assert torch.equal(batch[0], clip) and torch.equal(batch[1], train.clip(0, np.arange(8)))
    with pytest.raises(IndexError):
        train.clip(3, np.arange(8))
    # Lossy frames are other content: a jpeg store never shares a raw store's hash.
    assert store.sha256 != raw.store.sha256
    assert store.size_bytes() < raw.store.size_bytes()


def test_raw_stores_keep_the_hashes_of_stores_made_before_formats(tiny):
    listing, report = tiny
    store = report.store
    for row, key in enumerate(store.index.keys):
        frames = _decoded(listing, key)
        assert store.index.sha256[row] == hashlib.sha256(frames.tobytes()).hexdigest()
    before = canonical_sha256({
        "format": 1, "dataset": "folder", "classes": list(CLASSES), "resize": list(RESIZE),
        "videos": [[k, int(l), s, int(n), h] for k, l, s, n, h in
                   zip(store.index.keys, store.index.labels, store.index.splits,
                       store.index.lengths, store.index.sha256)]})
    assert store.sha256 == before


def test_two_jpeg_prepares_give_the_same_bytes_and_hash(tiny, tiny_jpeg, tmp_path):
    listing, _ = tiny
    again = _prepare(listing, tmp_path / "again", workers=2, frame_format="jpeg")
    assert again.store.sha256 == tiny_jpeg.store.sha256
    for name in (JPEG_FILE, JPEG_OFFSETS_FILE):
        assert (tmp_path / "again" / name).read_bytes() == \
            (tiny_jpeg.store.path / name).read_bytes()


def test_verify_finds_a_flipped_jpeg_byte(tiny_jpeg, tmp_path):
    assert verify_store(tiny_jpeg.store).ok
    result = _verify_with_a_flipped_byte(tiny_jpeg.store, tmp_path, JPEG_FILE, -100, 0x01)
    assert not result.ok and len(result.problems) == 1 and "wave/f.avi" in result.problems[0]


def test_an_interrupted_jpeg_prepare_resumes_from_its_parts(tiny, tiny_jpeg, tmp_path):
    listing, raw = tiny

    def interrupt(done, total, what):
        if done >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _prepare(listing, tmp_path / "resume", progress=interrupt, frame_format="jpeg")
    assert len(list((tmp_path / "resume" / PARTS_DIR).glob("*.jpg.bin"))) == 3
    resumed = _prepare(listing, tmp_path / "resume", frame_format="jpeg")
    assert resumed.resumed == 3 and resumed.decoded == 3
    assert resumed.store.sha256 == tiny_jpeg.store.sha256
    # The same videos in the other format are refused unless asked to replace them.
    with pytest.raises(VdcError, match="holds a jpeg store of these videos; pass --format jpeg"):
        _prepare(listing, tmp_path / "resume")
    replaced = _prepare(listing, tmp_path / "resume", overwrite=True)
    assert replaced.store.sha256 == raw.store.sha256
    assert not (tmp_path / "resume" / JPEG_FILE).exists()


def test_an_unknown_frame_format_is_refused(tiny, tmp_path):
    with pytest.raises(UnknownNameError, match="unknown store format 'png'"):
        _prepare(tiny[0], tmp_path / "png", frame_format="png")


def test_validation_clips_of_a_jpeg_store_are_cached(tiny_jpeg, protocol):
    import dataclasses
    from vdcbench.data import splits
    target = _install(tiny_jpeg, "tiny-val-jpeg")
    ds = dataclasses.replace(_folder_dataset(), name="tiny-val-jpeg", crop=12)
    val = splits.open_split(ds, "val")
    first = splits.validation_clips(protocol, val)
    assert first.videos.shape == (2, 3, 8, 12, 12)
    assert len(list((target / CACHE_DIR).glob(f"val-clips-{tiny_jpeg.store.sha256[:16]}-*"))) == 1
    again = splits.validation_clips(protocol, splits.open_split(ds, "val"))
    assert torch.equal(again.videos, first.videos)


def test_pillow_decodes_the_same_pixels_as_torchvision(tiny_jpeg):
    from vdcbench.data.jpeg import decode_frames, decode_frames_pillow
    reader = tiny_jpeg.store.frames
    jpegs = [bytearray(reader.blob[int(a):int(b)])
             for a, b in zip(reader.offsets[:-1], reader.offsets[1:])]
    assert torch.equal(decode_frames(jpegs), decode_frames_pillow(jpegs))


def test_store_manifest_round_trips_the_written_json(tiny, tiny_jpeg):
    from vdcbench.data.store import StoreManifest
    for store in (tiny[1].store, tiny_jpeg.store):
        text = (store.path / MANIFEST_FILE).read_text()
        manifest = StoreManifest.from_dict(json.loads(text))
        assert manifest == store.manifest
        assert json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n" == text


def test_store_manifest_keeps_keys_of_older_or_newer_stores():
    from vdcbench.data.store import FORMAT, FORMAT_VERSION, StoreManifest
    old = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": "x", "dataset": "folder",
           "classes": ["a"], "num_classes": 1, "resize": [4, 4], "videos": {"train": 1, "val": 0},
           "total_frames": 3, "sha256": "0" * 64, "size_bytes": 9, "versions": {},
           "note": {"kept": [1]}}
    manifest = StoreManifest.from_dict(old)
    assert manifest.frame_format is None and manifest.failed is None
    assert manifest.to_dict() == old
