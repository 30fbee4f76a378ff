"""Slide-window clip sampling (protocol v1 [sampling]), frames counted from 0."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from vdcbench.data.sampling import (clip_indices, clip_interval, max_start, training_start,
                                    validation_start)
from vdcbench.protocol import load_protocol

P = load_protocol(1)
S = P.sampling
T = S.frames
UCF = P.dataset("ucf101")          # no declared interval: the slide-window rule applies
SYN = P.dataset("synthetic")       # declares interval = 1


# --- interval ------------------------------------------------------------------------------------

@pytest.mark.parametrize("length, interval", [
    (64, 8), (65, 8), (187, 8), (1000, 8),     # L >= T * tau
    (63, 7), (40, 5), (16, 2), (15, 1), (8, 1),  # L // T
    (7, 1), (1, 1),                              # max(1, L // T)
])
def test_interval_rule(length, interval):
    assert clip_interval(length, S, UCF) == interval


@pytest.mark.parametrize("length", [1, 7, 32, 64, 187, 1000])
def test_synthetic_interval_override(length):
    assert clip_interval(length, S, SYN) == 1


def test_interval_rule_for_every_reference_dataset():
    for name in ("ucf101", "hmdb51", "kinetics400", "ssv2", "miniucf", "folder"):
        ds = P.dataset(name)
        assert ds.interval is None
        assert [clip_interval(n, S, ds) for n in (7, 40, 64, 300)] == [1, 5, 8, 8]


# --- validation start ----------------------------------------------------------------------------

@pytest.mark.parametrize("length, interval, start", [
    (32, 1, 11),          # (32 - 7) // 2 - 1
    (187, 8, 64),         # max(0, (187 - 56) // 2 - 1)
    (8, 1, 0),            # (8 - 7) // 2 - 1 = -1 -> 0
    (9, 1, 0),            # (9 - 7) // 2 - 1 = 0
    (64, 8, 3),           # (64 - 56) // 2 - 1
    (40, 5, 1),           # (40 - 35) // 2 - 1
])
def test_validation_start(length, interval, start):
    assert validation_start(length, interval, T) == start


def test_validation_window_fits_and_is_centred():
    for length in range(8, 400):
        interval = clip_interval(length, S, UCF)
        start = validation_start(length, interval, T)
        index = clip_indices(length, start, interval, T)
        assert index[0] == start and index[-1] <= length - 1
        # centred: the frames left before and after differ by at most 2 + parity
        before, after = index[0], length - 1 - index[-1]
        assert 0 <= after - before <= 3, (length, interval, before, after)


def test_synthetic_validation_clip():
    length = SYN.generator.frames
    interval = clip_interval(length, S, SYN)
    start = validation_start(length, interval, T)
    assert start == 11
    assert clip_indices(length, start, interval, T).tolist() == list(range(11, 19))


# --- clip indices --------------------------------------------------------------------------------

def test_clip_indices_regular(caplog):
    with caplog.at_level(logging.WARNING, logger="vdcbench.data.sampling"):
        index = clip_indices(187, 64, 8, T)
    assert index.dtype == np.int64
    assert index.tolist() == [64, 72, 80, 88, 96, 104, 112, 120]
    assert not caplog.records


def test_clip_indices_last_valid_start():
    length, interval = 187, 8
    last = max_start(length, interval, T)
    assert last == 130
    assert clip_indices(length, last, interval, T).tolist()[-1] == length - 1


def test_clip_indices_short_video_stretches_and_warns(caplog):
    length = 5
    interval = clip_interval(length, S, UCF)
    with caplog.at_level(logging.WARNING, logger="vdcbench.data.sampling"):
        index = clip_indices(length, 0, interval, T)
    expected = np.floor(np.linspace(0, length - 1, T)).astype(np.int64)
    assert index.tolist() == expected.tolist() == [0, 0, 1, 1, 2, 2, 3, 4]
    assert index.dtype == np.int64
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "5 frames" in warnings[0].getMessage()


def test_clip_indices_single_frame_video(caplog):
    with caplog.at_level(logging.WARNING, logger="vdcbench.data.sampling"):
        assert clip_indices(1, 0, 1, T).tolist() == [0] * 8
    assert len(caplog.records) == 1


def test_clip_indices_window_too_long_for_declared_interval(caplog):
    # 10 frames with a declared interval of 2: the window (15 frames) does not fit -> stretched.
    with caplog.at_level(logging.WARNING, logger="vdcbench.data.sampling"):
        index = clip_indices(10, 0, 2, T)
    assert index.tolist() == np.floor(np.linspace(0, 9, 8)).astype(np.int64).tolist()
    assert len(caplog.records) == 1


def test_clip_indices_exact_length_no_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="vdcbench.data.sampling"):
        assert clip_indices(8, 0, 1, T).tolist() == list(range(8))
    assert not caplog.records


# --- training start ------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [8, 9, 20, 32, 40, 63, 64, 187])
def test_training_start_range_and_ends(length):
    interval = clip_interval(length, S, UCF)
    high = length - 1 - (T - 1) * interval
    assert high >= 0
    rng = np.random.default_rng(1234)
    starts = np.array([training_start(length, interval, T, rng) for _ in range(4000)])
    assert starts.min() == 0
    assert starts.max() == high
    assert ((starts >= 0) & (starts <= high)).all()
    if high >= 1:
        assert len(np.unique(starts)) == high + 1     # every valid start is reachable
    for s in starts[:50]:
        assert clip_indices(length, int(s), interval, T)[-1] <= length - 1


def test_training_start_synthetic():
    interval = clip_interval(32, S, SYN)
    rng = np.random.default_rng(0)
    starts = {training_start(32, interval, T, rng) for _ in range(3000)}
    assert starts == set(range(25))


def test_training_start_short_video_is_zero():
    rng = np.random.default_rng(0)
    assert {training_start(5, 1, T, rng) for _ in range(50)} == {0}


def test_training_start_returns_int_and_is_deterministic():
    a = [training_start(187, 8, T, np.random.default_rng(7)) for _ in range(3)]
    assert len(set(a)) == 1 and type(a[0]) is int
