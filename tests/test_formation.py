"""Temporal formations on hand-made instances whose frame i holds the value i everywhere, so the
frames a formation picks (and the weights it blends them with) are read straight off the clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vdcbench.core.errors import VdcError
from vdcbench.core.randomness import STREAM_WINDOW, rng_for
from vdcbench.train.formation import (FORMATIONS, Formation, clip_ids, default_formation,
                                      form_clips, track_formation)
from vdcbench.train.sources import StoredClips


def indexed(frames: int, count: int = 1, offset: int = 0, dtype=torch.uint8) -> torch.Tensor:
    """(count, 3, frames, 4, 5): instance b's frame i is filled with offset + 10·b + i."""
    values = offset + 10 * torch.arange(count)[:, None] + torch.arange(frames)[None, :]
    return values[:, None, :, None, None].expand(count, 3, frames, 4, 5).to(dtype).contiguous()


def frame_values(clips: torch.Tensor) -> torch.Tensor:
    """(B, 3, F, H, W) -> (B, F): the one value each frame holds (and a check that it is one)."""
    first = clips[:, :1, :, :1, :1]
    assert torch.equal(clips, first.expand_as(clips)), "a frame is not uniform"
    return clips[:, 0, :, 0, 0]


def test_none_is_the_instance_itself():
    videos = indexed(8, count=2)
    formed = form_clips(videos, Formation("none"))
    assert formed.clips is videos and formed.owners.tolist() == [0, 1]


def test_segment_cuts_consecutive_separate_clips_in_order():
    formed = form_clips(indexed(24, count=2), Formation("segment"))
    assert formed.clips.dtype == torch.uint8 and formed.clips.shape == (6, 3, 8, 4, 5)
    assert formed.owners.tolist() == [0, 0, 0, 1, 1, 1]
    values = frame_values(formed.clips).tolist()
    assert values[0] == list(range(0, 8)) and values[1] == list(range(8, 16))
    assert values[2] == list(range(16, 24)) and values[3] == list(range(10, 18))
    assert values[5] == list(range(26, 34))


@pytest.mark.parametrize("frames,start", [(9, 0), (10, 1), (16, 4), (17, 4), (32, 12)])
def test_slide_window_centred_window_is_deterministic(frames, start):
    clips = form_clips(indexed(frames), Formation("slide-window")).clips
    assert frame_values(clips).tolist() == [list(range(start, start + 8))]


def test_slide_window_draws_a_uniform_start_from_the_generator():
    formation = Formation("slide-window")
    starts = [formation.start(16, np.random.default_rng(k)) for k in range(400)]
    assert set(starts) == set(range(9))            # every start 0 .. 16 - 8, and only those
    rng = rng_for(3, STREAM_WINDOW, 5, 7)
    start = Formation("slide-window").start(16, rng_for(3, STREAM_WINDOW, 5, 7))
    clips = form_clips(indexed(16), formation, [rng]).clips
    assert frame_values(clips).tolist() == [list(range(start, start + 8))]


def test_one_generator_draws_per_instance_in_turn():
    formation = Formation("slide-window")
    expected_rng = np.random.default_rng(11)
    expected = [formation.start(20, expected_rng) for _ in range(3)]
    clips = form_clips(indexed(20, count=3), formation, np.random.default_rng(11)).clips
    assert frame_values(clips).tolist() == [[10 * b + s + i for i in range(8)]
                                            for b, s in enumerate(expected)]


def test_duplicate_repeats_each_frame_as_the_reference():
    clips = form_clips(indexed(4, offset=100), Formation("interpolate-duplicate")).clips
    assert clips.dtype == torch.uint8
    assert frame_values(clips).tolist() == [[100, 100, 101, 101, 102, 102, 103, 103]]
    two = form_clips(indexed(2), Formation("interpolate-duplicate")).clips
    assert frame_values(two).tolist() == [[0, 0, 0, 0, 1, 1, 1, 1]]


def test_linear_weights_are_exact_and_match_torch_trilinear():
    clips = form_clips(indexed(4, dtype=torch.float32), Formation("interpolate-linear")).clips
    # align_corners=False: source (i + 0.5) / 2 - 0.5, clamped at 0 and at the last frame.
    expected = [0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0]
    assert torch.allclose(frame_values(clips)[0], torch.tensor(expected), atol=1e-6)
    random = torch.rand(2, 3, 4, 6, 7)
    ours = form_clips(random, Formation("interpolate-linear")).clips
    torch_ = F.interpolate(random, size=(8, 6, 7), mode="trilinear", align_corners=False)
    assert torch.allclose(ours, torch_, atol=1e-6)
    three = torch.rand(1, 3, 3, 5, 5)
    assert torch.allclose(form_clips(three, Formation("interpolate-linear")).clips,
                          F.interpolate(three, size=(8, 5, 5), mode="trilinear",
                                        align_corners=False), atol=1e-6)


def test_linear_on_uint8_is_pixel_scale_float():
    clips = form_clips(indexed(4, offset=200), Formation("interpolate-linear")).clips
    assert clips.dtype == torch.float32
    assert torch.allclose(frame_values(clips)[0] * 255.0,
                          torch.tensor([200.0, 200.25, 200.75, 201.25, 201.75, 202.25, 202.75, 203.0]),
                          atol=1e-3)


def test_interpolation_of_a_sliding_window():
    # 16 stored frames -> a 4-frame window (centred: frames 6..9) -> 8 frames (sample_linear).
    formation = Formation.parse("interpolate-linear-w4")
    assert formation == Formation("interpolate-linear", 4) and formation.id == "interpolate-linear-w4"
    clips = form_clips(indexed(16, dtype=torch.float32), formation).clips
    assert torch.allclose(frame_values(clips)[0],
                          6 + torch.tensor([0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0]))
    dup = form_clips(indexed(16), Formation.parse("interpolate-duplicate-w4"),
                     [np.random.default_rng(0)]).clips
    start = Formation.parse("interpolate-duplicate-w4").start(16, np.random.default_rng(0))
    assert frame_values(dup).tolist() == [[start + i // 2 for i in range(8)]]
    starts = {formation.start(16, np.random.default_rng(k)) for k in range(300)}
    assert starts == set(range(13))                # 0 .. 16 - 4


def test_formed_clips_are_differentiable_for_distillation():
    """The co-optimised slide-window: gradients reach exactly the frames a draw used."""
    synthetic = torch.zeros(2, 3, 16, 4, 4, requires_grad=True)
    rngs = [np.random.default_rng(1), np.random.default_rng(2)]
    starts = [Formation("slide-window").start(16, np.random.default_rng(k)) for k in (1, 2)]
    formed = form_clips(synthetic, Formation("slide-window"), rngs)
    formed.clips.sum().backward()
    touched = synthetic.grad[:, 0, :, 0, 0]
    for b, start in enumerate(starts):
        expected = torch.zeros(16)
        expected[start:start + 8] = 1.0
        assert torch.equal(touched[b], expected)
    videos = torch.rand(1, 3, 16, 4, 4, requires_grad=True)
    clips = form_clips(videos, Formation.parse("interpolate-linear-w4")).clips
    clips.sum().backward()
    # The centred 4-frame window 6..9 blends to 8 frames; each source frame's total weight is 2.
    assert torch.allclose(videos.grad[0, 0, :, 0, 0],
                          torch.tensor([0.0] * 6 + [2.0] * 4 + [0.0] * 6))


@pytest.mark.parametrize("text,frames,words", [
    ("none", 16, "exactly 8"), ("segment", 12, "multiple of 8"), ("segment", 8, "multiple of 8"),
    ("slide-window", 8, "more than 8"), ("slide-window", 4, "more than 8"),
    ("interpolate-linear", 16, "need a window"), ("interpolate-linear-w4", 2, "4-frame window"),
])
def test_a_formation_that_cannot_form_the_track_is_refused_in_one_line(text, frames, words):
    with pytest.raises(VdcError) as err:
        Formation.parse(text).check(frames, "track x")
    assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("text", ["segmented", "slide-window-w4", "interpolate-linear-w8",
                                  "interpolate-linear-w0", "none-w2"])
def test_unknown_or_malformed_formations_are_refused(text):
    with pytest.raises(VdcError):
        Formation.parse(text)


def test_defaults_and_the_protocols_list():
    assert [default_formation(t).id for t in (4, 8, 16, 32)] == [
        "interpolate-linear", "none", "slide-window", "slide-window"]
    assert track_formation(FORMATIONS, 16, None).id == "slide-window"
    assert track_formation(FORMATIONS, 16, "segment").id == "segment"
    with pytest.raises(VdcError, match="not one the protocol declares"):
        track_formation(("none", "segment"), 16, "slide-window")
    for text in ("none", "segment", "slide-window", "interpolate-duplicate-w3",
                 "interpolate-linear"):
        assert Formation.parse(text).id == text


def test_clip_ids_key_each_segment_apart():
    assert clip_ids(np.array([3, 5]), 1).tolist() == [3, 5]
    assert clip_ids(np.array([3, 5]), 2).tolist() == [6, 7, 10, 11]


def test_stored_clips_form_their_instances_with_the_window_stream():
    videos = indexed(16, count=3)
    labels = torch.tensor([0, 1, 2])
    source = StoredClips(videos, labels, formation=Formation("slide-window"))
    clips = source.clips(np.array([2, 0]), seed=4, epoch=9)
    starts = [Formation("slide-window").start(16, rng_for(4, STREAM_WINDOW, 9, i)) for i in (2, 0)]
    assert frame_values(clips).tolist() == [[20 + starts[0] + i for i in range(8)],
                                            [starts[1] + i for i in range(8)]]
    segments = StoredClips(videos, labels, formation=Formation("segment"))
    assert segments.owners(np.array([2, 0])).tolist() == [2, 2, 0, 0]
    assert segments.clip_ids(np.array([2, 0])).tolist() == [4, 5, 0, 1]
    assert frame_values(segments.clips(np.array([2]), 0, 0)).tolist() == [
        list(range(20, 28)), list(range(28, 36))]
    plain = StoredClips(indexed(8, count=2), labels[:2])
    assert torch.equal(plain.clips(np.array([1]), 0, 0), indexed(8, count=2)[1:])
    assert plain.owners(np.array([1, 0])).tolist() == [1, 0]


def test_mean_by_owner_averages_each_instances_clips():
    from vdcbench.train.formation import mean_by_owner
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0], [10.0, 0.0], [20.0, 2.0]])
    assert torch.equal(mean_by_owner(values, np.array([0, 0, 1, 1])),
                       torch.tensor([[2.0, 3.0], [15.0, 1.0]]))
    assert torch.equal(mean_by_owner(torch.tensor([5.0, 7.0]), np.array([0, 1])),
                       torch.tensor([5.0, 7.0]))
