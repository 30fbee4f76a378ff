"""Shared fixtures: a private vdcbench cache per test session, the protocol, small condensed sets."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def vdcbench_cache(tmp_path_factory):
    """Tests never touch the user's cache; VDCBENCH_TEST_CACHE reuses one across sessions."""
    path = os.environ.get("VDCBENCH_TEST_CACHE") or str(tmp_path_factory.mktemp("vdcbench-cache"))
    previous = os.environ.get("VDCBENCH_CACHE")
    os.environ["VDCBENCH_CACHE"] = path
    yield path
    if previous is None:
        os.environ.pop("VDCBENCH_CACHE", None)
    else:
        os.environ["VDCBENCH_CACHE"] = previous


@pytest.fixture(scope="session")
def protocol():
    from vdcbench.protocol import load_protocol
    return load_protocol(1)


@pytest.fixture(scope="session")
def random_ipc1(protocol, vdcbench_cache, tmp_path_factory):
    """Random at IPC 1 on synthetic (seed 0), as a CondensedSet and a written archive."""
    from vdcbench.archive import write_archive
    from vdcbench.core.artifacts import ArtifactStore
    from vdcbench.methods.base import CondensationTask
    from vdcbench.methods.random_selection import RandomSelection

    folder = tmp_path_factory.mktemp("random-ipc1")
    track = protocol.track("synthetic", "ipc1-t8")
    task = CondensationTask(protocol, track, "hard", 0, ArtifactStore(folder / "artifacts"))
    condensed = RandomSelection().condense(task)
    path = folder / "random.tar"
    write_archive(condensed, path, protocol=protocol)
    return condensed, path
