"""The newcomer's rough edges (issue 17 items 6-7): Ctrl-C says how to resume and stops a test
session, run-baseline checks first and says what to run next, diff takes archives, top-5 is not
printed where it is 100 % by construction, synthetic's first generation is visible."""

from __future__ import annotations

import dataclasses
import gzip
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from vdcbench.cli import main

ARCHIVES = Path(__file__).resolve().parents[1] / "submissions" / "archives"


def _run(*args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)


# ------------------------------------------------------------------------------------ Ctrl-C
def test_ctrl_c_under_the_test_runner_stops_the_session(monkeypatch):
    """Inside click's CliRunner the interrupt comes back as a KeyboardInterrupt (which stops
    pytest), not as exit code 130 in a failed test while the suite runs on."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr("vdcbench.protocol.load_protocol", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run("protocol", catch_exceptions=False)
    with pytest.raises(KeyboardInterrupt):
        _run("protocol")                       # caught exceptions do not include it either


# The child sends itself a real SIGINT inside the command; the library call is replaced by a
# stub module so the test does not pay for importing torch.
SIGINT_CHILD = """
import os, signal, sys, time, types
def stop(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)
stub = types.ModuleType("vdcbench.evaluation.api")
stub.evaluate_archive = stub.run_baseline = stop
sys.modules["vdcbench.evaluation.api"] = stub
import vdcbench.protocol
if sys.argv[1] == "protocol":
    vdcbench.protocol.load_protocol = stop
from vdcbench.cli import main
main(sys.argv[1:], prog_name="vdcbench")
"""


@pytest.mark.parametrize("args, hint", [
    (("protocol",), None),
    (("evaluate", "{archive}"), "finished seeds are kept"),
    (("run-baseline", "random", "--dataset", "acts", "--ipc", "1", "-o", "{tmp}/x.tar"),
     "no archive is written until the condensation ends"),
])
def test_sigint_in_the_program_says_how_to_resume_and_exits_130(tmp_path, args, hint):
    archive = tmp_path / "a.tar"
    archive.write_bytes(b"")
    argv = [a.format(archive=archive, tmp=tmp_path) for a in args]
    done = subprocess.run([sys.executable, "-c", SIGINT_CHILD, *argv], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 130, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted"), lines
    if hint is None:
        assert lines[0] == "interrupted"       # no other command's promise about seeds
    else:
        assert hint in lines[0]


# ------------------------------------------------------------------------------ run-baseline
def test_run_baseline_refuses_the_output_path_and_names_the_tracks_before_any_work(tmp_path):
    result = _run("run-baseline", "random", "--dataset", "synthetic", "--ipc", "1", "-o",
                  tmp_path / "nosuchdir" / "x.tar")
    assert result.exit_code == 2 and "does not exist" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = _run("run-baseline", "random", "--dataset", "synthetic", "--ipc", "0")
    assert result.exit_code == 2
    assert "unknown track 'ipc0-t8'" in result.output and "ipc1-t8, ipc5-t8, ipc10-t8" in result.output
    assert "did you mean" not in result.output
    result = _run("run-baseline", "random", "--dataset", "synthetic", "--ipc", "1", "-o", tmp_path)
    assert result.exit_code == 2 and "is a directory" in result.output


def test_a_bad_setting_is_refused_before_synthetic_is_generated(tmp_path):
    cache = tmp_path / "fresh-cache"
    result = _run("run-baseline", "rded", "--dataset", "synthetic", "--ipc", "1", "--set",
                  "mipc=0", env={"VDCBENCH_CACHE": str(cache)})
    assert result.exit_code == 2 and "mipc must be at least 1" in result.output
    assert "generating" not in result.output and not (cache / "synthetic").exists()


def test_run_baseline_ends_with_the_command_to_run_next(tmp_path):
    archive = tmp_path / "r.tar"
    result = _run("run-baseline", "random", "--dataset", "synthetic", "--ipc", "1", "-o", archive)
    assert result.exit_code == 0, result.output
    assert f"next: vdcbench evaluate {archive}" in result.output


def test_the_first_synthetic_generation_is_announced_with_progress(tmp_path, monkeypatch,
                                                                   capsys, protocol):
    """A first run generates the split with progress lines (stderr is not a terminal here), and
    the progress callback does not change a byte of what is generated."""
    from vdcbench.cli.baseline import generate_synthetic
    from vdcbench.data import synthetic

    small = dataclasses.replace(protocol.dataset("synthetic").generator, train_per_class=2,
                                val_per_class=1)
    dataset = SimpleNamespace(name="synthetic", generator=small)
    monkeypatch.setenv("VDCBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VDCBENCH_PROGRESS_INTERVAL", "0")
    calls = []
    real = synthetic.load_split

    def unpinned(spec, split, *, verify=True, progress=None):
        # The small spec is not the protocol's, so its hash is not pinned.
        def heard(done, total):
            calls.append((done, total))
            progress(done, total)
        return real(spec, split, verify=False, progress=heard)
    monkeypatch.setattr(synthetic, "load_split", unpinned)
    assert not synthetic.is_generated(small, "train")
    generate_synthetic(dataset, ("train",))
    shown = capsys.readouterr().err
    assert synthetic.is_generated(small, "train") and not synthetic.is_generated(small, "val")
    assert calls == [(n, 20) for n in range(1, 21)]
    assert "generating the synthetic train split (20 videos" in shown
    assert "generate synthetic train: 20/20 (100%)" in shown
    generate_synthetic(dataset, ("train",))             # cached: says nothing
    assert capsys.readouterr().err == ""
    silent = synthetic.generate_split(small, "train")
    stored = np.load(synthetic.split_cache_folder(small) / "train-videos.npy")
    assert np.array_equal(silent.videos, stored)


# -------------------------------------------------------------------------------------- diff
def test_diff_compares_two_archives(tmp_path):
    a = ARCHIVES / "random-synthetic-ipc1-hard-s0.tar"
    same = _run("diff", a, a)
    assert same.exit_code == 0 and "identical" in same.output and "comparable" in same.output
    zipped = tmp_path / "a.tar.gz"
    zipped.write_bytes(gzip.compress(a.read_bytes()))
    repacked = _run("diff", a, zipped)
    assert repacked.exit_code == 0 and "the same condensed set" in repacked.output
    other = _run("diff", a, ARCHIVES / "herding-synthetic-ipc1-hard-s0.tar", "--strict")
    assert other.exit_code == 0, other.output        # one cell: comparable, different sets
    assert "different condensed sets" in other.output and "comparable" in other.output
    apart = _run("diff", a, ARCHIVES / "herding-synthetic-ipc5-hard-s0.tar", "--strict")
    assert apart.exit_code == 1 and "not comparable: track differs" in apart.output


def test_diff_of_an_archive_and_a_result_says_what_diff_takes(tmp_path):
    record = tmp_path / "seed0.json"
    record.write_text("{}")
    result = _run("diff", ARCHIVES / "random-synthetic-ipc1-hard-s0.tar", record)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "diff compares two archives, or two results" in lines[0]
    assert "utf-8" not in result.output


# ------------------------------------------------------------------------------------- top-5
def _report(dataset: str):
    record = SimpleNamespace(key=SimpleNamespace(seed=0), top1=61.0, top5=100.0,
                             reference_best_top1=None, iterations=10, train_gflops=None,
                             torch_threads=1, wall_seconds=3.0)
    from vdcbench.core.stats import Spread
    net = SimpleNamespace(net="minic3d", records=(record,), official=False,
                          top1=Spread.of([61.0]), n=1)
    archive = SimpleNamespace(protocol_version=1, dataset=dataset,
                              describe=lambda: f"random {dataset} ipc1-t8 hard")
    return SimpleNamespace(nets=(net,), archive=archive, results_dir=Path("records"))


@pytest.mark.parametrize("classes, shown", [(2, False), (5, False), (6, True), (10, True)])
def test_no_top5_where_every_label_is_in_the_top_five(monkeypatch, capsys, classes, shown):
    from vdcbench.cli import evaluate
    from vdcbench.evaluation.report import top5_is_informative
    assert top5_is_informative(classes) is shown
    monkeypatch.setattr(evaluate, "dataset_classes", lambda version, name: classes)
    evaluate.render_report(_report("acts"))
    text = capsys.readouterr().out
    assert ("top-5" in text and "100.00" in text) is shown
    if not shown:
        assert f"no top-5: with {classes} classes it is 100 % by construction" in text


def test_class_counts_come_from_the_protocol_or_the_store():
    from vdcbench.cli.evaluate import dataset_classes
    assert dataset_classes(1, "synthetic") == 10
    assert dataset_classes(1, "no-such-collection") is None     # unknown: top-5 stays


# ---------------------------------------------------------------------------------- validate
def test_validate_of_a_bare_name_says_where_stores_are(tmp_path, monkeypatch):
    monkeypatch.setenv("VDCBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    result = _run("validate", "gt-actions")
    assert result.exit_code == 2
    assert str(tmp_path / "cache" / "stores") in result.output and "VDCBENCH_CACHE" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_help_still_lists_every_command():
    text = _run("--help").output
    for command in ("data", "diff", "evaluate", "experts", "import", "leaderboard", "methods", "nets",
                    "prepare", "protocol", "results", "run-baseline", "schema-docs", "show",
                    "step-throughput", "submit", "teacher", "validate"):
        assert f"  {command} " in text, command
    assert os.environ.get("VDCBENCH_CACHE")      # the session's private cache, not the user's
