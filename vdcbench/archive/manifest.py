"""manifest.json: built from a condensed set, encoded canonically, parsed strictly.

The JSON schema in ``protocol/schemas/manifest.schema.json`` is the authority on shape; this
module adds only what a schema cannot say (duplicate keys, non-standard constants) and the
canonical encoding that keeps written archives byte-identical.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import torch

from vdcbench.core.version import __version__
from vdcbench.archive.errors import ArchiveError, ArchiveErrorCode
from vdcbench.archive.condensed import CondensedSet
from vdcbench.protocol import PROTOCOL_DIR, Protocol

FORMAT = "vdcbench-submission"
FORMAT_VERSION = 1
MANIFEST_MEMBER = "manifest.json"
VIDEOS_MEMBER = "videos.safetensors"
LABELS_MEMBER = "labels.safetensors"
TENSOR_MEMBERS = (VIDEOS_MEMBER, LABELS_MEMBER)
MEMBERS = (MANIFEST_MEMBER, *TENSOR_MEMBERS)
SCHEMA_PATH = PROTOCOL_DIR / "schemas" / "manifest.schema.json"

# Manifest names of tensor dtypes, and the safetensors header names they correspond to.
DTYPE_NAMES = {torch.uint8: "uint8", torch.float16: "float16", torch.float32: "float32",
               torch.int64: "int64"}
SAFETENSORS_DTYPES = {"U8": "uint8", "F16": "float16", "F32": "float32", "I64": "int64"}

_MAX_SCHEMA_MESSAGE = 200


@functools.lru_cache(maxsize=None)
def _validator(path: Path = SCHEMA_PATH) -> jsonschema.Draft202012Validator:
    with path.open("rb") as fh:
        schema = json.load(fh)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def tensor_entry(tensor: torch.Tensor) -> dict[str, Any]:
    return {"dtype": DTYPE_NAMES.get(tensor.dtype, str(tensor.dtype)),
            "shape": [int(d) for d in tensor.shape]}


def build_manifest(cs: CondensedSet, *, protocol: Protocol, num_classes: int,
                   members: dict[str, tuple[str, int]]) -> dict[str, Any]:
    """``members``: tensor member name -> (sha256, bytes)."""
    tensors = {"videos": tensor_entry(cs.videos), "labels": tensor_entry(cs.labels)}
    if cs.soft_labels is not None:
        tensors["soft_labels"] = tensor_entry(cs.soft_labels)
    m = cs.method
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "protocol": {"version": protocol.version, "sha256": protocol.sha256},
        "dataset": cs.dataset,
        "track": cs.track,
        "label_strategy": cs.label_strategy,
        "num_classes": num_classes,
        "method": {
            "name": m.name,
            "kind": m.kind.value,
            "config": dict(m.config),
            "seed": m.seed,
            "wall_seconds": m.wall_seconds,
            "device": m.device,
        },
        "external_data": list(cs.external_data),
        "external_weights": list(cs.external_weights),
        "tensors": tensors,
        "members": {name: {"sha256": sha, "bytes": size} for name, (sha, size) in members.items()},
        "created_with": {"vdcbench": __version__, "torch": torch.__version__},
    }


def encode_manifest(manifest: dict[str, Any], *, subject: str) -> bytes:
    """Canonical bytes (sorted keys, fixed indentation), after checking them against the schema,
    so a writer can only produce manifests its reader accepts."""
    try:
        text = json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ArchiveError(ArchiveErrorCode.SCHEMA,
                           f"{subject}: manifest is not representable as JSON ({err}); method "
                           "config must hold only strings, numbers, booleans, lists and "
                           "dicts") from None
    validate_manifest(json.loads(text), subject=subject)
    return (text + "\n").encode("ascii")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two parsers that disagree on which duplicate wins could be shown two different manifests.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse_manifest(data: bytes, *, subject: str) -> dict[str, Any]:
    """Decode and schema-check manifest bytes; ``ArchiveError`` on anything else."""
    try:
        text = data.decode("utf-8")
        manifest = json.loads(text, object_pairs_hook=reject_duplicate_keys,
                              parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        detail = str(err)[:_MAX_SCHEMA_MESSAGE]
        raise ArchiveError(ArchiveErrorCode.MANIFEST_NOT_JSON,
                           f"{subject}: {MANIFEST_MEMBER} is not valid JSON ({detail})") from None
    validate_manifest(manifest, subject=subject)
    return manifest


def validate_manifest(manifest: Any, *, subject: str) -> None:
    try:
        error = jsonschema.exceptions.best_match(_validator().iter_errors(manifest))
    except RecursionError:
        raise ArchiveError(ArchiveErrorCode.SCHEMA,
                           f"{subject}: {MANIFEST_MEMBER} is nested too deeply") from None
    if error is None:
        return
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    message = error.message
    if len(message) > _MAX_SCHEMA_MESSAGE:
        message = message[:_MAX_SCHEMA_MESSAGE] + "..."
    raise ArchiveError(ArchiveErrorCode.SCHEMA,
                       f"{subject}: {MANIFEST_MEMBER} does not match the schema at {where}: "
                       f"{message}")
