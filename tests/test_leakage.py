"""The leakage check: careless copies of training footage in validation (re-encoded, cropped,
shifted in time) are found by ``prepare``, ``data check`` and ``data info``; distinct footage is
clean; the result is kept beside the store, keyed by its hash."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from leakage_fixtures import careless_copy, make_collection, textured_frames

from vdcbench.cli import main
from vdcbench.data import leakage
from vdcbench.data.decode import resize_frames

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VDCBENCH_CACHE", str(tmp_path / "cache"))


def _signatures(videos: list[np.ndarray]) -> leakage.Signatures:
    dct, average = [], []
    for frames in videos:
        frames = resize_frames(torch.from_numpy(np.ascontiguousarray(frames)), (128, 170))
        d, a = leakage.frame_hashes(frames[leakage.signature_frames(len(frames))])
        dct.append(d)
        average.append(a)
    return leakage.Signatures(dct=np.stack(dct), average=np.stack(average))


def test_copies_are_within_the_threshold_and_distinct_scenes_far_beyond_it():
    originals = _signatures([textured_frames(seed) for seed in range(6)])
    copies = _signatures([careless_copy(textured_frames(0), 0.05, 6),
                          careless_copy(textured_frames(3), 0.1, 10)])
    distances = leakage.signature_distances(originals, copies)
    assert distances[0, 0] <= leakage.THRESHOLD_BITS and distances[3, 1] <= leakage.THRESHOLD_BITS
    others = np.delete(distances, [0, 3], axis=0)
    assert others.min() > 2 * leakage.THRESHOLD_BITS
    # The DCT hashes alone (every pair a candidate) also keep distinct scenes apart.
    no_filter = leakage.Signatures(dct=originals.dct,
                                   average=np.zeros_like(originals.average))
    alone = leakage.signature_distances(no_filter, leakage.Signatures(
        dct=copies.dct, average=np.zeros_like(copies.average)))
    assert alone[0, 0] == distances[0, 0]
    assert np.delete(alone, [0, 3], axis=0).min() > leakage.THRESHOLD_BITS


def test_prepare_reports_copies_across_the_split_and_data_info_shows_them(tmp_path):
    root, split, pairs = make_collection(tmp_path / "careless", copies=True)
    result = _run("prepare", "folder", "--root", root, "--split-file", split)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "leakage check: 2 of 4 validation videos look like footage in training" in text
    for train_key, val_key in pairs:
        assert f"{val_key} ~ {train_key}" in text
    assert "--group REGEX" in text and "--split-file" in text
    from vdcbench.data.store import find_store, open_store
    store = open_store(find_store("careless"))
    kept = json.loads((store.path / "leakage.json").read_text())
    assert kept["store_sha256"] == store.sha256 and kept["pair_count"] == 2
    assert sorted((t, v) for t, v, _ in kept["pairs"]) == sorted(pairs)
    info = _run("data", "info", "careless")
    assert info.exit_code == 0 and "2 of 4 validation videos" in info.output, info.output
    check = _run("data", "check", "careless")
    assert check.exit_code == 1 and "2 of 4 validation videos" in check.output, check.output


def test_distinct_footage_is_clean(tmp_path):
    root, split, _ = make_collection(tmp_path / "careful", copies=False)
    result = _run("prepare", "folder", "--root", root, "--split-file", split)
    assert result.exit_code == 0, result.output
    assert "leakage check: clean" in result.output
    check = _run("data", "check", "careful")
    assert check.exit_code == 0 and "clean" in check.output, check.output
    info = _run("data", "info", "careful")
    assert "leakage check: clean" in info.output


def test_a_result_of_other_content_or_unreadable_is_not_trusted(tmp_path):
    root, split, _ = make_collection(tmp_path / "careful", copies=False)
    assert _run("prepare", "folder", "--root", root, "--split-file", split).exit_code == 0
    from vdcbench.data.store import find_store, open_store
    store = open_store(find_store("careful"))
    path = store.path / "leakage.json"
    kept = json.loads(path.read_text())
    assert leakage.stored_leakage(store) is not None
    path.write_text(json.dumps({**kept, "store_sha256": "0" * 64}))
    assert leakage.stored_leakage(store) is None
    path.write_text(json.dumps(kept).replace('"seconds": ', '"seconds": NaN, "x": '))
    assert leakage.stored_leakage(store) is None
    info = _run("data", "info", "careful")
    assert "not run on this store" in info.output, info.output


@pytest.mark.slow   # two prepares of 27 real videos: about two minutes on 2 cores
@pytest.mark.skipif(not (REAL / "gt-actions").is_dir(), reason="no ../shared/data/real/gt-actions")
def test_gt_actions_split_by_file_leaks_and_by_person_does_not(tmp_path):
    """Trials of one person in one room are the same footage to the check: a split by file
    puts them on both sides; a split by person does not."""
    by_file = _run("prepare", "folder", "--root", REAL / "gt-actions", "--name", "gt-file")
    assert by_file.exit_code == 0, by_file.output
    assert "9 of 9 validation videos look like footage in training" in by_file.output
    by_person = _run("prepare", "folder", "--root", REAL / "gt-actions", "--name", "gt-person",
                     "--group", r"P\d+(?=T)")
    assert by_person.exit_code == 0 and "leakage check: clean" in by_person.output
