"""Every path vdcbench writes to by default, under one cache root.

The root is ``$VDCBENCH_CACHE``, else ``$XDG_CACHE_HOME/vdcbench``, else ``~/.cache/vdcbench``;
it is read on every call, so a test or a job that sets the variable moves everything at once.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    root = os.environ.get("VDCBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vdcbench")
    return Path(root)


def synthetic_dir() -> Path:
    """Generated splits of the embedded ``synthetic`` data sets."""
    return cache_root() / "synthetic"


def stores_dir() -> Path:
    """Prepared frame stores of real data sets (``vdcbench prepare``)."""
    return cache_root() / "stores"


def teachers_dir() -> Path:
    """Protocol teachers trained on this machine (the shipped ones live in the package)."""
    return cache_root() / "teachers"


def teacher_resume_dir() -> Path:
    """Per-epoch state of an interrupted teacher training."""
    return teachers_dir() / "resume"


def method_artifacts_dir(method: str, dataset: str, seed: int) -> Path:
    """A method's artifact store. One per (method, data set, seed), shared by its tracks: the keys
    name what a cached value depends on, so Forgetting's hour of training serves IPC 1, 5 and 10."""
    return cache_root() / "artifacts" / method / dataset / f"seed{seed}"


def experts_dir(dataset: str) -> Path:
    """The expert trajectories of ``dataset`` that trajectory-matching methods read (MTT, DATM).

    Where ``method_artifacts_dir("experts", dataset, 0)`` put them before they had a name of their
    own: caches already trained stay valid."""
    return method_artifacts_dir("experts", dataset, 0)


def evaluation_resume_dir() -> Path:
    """Resume state of evaluation seeds in progress, one per record identity; each is dropped
    once its record is written."""
    return cache_root() / "evaluation-resume"


def results_dir() -> Path:
    """Per-seed result records of ``vdcbench evaluate`` when no folder is given."""
    return cache_root() / "results"
