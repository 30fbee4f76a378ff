"""An outside author's method plugin, installed by pip from its own package directory.

This is CONTRIBUTING.md's "Add a condensation method" walk-through, run for real: the package is
built and installed with pip into a private target folder (the test never touches the
environment's site-packages), found through the ``vdcbench.methods`` entry-point group, run with
``vdcbench run-baseline`` and scored with ``vdcbench evaluate`` (shortened).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from click.testing import CliRunner

from vdcbench.cli import main

PLUGIN = '''
from dataclasses import dataclass

import numpy as np
import torch

from vdcbench.data.sampling import center_crop
from vdcbench.methods import CondensationTask, Method


class FirstWindow(Method):
    """The first window of the first videos of each class: a deliberately plain selection."""

    name = "first-window"
    kind = "selection"
    description = "the first 8 frames of the first IPC videos of each class"

    @dataclass(frozen=True)
    class Config:
        offset: int = 0

    def condense(self, task: CondensationTask):
        split, ipc, frames = task.train, task.track.ipc, task.track.frames
        clips, labels = [], []
        for label in range(task.dataset.num_classes):
            members = np.flatnonzero(split.labels.numpy() == label)
            for video in members[self.config.offset:self.config.offset + ipc]:
                clip = split.clip(int(video), np.arange(frames))
                clips.append(center_crop(clip, task.dataset.crop))
                labels.append(label)
        return task.finish(self, torch.stack(clips), torch.tensor(labels))
'''

SETUP_CFG = '''
[metadata]
name = vdcbench-first-window
version = 0.0.1

[options]
py_modules = first_window

[options.entry_points]
vdcbench.methods =
    first-window = first_window:FirstWindow
'''


def test_a_pip_installed_plugin_is_listed_run_and_scored(tmp_path, monkeypatch):
    package, site = tmp_path / "package", tmp_path / "site"
    package.mkdir()
    (package / "first_window.py").write_text(textwrap.dedent(PLUGIN))
    (package / "setup.cfg").write_text(textwrap.dedent(SETUP_CFG))
    (package / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n')
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(site), str(package)],
                   check=True)
    monkeypatch.syspath_prepend(str(site))

    runner = CliRunner()
    listing = runner.invoke(main, ["methods"])
    assert listing.exit_code == 0 and "first-window" in listing.output

    archive = tmp_path / "fw.tar"
    result = runner.invoke(main, ["run-baseline", "first-window", "--dataset", "synthetic",
                                  "--ipc", "1", "--set", "offset=2", "-o", str(archive)])
    assert result.exit_code == 0, result.output
    from vdcbench.archive import read_archive
    condensed = read_archive(archive).condensed
    assert condensed.method.name == "first-window" and condensed.method.config == {"offset": 2}
    assert condensed.labels.tolist() == list(range(10))

    scored = runner.invoke(main, ["evaluate", str(archive), "--seeds", "0", "--epochs", "1",
                                  "--results-dir", str(tmp_path / "records")])
    assert scored.exit_code == 0, scored.output
    assert len(list((tmp_path / "records").rglob("seed0.json"))) == 1

    bad = runner.invoke(main, ["run-baseline", "first-windo", "--dataset", "synthetic",
                               "--ipc", "1"])
    assert bad.exit_code == 2 and "did you mean 'first-window'" in bad.output
