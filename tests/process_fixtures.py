"""Helpers for tests that run ``vdcbench`` in subprocesses: kill them, race them, check their files.

:func:`start` runs the CLI in a child through :data:`RUNNER`, which can SIGKILL itself at an
exact point: just before or just after the ``nth`` atomic rename of a file whose name matches a
pattern (every record, part, checkpoint and store file is written by temp file and
``os.replace``). "Before" leaves the temporary file behind, as a kill during a write does;
"after" kills right after the file appeared. The runner also logs which checkpoint epoch a run
resumed from and, for ``teacher train``, the sha256 of the trained weights (a teacher trained
on a shortened schedule is reported, not saved, so its weights exist nowhere else).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

RUNNER = r'''
import fnmatch, hashlib, json, os, signal, sys
plan = json.loads(os.environ.get("KILL_PLAN") or "{}")

def note(**event):
    if plan.get("log"):
        with open(plan["log"], "a") as fh:
            fh.write(json.dumps(event) + "\n")

real_replace, seen = os.replace, {}

def replace(src, dst, *args, **kwargs):
    name = os.path.basename(os.fspath(dst))
    for n, trigger in enumerate(plan.get("triggers", ())):
        if fnmatch.fnmatch(name, trigger["pattern"]):
            seen[n] = seen.get(n, 0) + 1
            if seen[n] == trigger["nth"]:
                if trigger["when"] == "before":
                    note(killed="before", file=name)
                    os.kill(os.getpid(), signal.SIGKILL)
                real_replace(src, dst, *args, **kwargs)
                note(killed="after", file=name)
                os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)

os.replace = replace

import vdcbench.train.checkpoint as checkpoint
real_load = checkpoint.FitCheckpoint.load

def load(self, fingerprint):
    state = real_load(self, fingerprint)
    note(resumed_from_epoch=None if state is None else int(state["epoch"]), key=self.key)
    return state

checkpoint.FitCheckpoint.load = load
if plan.get("weights"):
    import vdcbench.train.teacher as teacher
    real_train = teacher.train_teacher

    def train_teacher(*args, **kwargs):
        sidecar, model = real_train(*args, **kwargs)
        digest = hashlib.sha256()
        for key, tensor in sorted(model.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        with open(plan["weights"], "w") as fh:
            fh.write(digest.hexdigest())
        return sidecar, model

    teacher.train_teacher = train_teacher
from vdcbench.cli import main
main(sys.argv[1:], prog_name="vdcbench")
'''


def child_env(cache: Path, **extra: str) -> dict[str, str]:
    """One thread everywhere: records are compared bit for bit, which holds at one thread count."""
    env = dict(os.environ, VDCBENCH_CACHE=str(cache), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONHASHSEED="0")
    env.update(extra)
    return env


def start(args, *, cache: Path, plan: dict | None = None, cwd: Path | None = None,
          **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUNNER, *map(str, args)],
                            env=child_env(cache, KILL_PLAN=json.dumps(plan or {}), **env),
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def run_killed_after(args, delay: float, *, cache: Path) -> int:
    """Start ``args`` and SIGKILL it ``delay`` seconds later (a kill during start-up or mid-run);
    returns the exit code (-9 when the kill landed, 0 when the run was already over)."""
    proc = start(args, cache=cache)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    return proc.returncode


def run_with_kill(args, trigger: dict | list[dict], *, cache: Path, log: Path,
                  weights: Path | None = None) -> tuple[int, str]:
    """Run ``args`` until the trigger(s) kill it (exit -9) or it ends; the code and its output.
    With ``weights``, a ``teacher train`` child writes its weights' sha256 there."""
    triggers = trigger if isinstance(trigger, list) else [trigger]
    plan = {"triggers": triggers, "log": str(log)}
    if weights is not None:
        plan["weights"] = str(weights)
    return finish(start(args, cache=cache, plan=plan))


def events(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []


def invoke(*args, env: Path | None = None):
    """The CLI in this process (no start-up cost), with ``env`` as its cache when given."""
    from vdcbench.cli import main
    return CliRunner().invoke(main, [str(a) for a in args],
                              env=None if env is None else {"VDCBENCH_CACHE": str(env)})


def check_no_half_written_files(*roots: Path) -> list[Path]:
    """Every JSON under ``roots`` parses and every other visible file is a complete one; returns
    the temporary files a kill left behind (hidden ``.*.tmp`` names, which nothing reads)."""
    leftovers = []
    for root in roots:
        for path in Path(root).rglob("*"):
            if not path.is_file():
                continue
            if path.name.endswith(".tmp"):
                assert path.name.startswith("."), f"a temporary file with a visible name: {path}"
                leftovers.append(path)
            elif path.suffix == ".json" and not path.name.startswith("."):
                json.loads(path.read_text())   # raises on a truncated or corrupt file
    return leftovers


def wait_for(predicate, timeout: float = 60, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(step)


# ----------------------------------------------------------------- a tiny prepared collection
GROUP = r"person\d+"


def prepare_args(collection: Path, name: str) -> list:
    return ["prepare", "folder", "--root", collection, "--name", name, "--group", GROUP,
            "--workers", "1"]


def make_collection_cache(root: Path) -> tuple[Path, Path, Path]:
    """A cache holding the store ``acts`` of a tiny folder collection (13 videos, 5 classes) and
    a random IPC-1 archive of it: evaluations on it take seconds, where synthetic's 300
    validation clips take a quarter of a minute. Returns (cache, collection, archive)."""
    from video_fixtures import make_folder

    cache, collection = root / "cache", make_folder(root / "acts")
    env = {"VDCBENCH_CACHE": str(cache)}
    from vdcbench.cli import main
    runner = CliRunner()
    for args in (prepare_args(collection, "acts"),
                 ["run-baseline", "random", "--dataset", "acts", "--ipc", "1",
                  "--output", root / "acts.tar"]):
        result = runner.invoke(main, [str(a) for a in args], env=env)
        assert result.exit_code == 0, result.output
    return cache, collection, root / "acts.tar"


_COLLECTION: dict[str, tuple[Path, Path, Path]] = {}


def shared_collection(tmp_path_factory) -> tuple[Path, Path, Path]:
    """:func:`make_collection_cache` once per session, for every module that races or kills on
    it (each test copies its store into a cache of its own)."""
    if "made" not in _COLLECTION:
        _COLLECTION["made"] = make_collection_cache(tmp_path_factory.mktemp("collection"))
    return _COLLECTION["made"]


def copy_cache(base: Path, target: Path, synthetic: Path | None = None) -> Path:
    """A private cache with ``base``'s stores (small), and ``synthetic`` linked, not copied."""
    import shutil
    target.mkdir(parents=True, exist_ok=True)
    if (base / "stores").is_dir():
        shutil.copytree(base / "stores", target / "stores", symlinks=True)
    if synthetic is not None:
        (target / "synthetic").symlink_to(synthetic, target_is_directory=True)
    return target


def one_thread():
    """In-process runs at the children's thread count, so their numbers compare bit for bit."""
    import contextlib
    import torch

    @contextlib.contextmanager
    def pinned():
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)
    return pinned()
