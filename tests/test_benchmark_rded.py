"""Speed of RDED's candidate scoring against the teacher's bare forward on the same views.

Run on an idle machine with ``python -m pytest tests/test_benchmark_rded.py --benchmark-enable``.
One class of ``synthetic`` at the study's setting (70 videos × 5 windows = 350 candidate views,
scored 50 at a time by the shipped MiniC3D teacher):

* harness: ``select_class`` — read each window from the split, random-resized-crop and flip it,
  quantise to uint8, normalise, forward, cross-entropy, keep each video's best view, rank.
* bare: the teacher's forward over the same 350 views, already cut and normalised, in the same
  batches of 50.

Both report ``clips_per_second`` in extra_info; the overhead is harness / bare - 1.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vdcbench.core.artifacts import ArtifactStore
from vdcbench.methods.base import CondensationTask
from vdcbench.methods.rded import (ViewSpec, draw_candidates, render_views, select_class,
                                   window_starts)
from vdcbench.train.teacher import find_teacher, load_teacher
from vdcbench.train.augment import Normalize, to_unit_float

MIPC, NUM_CROP, BATCH, LABEL = 70, 5, 50, 3


@pytest.fixture(scope="module")
def scoring(protocol, tmp_path_factory):
    dataset = protocol.dataset("synthetic")
    if find_teacher(protocol, "synthetic", "minic3d") is None:
        pytest.skip("no synthetic MiniC3D teacher")
    torch.manual_seed(0)
    track = protocol.track("synthetic", "ipc1-t8")
    task = CondensationTask(protocol, track, "hard", 0, ArtifactStore(tmp_path_factory.mktemp("a")))
    split = task.train
    members = np.flatnonzero(split.labels.numpy() == LABEL)
    drawn = np.sort(task.rng(LABEL).choice(members, size=MIPC, replace=False))
    intervals = np.array([split.interval(int(v), protocol.sampling) for v in drawn])
    starts = np.stack([window_starts(int(split.lengths[int(v)]), int(s), track.frames, NUM_CROP)
                       for v, s in zip(drawn, intervals)])
    height, width = split.frame_size
    candidates = draw_candidates(task, LABEL, drawn, starts, height, width, intervals)
    spec = ViewSpec(frames=track.frames, interval=None, size=dataset.crop, input_size=dataset.crop)
    trainer = protocol.trainer
    normalize = Normalize(trainer.normalize_mean, trainer.normalize_std)
    net = load_teacher(protocol, dataset, "minic3d").net
    return split, candidates, spec, normalize, net


def _rate(benchmark) -> None:
    if benchmark.stats is not None:      # None under --benchmark-disable (one plain call)
        benchmark.extra_info["clips_per_second"] = MIPC * NUM_CROP / benchmark.stats.stats.median


def test_rded_select_class(benchmark, scoring):
    split, candidates, spec, normalize, net = scoring
    benchmark.group = "rded candidate scoring"
    benchmark.extra_info["clips"] = MIPC * NUM_CROP
    chosen = benchmark.pedantic(select_class, args=(net, split, LABEL, candidates, 1, spec,
                                                    normalize, BATCH), rounds=3, warmup_rounds=1)
    _rate(benchmark)
    assert chosen.views.shape[0] == 1 and np.isfinite(chosen.all_losses).all()


def test_teacher_bare_forward(benchmark, scoring):
    split, candidates, spec, normalize, net = scoring
    videos = np.repeat(candidates.video_ids, NUM_CROP)
    windows = np.tile(np.arange(NUM_CROP), MIPC)
    pos = np.repeat(np.arange(MIPC), NUM_CROP)
    views = render_views(split, videos, candidates.starts[pos, windows],
                         candidates.boxes[pos, windows], candidates.flips[pos, windows], spec,
                         candidates.intervals[pos])
    inputs = [normalize(to_unit_float(views[i:i + BATCH])) for i in range(0, len(views), BATCH)]
    net.eval()

    @torch.no_grad()
    def bare_forward():
        return [net(x) for x in inputs]

    benchmark.group = "rded candidate scoring"
    benchmark.extra_info["clips"] = MIPC * NUM_CROP
    logits = benchmark.pedantic(bare_forward, rounds=3, warmup_rounds=1)
    _rate(benchmark)
    assert sum(x.shape[0] for x in logits) == MIPC * NUM_CROP
