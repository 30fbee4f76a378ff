"""CONTRIBUTING.md's "Submit a result from outside", played on a scratch copy of the repository.

An outside author's method (tests/test_plugin_install.py's plugin, pip-installed into a private
folder) makes an archive, scores it under a shortened, declared schedule, submits it and
rebuilds the leaderboard, and commits; then CI's verification step (``.ci/verify-submissions``,
which ``.ci/run`` runs on every pull request) diffs the copy against its base, validates the
new entry, holds it against its records and re-scores it from the archive: it passes. Then one
record's top-1 is edited, and the step fails naming the field; then the archive is swapped for
another, and the step fails on its hash.

Slow (minutes: the step trains the student again, and the leaderboard is rendered twice).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from vdcbench.cli import main

from test_plugin_install import PLUGIN, SETUP_CFG

REPO = Path(__file__).resolve().parents[1]
ARCHIVE = "submissions/archives/first-window-synthetic-ipc1-hard-s0.tar"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=Contributor", "-c",
                           "user.email=contributor@example.org", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


def scratch_copy(target: Path) -> str:
    """The repository's tracked files (as they are in this working tree) in a new git repository
    with one commit, the pull request's base; returns the base commit."""
    files = git(REPO, "ls-files", "-z").split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git(target, "init", "-q", "-b", "main")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "base")
    return git(target, "rev-parse", "HEAD").strip()


def install_plugin(tmp_path: Path) -> Path:
    package, site = tmp_path / "package", tmp_path / "site"
    package.mkdir()
    (package / "first_window.py").write_text(textwrap.dedent(PLUGIN))
    (package / "setup.cfg").write_text(textwrap.dedent(SETUP_CFG))
    (package / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n')
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(site), str(package)],
                   check=True)
    return site


def vdcbench(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_an_outside_submission_passes_ci_and_edits_or_swaps_are_refused(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    base = scratch_copy(repo)
    site = install_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.chdir(repo)

    # The contributor's path: archive, a shortened schedule (declared: the entry says 1 epoch
    # and is never ranked), submit, rebuild the leaderboard, commit.
    vdcbench("run-baseline", "first-window", "--dataset", "synthetic", "--ipc", "1",
             "--set", "offset=2", "-o", ARCHIVE)
    vdcbench("evaluate", ARCHIVE, "--seeds", "0", "--epochs", "1",
             "--results-dir", "submissions/records")
    submitted = vdcbench("submit", "submissions/records", "--pick", "--archive", ARCHIVE,
                         "--author", "C. Contributor")
    assert "not official: never ranked" in submitted
    [entry] = Path("submissions/synthetic").glob("first-window-ipc1-t8-hard-*-e1/entry.json")
    data = json.loads(entry.read_text())
    assert data["official"] is False and data["epochs"] == 1
    assert data["verification"]["status"] == "self-reported"
    assert data["verification"]["by"] == "C. Contributor"
    vdcbench("leaderboard", "build")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first-window on synthetic IPC 1 (1 epoch)")

    env = {**os.environ, "VDCBENCH_CI_BASE": base, "PYTHONPATH": str(site),
           "VDCBENCH_TEST_ARTEFACTS": str(tmp_path / "artefacts"), "OMP_NUM_THREADS": "1"}

    def step():
        return subprocess.run([str(repo / ".ci" / "verify-submissions")], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=1800)

    passed = step()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert f"changed entry: synthetic/{entry.parent.name}/entry.json" in passed.stdout
    assert "leaderboard/ is what the submissions build" in passed.stdout
    assert "minic3d seed 0: identical" in passed.stdout, passed.stdout
    report = json.loads((tmp_path / "artefacts" / "verification.json").read_text())
    assert report["ok"] and report["changed_entries"] == [entry.parent.name]
    assert [(c["net"], c["seed"], c["outcome"]) for c in report["checks"]] == [
        ("minic3d", 0, "identical")]

    # One record's top-1 edited after submit: refused, naming the field.
    [record] = Path("submissions/records").rglob("first-window-*/minic3d/*/seed0.json")
    original = record.read_bytes()
    body = json.loads(original)
    body["top1"] = body["top1"] + 10.0
    record.write_text(json.dumps(body, indent=2))
    edited = step()
    assert edited.returncode == 2, edited.stdout + edited.stderr
    error = edited.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and "minic3d seed 0: top1 is" in error, error
    assert "in its record" in error
    record.write_bytes(original)

    # The archive swapped for another (a valid archive of the same method): refused on its hash.
    other = tmp_path / "other.tar"
    vdcbench("run-baseline", "first-window", "--dataset", "synthetic", "--ipc", "1",
             "--set", "offset=3", "-o", other)
    shutil.copyfile(other, ARCHIVE)
    swapped = step()
    assert swapped.returncode == 2, swapped.stdout + swapped.stderr
    error = swapped.stderr.strip().splitlines()[-1]
    assert "has sha256" in error and "not the sha256 the entry's results were measured on" \
        in error, error
