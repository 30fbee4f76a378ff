"""``vdcbench prepare`` on a tiny copy of every official layout: classes, split counts, the skip
report (corrupt and zero-length videos), and clip sampling of a video shorter than a clip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import video_fixtures as fx

from vdcbench.cli import main
from vdcbench.data.sampling import clip_indices, clip_interval, validation_start
from vdcbench.data.splits import store_split
from vdcbench.data.store import open_store
from vdcbench.protocol import load_protocol

LAYOUTS = {"ucf101": fx.make_ucf101, "hmdb51": fx.make_hmdb51,
           "kinetics400": fx.make_kinetics400, "ssv2": fx.make_ssv2,
           "rawframes": fx.make_rawframes}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VDCBENCH_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_prepare_each_official_layout(layout, tmp_path):
    expected = fx.EXPECTED[layout]
    root = LAYOUTS[layout](tmp_path / "src")
    out = tmp_path / "store"
    extra = ["--option", "classes=classes.txt"] if layout == "rawframes" else []
    result = CliRunner().invoke(main, ["prepare", layout, "--root", str(root), "--out", str(out),
                                       *extra])
    assert result.exit_code == 0, result.output

    store = open_store(out)
    assert store.classes == expected.classes
    failed = {key for key, _reason in store.manifest.failed}
    assert failed == set(expected.corrupt + expected.empty), store.manifest.failed
    for key in failed:                       # the report names each skipped video
        assert key in result.output
    assert len(store.manifest.missing) == expected.missing
    stored = {split: len(store.index.rows(split)) for split in ("train", "val")}
    assert stored["train"] + stored["val"] + len(failed) == expected.train + expected.val
    assert not failed & set(store.index.keys)

    # The short video is kept, and its 8-frame clip repeats frames instead of failing.
    protocol = load_protocol()
    dataset = protocol.datasets.get(store.dataset) or protocol.dataset("folder")
    row = store.index.keys.index(expected.short[0])
    length = int(store.index.lengths[row])
    assert 0 < length < protocol.sampling.frames
    split = store_split(store, dataset, store.index.splits[row])
    video = int(np.flatnonzero(split.frames.rows == row)[0])     # its position in the split
    interval = clip_interval(length, protocol.sampling, dataset)
    frames = clip_indices(length, validation_start(length, interval, 8), interval, 8)
    clip = split.clip(video, frames)
    assert clip.shape == (3, 8, *store.resize) and len(set(frames.tolist())) == length
    assert json.loads((out / "manifest.json").read_text())["sha256"] == store.sha256
