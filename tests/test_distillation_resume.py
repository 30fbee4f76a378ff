"""A distillation stopped by SIGKILL or SIGINT mid-run resumes from its last checkpoint and writes
the archive an unbroken run writes, byte for byte (DM under its ``tiny`` preset, one thread).

The unbroken reference runs in-process; each broken run is a chain of child processes on one
cache: the first stopped after a checkpoint, the last running to the end.
"""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

import pytest

from process_fixtures import (check_no_half_written_files, copy_cache, events, finish, invoke,
                              one_thread, run_with_kill, start, wait_for)

KILLED, INTERRUPTED = -9, 130
RESUME_STATE = "distill-dm-ipc1-t8-*-resume.bin"     # the loop's checkpoint in the artifact store
RESULT = "distill-dm-ipc1-t8-*-result.safetensors"  # the finished clips, kept for reuse


def _args(output: Path) -> list:
    return ["run-baseline", "dm", "--dataset", "synthetic", "--ipc", "1", "--set", "preset=tiny",
            "-o", output]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def unbroken(vdcbench_cache, tmp_path_factory):
    """The archive of an uninterrupted tiny DM run (its sha256), and the synthetic data folder."""
    synthetic = Path(vdcbench_cache) / "synthetic"
    synthetic.mkdir(parents=True, exist_ok=True)
    root = tmp_path_factory.mktemp("dm-unbroken")
    cache = copy_cache(root, root / "cache", synthetic)
    with one_thread():
        result = invoke(*_args(root / "dm.tar"), env=cache)
    assert result.exit_code == 0, result.output
    from vdcbench.archive import read_archive
    loaded = read_archive(root / "dm.tar")
    assert loaded.condensed.videos.dtype.is_floating_point
    assert loaded.manifest.method.config["preset"] == "tiny"
    return _sha256(root / "dm.tar"), synthetic


def _resumed_from(log: Path) -> list[int]:
    return [e["resumed_from_epoch"] for e in events(log) if e.get("resumed_from_epoch") is not None]


def _artifacts(cache: Path) -> Path:
    return cache / "artifacts" / "dm" / "synthetic" / "seed0"


@pytest.mark.slow   # about a minute; CI runs it in its `pytest -m slow` step
def test_a_distillation_killed_after_a_checkpoint_resumes_to_the_unbroken_archive(unbroken,
                                                                                 tmp_path):
    expected, synthetic = unbroken
    cache, log = copy_cache(tmp_path, tmp_path / "cache", synthetic), tmp_path / "log"
    output = tmp_path / "dm.tar"
    # Saves land after the initialisation and after iterations 2 and 4 (of 6): killed right
    # after the third, then in the middle of writing the finished result (its temporary file
    # left behind), which the last run must not take for a result.
    code, out = run_with_kill(_args(output), {"pattern": RESUME_STATE, "nth": 3, "when": "after"},
                              cache=cache, log=log)
    assert code == KILLED, out
    assert not output.exists()
    code, out = run_with_kill(_args(output), {"pattern": RESULT, "nth": 1, "when": "before"},
                              cache=cache, log=log)
    assert code == KILLED, out
    code, out = run_with_kill(_args(output), [], cache=cache, log=log)
    assert code == 0, out
    assert _resumed_from(log) == [4, 4], events(log)
    assert _sha256(output) == expected
    leftovers = check_no_half_written_files(_artifacts(cache))
    assert all(p.name.startswith(".distill-dm-") for p in leftovers), leftovers
    assert not any(p.name.endswith("-resume.bin") for p in _artifacts(cache).iterdir())


@pytest.mark.slow   # 63 s on a loaded core (3 Dec); CI runs it in its `pytest -m slow` step
def test_a_distillation_interrupted_with_sigint_resumes_to_the_unbroken_archive(unbroken,
                                                                               tmp_path):
    expected, synthetic = unbroken
    cache, log = copy_cache(tmp_path, tmp_path / "cache", synthetic), tmp_path / "log"
    output = tmp_path / "dm.tar"
    state_files = lambda: sorted(_artifacts(cache).glob("distill-dm-*-resume.bin"))  # noqa: E731
    proc = start(_args(output), cache=cache, plan={"log": str(log)})
    # The state is written after the initialisation; interrupt once it has been rewritten (a
    # checkpoint after iteration 2), while iterations 3 and on are running.
    wait_for(lambda: state_files() or proc.poll() is not None, timeout=300)
    first = state_files()[0].stat().st_mtime_ns
    wait_for(lambda: state_files()[0].stat().st_mtime_ns != first or proc.poll() is not None,
             timeout=300, step=0.01)
    proc.send_signal(signal.SIGINT)
    code, out = finish(proc, timeout=300)
    assert code == INTERRUPTED, out
    assert "interrupted" in out and "Traceback" not in out
    assert not output.exists()
    code, out = run_with_kill(_args(output), [], cache=cache, log=log)
    assert code == 0, out
    resumed = _resumed_from(log)
    assert len(resumed) == 1 and resumed[0] >= 2, events(log)
    assert _sha256(output) == expected
