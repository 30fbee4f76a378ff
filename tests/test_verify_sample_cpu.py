"""CI's recorded sample is a bit-for-bit check: a seed made on another kind of CPU is skipped,
saying so, instead of being judged under a tolerance that cannot tell code from machine."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import vdcbench.evaluation.machine as machine_module
from vdcbench.leaderboard.submission_check import _recorded_sample, _same_cpu_only

ROOT = Path(__file__).resolve().parents[1]


def _sample(tmp_path: Path) -> Path:
    # A committed entry whose seed's record names its machine (made 3 Dec, AMD EPYC, AVX2).
    path = tmp_path / "sample"
    path.write_text("# entry net seed\nedc-ipc1-t8-hard-73f660a43904 minic3d 2\n")
    return path


def test_a_seed_made_on_this_kind_of_cpu_is_kept(tmp_path, monkeypatch):
    plans = _recorded_sample(ROOT / "submissions", _sample(tmp_path))
    theirs = plans[0][0].machines[("minic3d", 2)]
    monkeypatch.setattr(machine_module, "this_machine", lambda device="cpu": theirs)
    notes: list[str] = []
    kept = _same_cpu_only(plans, "cpu", notes.append)
    assert [(c.name, [(n, s.seed) for n, s in pairs]) for c, pairs in kept] == [
        ("edc-ipc1-t8-hard-73f660a43904", [("minic3d", 2)])]
    assert notes == []


def test_a_seed_made_on_another_kind_of_cpu_is_skipped_with_a_note(tmp_path, monkeypatch):
    plans = _recorded_sample(ROOT / "submissions", _sample(tmp_path))
    theirs = plans[0][0].machines[("minic3d", 2)]
    other = dataclasses.replace(theirs, cpu_capability="AVX512")
    monkeypatch.setattr(machine_module, "this_machine", lambda device="cpu": other)
    notes: list[str] = []
    assert _same_cpu_only(plans, "cpu", notes.append) == []
    assert len(notes) == 1 and "skipped" in notes[0] and "AVX2" in notes[0] \
        and "AVX512" in notes[0]
