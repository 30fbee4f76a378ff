"""Concurrent runs (issue 16): two processes doing the same work at once on one folder finish with
identical, uncorrupted files, the work done once: the second waits on the first's lock
(``vdcbench.core.locks``) and then reuses what it wrote."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from process_fixtures import (check_no_half_written_files, child_env, copy_cache, finish,
                              invoke, shared_collection, prepare_args, start)

RECORD_FIELDS = ("top1", "top5", "weights_sha256", "final_loss", "by_epoch_top1", "iterations")


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    return shared_collection(tmp_path_factory)


def _both(args, cache: Path, **kwargs) -> list[tuple[int, str]]:
    first, second = start(args[0], cache=cache, **kwargs), start(args[1], cache=cache, **kwargs)
    return [finish(first), finish(second)]


def test_two_evaluates_on_one_results_folder_train_each_seed_once(collection, tmp_path):
    base, _, archive = collection
    cache, results = copy_cache(base, tmp_path / "cache"), tmp_path / "results"
    args = [["evaluate", archive, "--seeds", "0,1", "--epochs", "1", "--results-dir", results,
             "--json", tmp_path / f"report{n}.json"] for n in (0, 1)]
    runs = _both(args, cache)
    for code, out in runs:
        assert code == 0, out
    # Each seed is trained by one process and reused by the other (which waited for it).
    for seed in (0, 1):
        reused = [bool(re.search(rf"seed {seed}: reusing record", out)) for _, out in runs]
        assert reused.count(True) == 1, [out for _, out in runs]
    reports = [json.loads((tmp_path / f"report{n}.json").read_text()) for n in (0, 1)]
    picked = [[{f: r[f] for f in RECORD_FIELDS} for r in report["records"]] for report in reports]
    assert picked[0] == picked[1] and len(picked[0]) == 2
    on_disk = sorted(results.rglob("seed*.json"))
    assert [p.name for p in on_disk] == ["seed0.json", "seed1.json"]
    assert not check_no_half_written_files(results, cache)


GENERATE = r'''
import sys
import vdcbench.data.synthetic as synthetic
from vdcbench.protocol import load_protocol
real = synthetic.generate_split

def generate(*args, **kwargs):
    print("generated", flush=True)
    return real(*args, **kwargs)

synthetic.generate_split = generate
spec = load_protocol(1).dataset("synthetic").generator
print("sha256", synthetic.load_split(spec, "val").sha256)
'''


def test_two_processes_generating_synthetic_into_an_empty_cache_generate_once(tmp_path):
    """The val split only (300 videos): the train split is the same code path at 2.7x the cost."""
    cache = tmp_path / "cache"
    procs = [subprocess.Popen([sys.executable, "-c", GENERATE], env=child_env(cache),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum(out.count("generated") for out in outs) == 1, outs
    from vdcbench.protocol import load_protocol
    pinned = load_protocol(1).dataset("synthetic").generator.val_sha256
    assert all(f"sha256 {pinned}" in out for out in outs), outs
    (folder,) = (cache / "synthetic").iterdir()
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == \
        ["val-labels.npy", "val-videos.npy"]
    assert not check_no_half_written_files(cache)


def test_two_prepares_of_one_store_decode_once(collection, tmp_path):
    _, folder, _ = collection
    cache = tmp_path / "cache"
    args = prepare_args(folder, "race")
    runs = _both([args, args], cache)
    for code, out in runs:
        assert code == 0, out
    already = ["already prepared" in out for _, out in runs]
    assert already.count(True) == 1, [out for _, out in runs]
    store = cache / "stores" / "race"
    assert not (store / "parts").exists()
    assert not check_no_half_written_files(cache)
    verify = invoke("prepare", "folder", "--verify", "--name", "race", env=cache)
    assert verify.exit_code == 0 and "verified" in verify.output, verify.output


def test_a_lock_not_free_within_the_timeout_is_one_line(collection, tmp_path, monkeypatch):
    from vdcbench.core.locks import exclusive

    _, folder, _ = collection
    cache = tmp_path / "cache"
    monkeypatch.setenv("VDCBENCH_LOCK_TIMEOUT", "0.2")
    with exclusive(cache / "stores" / "held", "prepare", what="the test"):
        result = invoke(*prepare_args(folder, "held"), env=cache)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "another vdcbench process still holds" in errors[0], result.output
    assert "VDCBENCH_LOCK_TIMEOUT" in errors[0] and "Traceback" not in result.output
