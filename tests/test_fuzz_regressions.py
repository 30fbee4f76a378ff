"""Inputs the fuzzers (tests/test_fuzz_*.py) found bugs with, kept as plain tests.

Each names the fuzz target, the input and the symptom it had. Those marked xfail are bugs in
work another change is making (strict JSON everywhere, issue 16): they pass once it lands.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vdcbench.core.errors import VdcError
from vdcbench.data.store import MANIFEST_FILE, Store, StoredVideo, write_store


def one_line_refusal(call) -> VdcError:
    with pytest.raises(VdcError) as caught:
        call()
    message = str(caught.value)
    assert message.strip() and "\n" not in message
    return caught.value


# ------------------------------------------------------------------------------ the store
def write_tiny_store(folder: Path) -> None:
    write_store(folder, name="tiny", dataset="folder", classes=("cat", "dog"), resize=(6, 8),
                videos=[StoredVideo("a", 0, "train", 3, 25.0)],
                read_frames=lambda i: np.zeros((3, 6, 8, 3), dtype=np.uint8), manifest_extra={})


@pytest.mark.parametrize("spelling", ["Infinity", "-Infinity", "1e400"])
def test_store_manifest_with_infinite_total_frames(tmp_path, spelling):
    # test_fuzz_store: "total_frames": Infinity made Store() raise OverflowError (int() of an
    # infinite float) instead of the one-line "not a readable frame store".
    write_tiny_store(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    text = json.dumps(manifest).replace(f'"total_frames": {manifest["total_frames"]}',
                                        f'"total_frames": {spelling}')
    assert spelling in text
    (tmp_path / MANIFEST_FILE).write_text(text)
    one_line_refusal(lambda: Store(tmp_path))
