"""Property-based fuzzing of the frame-store manifest reader: a small raw store written by
``write_store``, its ``manifest.json`` mutated (fields removed, retyped, replaced by junk, huge
numbers, NaN, Infinity, a repeated key, bytes edited), then opened as ``open_store`` does
(``Store(path)``), its fields read, its frames mapped and the store verified.

Property (see ``fuzz_strategies``): a valid read or one ``VdcError`` of one line, nothing written
outside tmp.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given

from fuzz_strategies import (Outcome, expect_valid_or_refused, fuzz_settings, json_documents,
                             memory_bounded, no_writes_outside)
from vdcbench.data.store import MANIFEST_FILE, Store, StoredVideo, verify_store, write_store

RESIZE = (6, 8)
OUTCOME = Outcome("store manifest")


def _frames(i: int, length: int) -> np.ndarray:
    return np.full((length, *RESIZE, 3), 40 * i, dtype=np.uint8)


def write_tiny_store(folder: Path) -> None:
    """Three videos of two classes, a raw store with a split and a missing-video report."""
    videos = [StoredVideo("a", 0, "train", 3, 25.0), StoredVideo("b", 1, "val", 2, None),
              StoredVideo("c", 1, "train", 1, 30.0)]
    write_store(folder, name="tiny", dataset="folder", classes=("cat", "dog"), resize=RESIZE,
                videos=videos, read_frames=lambda i: _frames(i, videos[i].length),
                manifest_extra={"split": {"rule": "given"}, "missing": [["d", "gone"]]})


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz-store")
    write_tiny_store(folder)
    assert verify_store(Store(folder)).ok
    return folder


def _seed_manifest() -> dict:
    """The manifest the strategy mutates (made at collection, by the same writer)."""
    with tempfile.TemporaryDirectory() as tmp:
        write_tiny_store(Path(tmp))
        return json.loads((Path(tmp) / MANIFEST_FILE).read_text())


def open_and_use(path: Path) -> Store:
    store = Store(path)
    m = store.manifest
    (store.name, store.dataset, store.classes, store.resize, store.sha256, store.frame_format,
     m.num_classes)
    json.dumps(m.to_dict())
    store.size_bytes()
    verify_store(store)     # maps the frames, reads the index, recounts and rehashes
    return store


@fuzz_settings(ci_examples=800)
@given(blob=json_documents(_seed_manifest()))
def test_fuzz_store_manifest(blob, store_dir):
    (store_dir / MANIFEST_FILE).write_bytes(blob)
    with no_writes_outside(store_dir), memory_bounded():
        expect_valid_or_refused(lambda: open_and_use(store_dir), OUTCOME)


def teardown_module(module):
    if OUTCOME.total:
        print("\n" + OUTCOME.summary())
