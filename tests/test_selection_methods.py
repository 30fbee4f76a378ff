"""The selection baselines: their selection logic on hand-made inputs, then end to end on synthetic."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from vdcbench.core.errors import VdcError
from vdcbench.core.artifacts import ArtifactStore
from vdcbench.methods.base import CondensationTask
from vdcbench.methods.forgetting import (Forgetting, ForgettingCounter, _ObservingTrainer,
                                         fixed_view_config, most_forgotten)
from vdcbench.methods.herding import Herding, herding_order
from vdcbench.methods.kcenter import KCenter, kcenter_order
from vdcbench.methods.rded import (RDED, Candidates, ViewSpec, best_windows, rank_videos,
                                   select_class, stitch, window_starts)
from vdcbench.protocol import Track
from vdcbench.train.augment import Normalize, to_unit_float
from vdcbench.train.sources import StoredClips


# ------------------------------------------------------------------------------------ herding
def test_herding_first_pick_is_the_point_nearest_the_class_mean():
    features = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [4.0, 3.0], [9.0, 9.0]])
    mean = features.mean(axis=0)                                        # (4.6, 4.4)
    nearest = int(np.argmin(np.linalg.norm(features - mean, axis=1)))
    assert herding_order(features, 1)[0] == nearest == 3


def test_herding_is_argmin_greedy_mean_matching():
    # 1-d points, mean 3.25. Step 0: nearest to 3.25 is 2. Step 1: target 6.5 - 2 = 4.5, nearest
    # remaining is 1. Step 2: target 9.75 - 3 = 6.75, nearest remaining is 10. Then 0.
    # (DeepCore's argmax would start from 10, the farthest from the mean.)
    features = np.array([[0.0], [1.0], [2.0], [10.0]])
    assert herding_order(features, 4).tolist() == [2, 1, 3, 0]
    assert herding_order(torch.tensor(features), 2).tolist() == [2, 1]


def test_herding_argmax_is_deepcores_variant_that_runs_away_from_the_mean():
    # Same points. Step 0: farthest from 3.25 is 10. Step 1: target 6.5 - 10 = -3.5, farthest
    # remaining is 2. Step 2: target 9.75 - 12 = -2.25, farthest is 1. Then 0.
    features = np.array([[0.0], [1.0], [2.0], [10.0]])
    assert herding_order(features, 4, "argmax").tolist() == [3, 2, 1, 0]
    with pytest.raises(VdcError, match="criterion"):
        Herding.config_from_strings({"criterion": "max"})
    assert Herding.config_from_strings({"criterion": "argmax"}).criterion == "argmax"


def test_herding_never_picks_a_point_twice():
    features = np.ones((5, 3))
    assert sorted(herding_order(features, 5).tolist()) == [0, 1, 2, 3, 4]


# ----------------------------------------------------------------------------------- k-center
def test_kcenter_second_pick_is_the_point_farthest_from_the_first():
    features = np.array([[0.0, 0.0], [1.0, 1.0], [-3.0, 4.0], [2.0, -1.0], [6.0, 0.0]])
    for first in range(len(features)):
        order = kcenter_order(features, 2, first)
        farthest = int(np.argmax(np.linalg.norm(features - features[first], axis=1)))
        assert order.tolist() == [first, farthest]


def test_kcenter_keeps_the_minimum_distance_to_all_centres():
    # From 0: farthest is 10; then the point farthest from both 0 and 10 is 5 (min distance 5),
    # not 9 or 1 (min distance 1). Dancing's broadcast bug cannot get past two centres here.
    features = np.array([[0.0], [1.0], [5.0], [9.0], [10.0]])
    assert kcenter_order(features, 4, 0).tolist()[:3] == [0, 4, 2]
    assert sorted(kcenter_order(features, 5, 0).tolist()) == [0, 1, 2, 3, 4]


def test_kcenter_with_duplicate_points_still_picks_distinct_videos():
    assert sorted(kcenter_order(np.zeros((4, 2)), 4, 2).tolist()) == [0, 1, 2, 3]


# --------------------------------------------------------------------------------- forgetting
def test_forgetting_counter_counts_correct_to_wrong_transitions_exactly():
    counter = ForgettingCounter(4)
    # Example 0: T F T F -> 2 events. Example 1: F F T T -> 0. Example 2: T T F (unseen) F T -> 1.
    # Example 3 is never correct: 0 events (DeepCore starts every example at "wrong").
    counter.observe([0, 1, 2, 3], [True, False, True, False])
    counter.observe([0, 2], [False, True])
    counter.observe([1, 3], [False, False])
    counter.observe([0, 1, 2, 3], [True, True, False, False])
    counter.observe([0, 1], [False, True])
    counter.observe([2], [False])
    counter.observe([2, 3], [True, False])
    assert counter.events.tolist() == [2, 0, 1, 0]
    assert counter.last_correct.tolist() == [False, True, True, False]


def test_most_forgotten_keeps_the_largest_counts_and_breaks_ties_by_the_generator():
    events = np.array([1, 3, 0, 3, 2, 3])
    kept = most_forgotten(events, 4, np.random.default_rng(0))
    assert sorted(kept[:3].tolist()) == [1, 3, 5] and kept[3] == 4
    ties = {tuple(most_forgotten(events, 1, np.random.default_rng(s)).tolist()) for s in range(30)}
    assert ties == {(1,), (3,), (5,)}
    again = most_forgotten(events, 4, np.random.default_rng(0))
    assert again.tolist() == kept.tolist()


class _RecordingCounter(ForgettingCounter):
    def __init__(self, count):
        super().__init__(count)
        self.seen = []

    def observe(self, indices, correct):
        self.seen.append((np.array(indices), np.array(correct)))
        super().observe(indices, correct)


class _Pooled(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.fc = nn.Linear(3, classes)

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3, 4)))


def test_observing_trainer_sees_every_clip_once_per_epoch_in_its_training_batch(protocol):
    from vdcbench.train.teacher import teacher_fit_config

    dataset = protocol.dataset("synthetic")
    fit = fixed_view_config(teacher_fit_config(protocol, dataset,
                                               protocol.teacher_recipe(dataset, "minic3d"), 3))
    fit = dataclasses.replace(fit, batch_size=4, crop_size=8)
    clips = torch.randint(0, 256, (10, 3, 2, 8, 8), dtype=torch.uint8)
    labels = torch.arange(10) % 3
    torch.manual_seed(0)
    counter = _RecordingCounter(10)
    trainer = _ObservingTrainer(_Pooled(3), fit, StoredClips(clips, labels), seed=0,
                                counter=counter)
    trainer.fit(None)
    assert len(counter.seen) == 3 * 3                     # 3 epochs of batches 4 + 4 + 2
    for epoch in range(3):
        batches = trainer.batches(epoch)
        observed = counter.seen[3 * epoch:3 * epoch + 3]
        assert [b.tolist() for b in batches] == [idx.tolist() for idx, _ in observed]
    counts = np.bincount(np.concatenate([idx for idx, _ in counter.seen]), minlength=10)
    assert counts.tolist() == [3] * 10


# -------------------------------------------------------------------------------------- rded
def test_rded_window_starts_are_evenly_spaced_and_rounded_down():
    assert window_starts(32, 1, 8, 5).tolist() == [0, 6, 12, 18, 24]
    assert window_starts(30, 1, 8, 4).tolist() == [0, 7, 14, 22]
    assert window_starts(32, 1, 8, 1).tolist() == [0]
    assert window_starts(5, 1, 8, 3).tolist() == [0, 0, 0]      # too short: one (stretched) clip


def test_rded_keeps_each_videos_lowest_loss_window_then_the_lowest_videos():
    losses = np.array([[3.0, 1.0, 2.0], [0.5, 0.5, 4.0], [2.0, 2.5, 9.0]])
    window, best = best_windows(losses)
    assert window.tolist() == [1, 0, 0] and best.tolist() == [1.0, 0.5, 2.0]
    assert rank_videos(best, 2).tolist() == [1, 0]


def test_rded_stitch_tiles_rank_k_ipc_plus_i_into_cell_k_of_instance_i():
    ipc, factor, size = 2, 2, 3
    tiles = torch.arange(ipc * factor * factor, dtype=torch.uint8).view(-1, 1, 1, 1, 1)
    tiles = tiles.expand(-1, 3, 2, size, size).contiguous()
    out = stitch(tiles, ipc, factor)
    assert out.shape == (ipc, 3, 2, factor * size, factor * size)
    for i in range(ipc):
        for row in range(factor):
            for col in range(factor):
                cell = out[i, :, :, row * size:(row + 1) * size, col * size:(col + 1) * size]
                assert torch.all(cell == (row * factor + col) * ipc + i)


class _FakeTeacher(nn.Module):
    """Logit of class 0 = -|mean(x) - target| (class 1 fixed at 0); records every input."""

    def __init__(self, target: float):
        super().__init__()
        self.target = target
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.clone())
        score = -(x.mean(dim=(1, 2, 3, 4)) - self.target).abs()
        return torch.stack([score, torch.zeros_like(score)], dim=1)


def _candidates(video_ids, starts, height, width, seed=0, flips=True):
    rng = np.random.default_rng(seed)
    v, m = len(video_ids), len(starts)
    tops = rng.integers(0, height // 2, (v, m))
    lefts = rng.integers(0, width // 2, (v, m))
    sizes = rng.integers(height // 2, height // 2 + 1, (v, m))
    boxes = np.stack([tops, lefts, sizes, sizes], axis=-1).astype(np.int64)
    return Candidates(video_ids=np.asarray(video_ids), starts=np.tile(starts, (v, 1)),
                      boxes=boxes, flips=rng.integers(0, 2, (v, m)).astype(bool) & flips)


def test_rded_keeps_the_lowest_loss_window_per_video_and_stores_that_exact_view():
    # Frame f of video v is a flat image of value 10·v + f, so any crop of window s has mean
    # value 10·v + s + 1.5 (4 frames). Target 16 (identity normalisation, pixel scale):
    # video 0 is best at its last window (9.5), video 1 at window 1 (15.5), video 2 at window 0
    # (21.5); ranked by distance 0.5, 5.5, 6.5 -> videos 1, 2, 0.
    length, frames, size = 12, 4, 6
    values = (10 * torch.arange(3).view(3, 1) + torch.arange(length).view(1, length)).to(torch.uint8)
    videos = values.view(3, 1, length, 1, 1).expand(3, 3, length, 8, 8).contiguous()
    starts = window_starts(length, 1, frames, 3)
    assert starts.tolist() == [0, 4, 8]
    teacher = _FakeTeacher(target=16.0 / 255.0)
    identity = Normalize((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    spec = ViewSpec(frames=frames, interval=1, size=size, input_size=size)
    chosen = select_class(teacher, videos, 0, _candidates([0, 1, 2], starts, 8, 8), 2, spec,
                          identity, batch_size=2)
    assert chosen.videos.tolist() == [1, 2] and chosen.windows.tolist() == [1, 0]
    assert chosen.views.dtype == torch.uint8 and chosen.views.shape == (2, 3, frames, size, size)
    expected = torch.tensor([[14, 15, 16, 17], [20, 21, 22, 23]], dtype=torch.uint8)
    assert torch.equal(chosen.views, expected.view(2, 1, frames, 1, 1).expand_as(chosen.views))
    assert np.all(chosen.losses <= chosen.all_losses.min(axis=1)[chosen.videos] + 1e-12)


def test_rded_stored_view_is_bitwise_the_scored_input_with_crops_flips_and_padding():
    torch.manual_seed(0)
    videos = torch.randint(0, 256, (4, 3, 10, 12, 12), dtype=torch.uint8)
    normalize = Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    for size, input_size in ((8, 8), (4, 8)):           # factor 1, and a factor-2 padded view
        teacher = _FakeTeacher(target=0.1)
        candidates = _candidates([0, 1, 2, 3], window_starts(10, 1, 4, 3), 12, 12, seed=size)
        spec = ViewSpec(frames=4, interval=1, size=size, input_size=input_size)
        chosen = select_class(teacher, videos, 0, candidates, 3, spec, normalize, batch_size=5)
        scored = torch.cat(teacher.inputs)                # in candidate order: video-major
        assert scored.shape == (12, 3, 4, input_size, input_size)
        pad = (input_size - size) // 2
        for rank, (video, window) in enumerate(zip(chosen.videos, chosen.windows)):
            seen = scored[video * 3 + window]
            stored = normalize(to_unit_float(chosen.views[rank:rank + 1]))[0]
            assert torch.equal(seen[..., pad:pad + size, pad:pad + size], stored)
            if pad:
                assert torch.count_nonzero(seen[..., :pad, :]) == 0
        # Each kept loss is its video's minimum, and the kept videos are the lowest of those.
        best = chosen.all_losses.min(axis=1)
        assert np.allclose(chosen.losses, np.sort(best)[:3])


# ------------------------------------------------------------------------------- end to end
def _teacher_or_skip(protocol):
    from vdcbench.train.teacher import find_teacher
    if find_teacher(protocol, "synthetic", "minic3d") is None:
        pytest.skip("the shipped synthetic MiniC3D teacher (vdcbench/shipped/teachers/"
                    "synthetic-minic3d-p*.safetensors) is not there yet: its training run has "
                    "not finished")


def _task(protocol, tmp_path, strategy="hard", ipc=1, track=None, artifacts=None):
    track = track or protocol.track("synthetic", f"ipc{ipc}-t8")
    return CondensationTask(protocol, track, strategy, 0,
                            artifacts or ArtifactStore(tmp_path / "artifacts"))


@pytest.fixture(scope="module")
def feature_store(tmp_path_factory):
    """One artifact store for Herding and K-Center: the teacher's features are computed once."""
    return ArtifactStore(tmp_path_factory.mktemp("selection-features"))


def _check_set(condensed, name, ipc=1):
    assert condensed.videos.shape == (10 * ipc, 3, 8, 56, 56)
    assert condensed.videos.dtype == torch.uint8
    assert condensed.labels.tolist() == [c for c in range(10) for _ in range(ipc)]
    assert condensed.method.name == name and condensed.method.kind == "selection"


@pytest.mark.slow   # 49 s on a loaded core (3 Dec); CI runs it in its `pytest -m slow` step
def test_herding_end_to_end_stores_the_centred_clip_nearest_each_class_mean(protocol, tmp_path,
                                                                            feature_store):
    from vdcbench.methods.features import centred_clips, teacher_features
    _teacher_or_skip(protocol)
    task = _task(protocol, tmp_path, artifacts=feature_store)
    condensed = Herding().condense(task)
    _check_set(condensed, "herding")
    members = torch.nonzero(task.train.labels == 0).flatten().numpy()
    features = teacher_features(task.teacher().net, task.train, members, protocol)
    nearest = members[int(torch.argmin(torch.linalg.norm(features - features.mean(0), dim=1)))]
    assert torch.equal(condensed.videos[0], centred_clips(task.train, [nearest], protocol, 8)[0])


def test_kcenter_end_to_end_starts_from_the_tasks_random_video(protocol, tmp_path, feature_store):
    from vdcbench.methods.features import centred_clips
    _teacher_or_skip(protocol)
    task = _task(protocol, tmp_path, strategy="soft", artifacts=feature_store)
    condensed = KCenter().condense(task)
    _check_set(condensed, "kcenter")
    assert condensed.soft_labels is not None and condensed.soft_labels.shape == (10, 10)
    members = torch.nonzero(task.train.labels == 3).flatten().numpy()
    first = members[int(task.rng(3).integers(0, len(members)))]
    assert torch.equal(condensed.videos[3], centred_clips(task.train, [first], protocol, 8)[0])


def test_rded_end_to_end_stores_the_lowest_loss_candidate_of_the_class(protocol, tmp_path):
    from vdcbench.methods.rded import draw_candidates, render_views, score_views
    _teacher_or_skip(protocol)
    task = _task(protocol, tmp_path, strategy="multi-sl")
    condensed = RDED(RDED.config_from_strings({"mipc": "4", "num_crop": "2"})).condense(task)
    _check_set(condensed, "rded")
    assert condensed.method.config == {"mipc": 4, "num_crop": 2, "factor": 1, "batch_size": 50,
                                       "teacher": "minic3d", "min_scale": 0.08,
                                       "teacher_profile": "protocol"}
    # Rebuild class 2's eight candidates from the task's generators and score them all.
    split, label = task.train, 2
    members = torch.nonzero(split.labels == label).flatten().numpy()
    drawn = np.sort(task.rng(label).choice(members, size=4, replace=False))
    candidates = draw_candidates(task, label, drawn, window_starts(32, 1, 8, 2), 64, 64)
    views = render_views(split.videos, np.repeat(drawn, 2), candidates.starts.ravel(),
                         candidates.boxes.reshape(-1, 4), candidates.flips.ravel(),
                         ViewSpec(frames=8, interval=1, size=56, input_size=56))
    trainer = protocol.trainer
    losses = score_views(task.teacher().net, views, label,
                         Normalize(trainer.normalize_mean, trainer.normalize_std), 56)
    assert torch.equal(condensed.videos[label], views[int(torch.argmin(losses))])

    stitched = RDED(RDED.Config(mipc=4, num_crop=1, factor=2)).condense(_task(protocol, tmp_path))
    _check_set(stitched, "rded")


def test_forgetting_end_to_end_with_a_cached_count(protocol, tmp_path, monkeypatch):
    # A full MiniC3D epoch over the 800 synthetic videos takes over half a minute on a busy CPU;
    # a pooled linear net exercises the same trainer, counter, cache and selection in seconds.
    import vdcbench.methods.forgetting as forgetting
    monkeypatch.setattr(forgetting, "build_net", lambda spec, classes: _Pooled(classes))
    task = _task(protocol, tmp_path)
    condensed = Forgetting(Forgetting.Config(epochs=2)).condense(task)
    _check_set(condensed, "forgetting")
    assert condensed.method.config == {"epochs": 2, "augment": False}
    key = [p.stem for p in (tmp_path / "artifacts").iterdir()]
    assert len(key) == 1 and key[0].startswith("forgetting-events-") and "-e2-fixed-s0" in key[0]

    def no_training(*args, **kwargs):
        raise AssertionError("the cached forgetting counts were not reused")

    monkeypatch.setattr(forgetting, "count_forgetting", no_training)
    again = Forgetting(Forgetting.Config(epochs=2)).condense(_task(protocol, tmp_path))
    assert torch.equal(again.videos, condensed.videos)


@pytest.mark.parametrize("method", [Herding(), KCenter(), Forgetting(),
                                    RDED(RDED.Config(mipc=100))])
def test_ipc_larger_than_a_class_raises_naming_it(protocol, tmp_path, method):
    dataset = protocol.dataset("synthetic")
    task = _task(protocol, tmp_path, track=Track(dataset=dataset, ipc=81, frames=8, official=False))
    with pytest.raises(VdcError, match=r"IPC 81 needs 81 videos of class 0 \('pan-up'\).*has 80"):
        method.condense(task)


def test_rded_refuses_mipc_below_what_it_keeps_and_a_factor_that_does_not_divide(protocol,
                                                                                  tmp_path):
    with pytest.raises(VdcError, match=r"mipc=4 .*IPC 5 x factor 1\^2 = 5"):
        RDED(RDED.Config(mipc=4)).condense(_task(protocol, tmp_path, ipc=5))
    with pytest.raises(VdcError, match="factor 3 does not divide the crop size 56"):
        RDED(RDED.Config(factor=3)).condense(_task(protocol, tmp_path))
    with pytest.raises(VdcError, match="num_crop must be at least 1"):
        RDED.config_from_strings({"num_crop": "0"})


def test_rded_min_scale_one_scores_whole_frames_and_bad_values_are_refused(protocol, tmp_path):
    from vdcbench.methods.rded import draw_candidates
    task = _task(protocol, tmp_path)
    drawn = np.arange(6)
    whole = draw_candidates(task, 0, drawn, window_starts(32, 1, 8, 3), 64, 64, min_scale=1.0)
    assert (whole.boxes == np.array([0, 0, 64, 64])).all()
    reference = draw_candidates(task, 0, drawn, window_starts(32, 1, 8, 3), 64, 64)
    areas = reference.boxes[..., 2] * reference.boxes[..., 3] / 64 ** 2
    assert areas.min() >= 0.08 - 0.01 and areas.min() < 0.9   # the trainer's 0.08-1 draws
    assert RDED.config_from_strings({"min_scale": "1"}).min_scale == 1.0
    for bad in ("0", "1.5"):
        with pytest.raises(VdcError, match="min_scale must be in"):
            RDED.config_from_strings({"min_scale": bad})
