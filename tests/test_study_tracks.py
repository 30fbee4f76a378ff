"""Study tracks: budgets of the study's experiments declared beside protocol v1, outside its hash."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from vdcbench.cli import main
from vdcbench.core.errors import UnknownNameError, VdcError
from vdcbench.protocol import load_protocol
from vdcbench.protocol.study_tracks import study_tracks_from_toml


def _raw(**tracks):
    return {"format": {"version": 1}, "tracks": tracks}


def test_sampling_track_is_admitted_but_never_official(protocol):
    track = protocol.track("synthetic", "ipc1-t16")
    assert (track.ipc, track.frames, track.official, track.study) == (1, 16, False, "sampling")
    # The protocol's own tracks name no declaration.
    assert protocol.track("synthetic", "ipc2-t16").study is None
    assert protocol.track("synthetic", "ipc1-t8").study is None


def test_every_video_declaration_is_pinned_to_a_generated_data_sets_class_size(protocol):
    per_class = protocol.dataset("synthetic").generator.train_per_class
    track = protocol.track("synthetic", f"ipc{per_class}-t4")
    assert track.study == "temporal-compression" and not track.official
    with pytest.raises(UnknownNameError, match="unknown track 'ipc3-t16'.*study tracks: sampling"):
        protocol.track("synthetic", "ipc3-t16")
    with pytest.raises(UnknownNameError, match="unknown track 'ipc1-t12'"):
        protocol.track("synthetic", "ipc1-t12")


def test_the_declarations_leave_the_protocol_hash_alone(protocol):
    # Pinned in tests/test_protocol.py as well: the study tracks are read from their own file.
    assert protocol.study_tracks
    assert protocol.sha256 == load_protocol(1).sha256


def test_admits_reads_versions_frames_and_ipcs():
    tracks = study_tracks_from_toml(_raw(
        a={"description": "d", "protocol_versions": [1], "ipc": [1, 2], "frames": [16]},
        b={"description": "d", "protocol_versions": [1], "ipc": "all", "frames": [4]}))
    assert tracks["a"].admits(1, 2, 16) and not tracks["a"].admits(2, 2, 16)
    assert not tracks["a"].admits(1, 3, 16) and not tracks["a"].admits(1, 1, 8)
    assert tracks["b"].admits(1, 80, 4, videos_per_class=80)
    assert not tracks["b"].admits(1, 79, 4, videos_per_class=80)
    assert tracks["b"].admits(1, 79, 4)          # a collection on disk: resolved by the study


@pytest.mark.parametrize("raw, message", [
    ({"format": {"version": 2}, "tracks": {}}, r"\[format\] must be version = 1"),
    ({"format": {"version": 1}}, "unexpected or missing table 'tracks'"),
    (_raw(a={"description": "d", "protocol_versions": [1], "ipc": [1]}), "missing key 'frames'"),
    (_raw(a={"description": "d", "protocol_versions": [1], "ipc": [0], "frames": [16]}),
     "ipc must be a list of positive integers or 'all'"),
    (_raw(a={"description": "d", "protocol_versions": [], "ipc": [1], "frames": [16]}),
     "protocol_versions must be a list of positive integers"),
    (_raw(a={"description": "d", "protocol_versions": [1], "ipc": [1], "frames": [16], "x": 1}),
     "unknown key 'x'"),
])
def test_a_malformed_declaration_is_refused_in_one_line(raw, message):
    with pytest.raises(VdcError, match=message) as caught:
        study_tracks_from_toml(raw, "study-tracks.toml")
    assert "\n" not in str(caught.value)


def test_run_baseline_takes_a_study_track_and_refuses_an_undeclared_one(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(main, ["run-baseline", "random", "--dataset", "synthetic", "--ipc", "1",
                               "--frames", "12", "-o", str(tmp_path / "x.tar")])
    assert bad.exit_code == 2 and "unknown track 'ipc1-t12'" in bad.output
    assert "--ipc K --frames T picks ipcK-tT" in bad.output
    assert not (tmp_path / "x.tar").exists()
    shown = runner.invoke(main, ["protocol"])
    assert shown.exit_code == 0 and "study tracks (sampling" in shown.output
