"""Kill-and-resume (issue 16): ``evaluate``, ``teacher train`` and ``prepare`` SIGKILLed at seeded
points resume to what an unbroken run gives, bit for bit at one thread, and no kill leaves a
corrupt file that is read as data.

Each test runs one unbroken reference in-process, then a chain of child processes on one
cache, each killed at its own point (start-up after a seeded delay; just after, or in the middle
of, the atomic write of a record, checkpoint, part or store file), and a last child that runs to
the end.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from process_fixtures import (check_no_half_written_files, copy_cache, events, invoke,
                              shared_collection, one_thread, prepare_args, run_killed_after,
                              run_with_kill)

SEED = 16        # the kill points' seed: change it to try other points
KILLED = -9
PART_JSON = "?" * 32 + ".json"     # prepare's part metadata (a 32-hex name)
PART_FRAMES = "?" * 32 + ".npy"
RECORD_FIELDS = ("top1", "top5", "weights_sha256", "final_loss", "by_epoch_top1", "iterations",
                 "epochs", "official", "key")


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    return shared_collection(tmp_path_factory)


def _records(folder: Path) -> dict[str, dict]:
    from vdcbench.evaluation.records import load_records
    out = {}
    for record in load_records(folder):
        out[f"seed{record.key.seed}"] = {f: getattr(record, f) for f in RECORD_FIELDS}
    return out


@pytest.mark.slow   # 72 s on a loaded core (3 Dec); CI runs it in its `pytest -m slow` step
def test_evaluate_killed_at_seeded_points_resumes_to_the_unbroken_records(collection, tmp_path):
    base, _, archive = collection
    rng = random.Random(SEED)
    args = ["evaluate", archive, "--seeds", "0,1", "--epochs", "2"]
    reference = copy_cache(base, tmp_path / "cache-unbroken")
    with one_thread():
        result = invoke(*args, "--results-dir", tmp_path / "unbroken", env=reference)
    assert result.exit_code == 0, result.output
    expected = _records(tmp_path / "unbroken")
    assert set(expected) == {"seed0", "seed1"}

    cache, results, log = copy_cache(base, tmp_path / "cache"), tmp_path / "results", tmp_path / "log"
    killed = [*args, "--results-dir", results]
    assert run_killed_after(killed, rng.uniform(0.3, 2.0), cache=cache) == KILLED   # start-up
    assert not results.exists() or not _records(results)
    code, out = run_with_kill(killed, {"pattern": "seed0.json", "nth": 1, "when": "after"},
                              cache=cache, log=log)
    assert code == KILLED, out
    assert set(_records(results)) == {"seed0"}
    # Inside seed 1: right after an in-seed checkpoint where evaluate keeps them, else in the
    # record's own write (trained, renamed never): a resume retrains or resumes seed 1.
    code, out = run_with_kill(killed, [{"pattern": "*.bin", "nth": rng.randint(1, 2),
                                        "when": "after"},
                                       {"pattern": "seed1.json", "nth": 1, "when": "before"}],
                              cache=cache, log=log)
    assert code == KILLED, out
    assert set(_records(results)) == {"seed0"}
    code, out = run_with_kill(killed, [], cache=cache, log=log)
    assert code == 0, out

    assert _records(results) == expected
    leftovers = check_no_half_written_files(results, cache)
    assert all(p.name.startswith(".seed1.json.") for p in leftovers), leftovers
    kills = [e for e in events(log) if "killed" in e]
    if any(e["file"].endswith(".bin") for e in kills):       # in-seed checkpoints have landed
        assert any(e.get("resumed_from_epoch") is not None for e in events(log)), events(log)


def _weights_sha256(model) -> str:
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


TEACHER_SAME = ("val_top1", "val_top5", "train_iterations", "train_gflops", "epochs_run",
                "dataset_sha256", "videos_per_class")


@pytest.mark.slow   # about a minute; CI runs it in its `pytest -m slow` step
def test_teacher_train_killed_resumes_from_its_checkpoint_to_the_same_weights(
        vdcbench_cache, tmp_path, monkeypatch):
    """``teacher train --epochs 3 --videos-per-class 2`` is reported, not saved: its resume is
    the per-epoch checkpoint in the cache's teachers/resume, compared through ``--json`` and the
    weights the run ends with."""
    import vdcbench.train.teacher as teacher

    synthetic = Path(vdcbench_cache) / "synthetic"
    synthetic.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED + 1)
    args = ["teacher", "train", "--dataset", "synthetic", "--epochs", "3",
            "--videos-per-class", "2"]
    real_train, trained = teacher.train_teacher, {}

    def keep_weights(*a, **k):
        sidecar, model = real_train(*a, **k)
        trained["sha256"] = _weights_sha256(model)
        return sidecar, model

    monkeypatch.setattr(teacher, "train_teacher", keep_weights)
    reference = copy_cache(tmp_path, tmp_path / "cache-unbroken", synthetic)
    with one_thread():
        result = invoke(*args, "--json", tmp_path / "unbroken.json", env=reference)
    assert result.exit_code == 0, result.output
    monkeypatch.undo()
    expected = json.loads((tmp_path / "unbroken.json").read_text())

    cache, log = copy_cache(tmp_path, tmp_path / "cache", synthetic), tmp_path / "log"
    weights = tmp_path / "weights.txt"
    killed = [*args, "--json", tmp_path / "resumed.json"]
    assert run_killed_after(killed, rng.uniform(0.3, 2.0), cache=cache) == KILLED   # start-up
    first = rng.randint(1, 2)           # after the checkpoint of epoch first - 1
    code, out = run_with_kill(killed, {"pattern": "teacher-*.bin", "nth": first,
                                       "when": "after"}, cache=cache, log=log)
    assert code == KILLED, out
    # In the middle of writing the last epoch's checkpoint: its temporary file stays behind.
    code, out = run_with_kill(killed, {"pattern": "teacher-*.bin", "nth": 3 - first,
                                       "when": "before"}, cache=cache, log=log)
    assert code == KILLED, out
    assert check_no_half_written_files(cache / "teachers"), "the kill left no temporary file"
    code, out = run_with_kill(killed, [], cache=cache, log=log, weights=weights)
    assert code == 0, out

    resumed = [e["resumed_from_epoch"] for e in events(log)
               if e.get("resumed_from_epoch") is not None]
    assert resumed == [first - 1, 1], events(log)
    got = json.loads((tmp_path / "resumed.json").read_text())
    assert {k: got.get(k) for k in TEACHER_SAME} == {k: expected.get(k) for k in TEACHER_SAME}
    assert weights.read_text() == trained["sha256"]
    assert not list((cache / "teachers" / "resume").glob("*.bin")), "checkpoint not cleared"


def _store_digest(store: Path) -> dict[str, str]:
    manifest = json.loads((store / "manifest.json").read_text())
    return {"sha256": manifest["sha256"],
            **{name: hashlib.sha256((store / name).read_bytes()).hexdigest()
               for name in ("frames.npy", "index.json")}}


@pytest.mark.slow   # 51 s on a loaded core (3 Dec); CI runs it in its `pytest -m slow` step
def test_prepare_killed_at_seeded_points_resumes_to_the_same_store(collection, tmp_path):
    _, folder, _ = collection
    rng = random.Random(SEED + 2)
    reference = tmp_path / "cache-unbroken"
    result = invoke(*prepare_args(folder, "kacts"), env=reference)
    assert result.exit_code == 0, result.output
    expected = _store_digest(reference / "stores" / "kacts")

    cache, log = tmp_path / "cache", tmp_path / "log"
    store, args = cache / "stores" / "kacts", prepare_args(folder, "kacts")
    assert run_killed_after(args, rng.uniform(0.3, 2.0), cache=cache) == KILLED   # start-up
    kills = [{"pattern": PART_JSON, "nth": rng.randint(2, 5), "when": "after"},
             {"pattern": PART_FRAMES, "nth": rng.randint(1, 2), "when": "before"},
             {"pattern": rng.choice(["frames.npy", "index.json"]), "nth": 1, "when": "after"}]
    for trigger in kills:
        code, out = run_with_kill(args, trigger, cache=cache, log=log)
        assert code == KILLED, (trigger, out)
        assert not (store / "manifest.json").exists(), "a store looks complete after a kill"
        check_no_half_written_files(cache)
    code, out = run_with_kill(args, [], cache=cache, log=log)
    assert code == 0, out
    assert _store_digest(store) == expected
    assert not (store / "parts").exists()
    assert not check_no_half_written_files(cache), "a temporary file survived the last run"
