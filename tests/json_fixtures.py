"""Test inputs built from valid JSON documents and archives: a number spelt as JSON cannot spell
it (NaN, Infinity, 1e400), and an archive repacked with its manifest edited."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path


def json_with_number(document: dict, path: tuple, spelling: str) -> str:
    """``document`` as JSON text with the value at ``path`` spelt ``spelling`` verbatim."""
    doc = json.loads(json.dumps(document))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = "@@number@@"
    return json.dumps(doc, indent=2).replace('"@@number@@"', spelling)


def repack_with_manifest(source: Path, target: Path, edit: Callable[[bytes], bytes]) -> Path:
    """A copy of the archive ``source`` whose manifest member is ``edit(manifest bytes)``, every
    other member as it was, in the same order (a plain tar)."""
    with tarfile.open(source) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(target, "w") as tar:
        for info, data in members:
            if info.name == "manifest.json":
                data = edit(data)
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return target
