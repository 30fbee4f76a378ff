"""manifest.json: built from a condensed set, encoded canonically, parsed strictly.

The JSON schema in ``protocol/schemas/manifest.schema.json`` is the authority on shape; this
module adds only what a schema cannot say (duplicate keys, non-standard constants) and the
canonical encoding that keeps written archives byte-identical.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import jsonschema
import torch

from vdcbench.core.json_values import parse_json_strict
from vdcbench.core.version import __version__
from vdcbench.archive.errors import ArchiveError, ArchiveErrorCode
from vdcbench.archive.condensed import CondensedSet, MethodInfo
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


@dataclass(frozen=True)
class TensorSpec:
    """A stored tensor as the manifest declares it (checked against its safetensors header)."""

    dtype: str          # a manifest dtype name: uint8, float16, float32, int64
    shape: tuple[int, ...]

    @classmethod
    def of(cls, tensor: torch.Tensor) -> "TensorSpec":
        return cls(dtype=DTYPE_NAMES.get(tensor.dtype, str(tensor.dtype)),
                   shape=tuple(int(d) for d in tensor.shape))

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class MemberSpec:
    """A tensor file of the tar: the sha256 and size of its bytes."""

    sha256: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "bytes": self.bytes}


@dataclass(frozen=True)
class Manifest:
    """``manifest.json`` of a submission: what the archive claims, typed.

    Built by the writer from a condensed set, and by the reader from JSON that has already passed
    the schema (``protocol/schemas/manifest.schema.json``), which stays the authority on shape;
    ``to_dict`` gives the JSON back exactly (the committed archives' manifests re-encode to their
    own bytes). ``format`` and ``format_version`` are constants, so they are not fields.
    ``created_with`` stays a mapping: it is provenance, shown, never dispatched on.

    ``method.wall_seconds`` is written only when set, and the writer never sets it (see
    ``manifest_of``): archives written before issue 16 carry it and keep it; a legacy manifest
    that spelt it ``null`` re-encodes without the key.
    """

    protocol_version: int
    protocol_sha256: str
    dataset: str
    track: str
    label_strategy: str
    num_classes: int
    method: MethodInfo
    external_data: tuple[str, ...]
    external_weights: tuple[str, ...]
    tensors: Mapping[str, TensorSpec]       # videos, labels and (soft strategy) soft_labels
    members: Mapping[str, MemberSpec]       # by tar member name; manifest.json not listed
    created_with: Mapping[str, str]

    def to_dict(self) -> dict[str, Any]:
        m = self.method
        method: dict[str, Any] = {"name": m.name, "kind": m.kind.value, "config": dict(m.config),
                                  "seed": m.seed}
        if m.wall_seconds is not None:
            method["wall_seconds"] = m.wall_seconds
        method["device"] = m.device
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "protocol": {"version": self.protocol_version, "sha256": self.protocol_sha256},
            "dataset": self.dataset,
            "track": self.track,
            "label_strategy": self.label_strategy,
            "num_classes": self.num_classes,
            "method": method,
            "external_data": list(self.external_data),
            "external_weights": list(self.external_weights),
            "tensors": {name: spec.to_dict() for name, spec in self.tensors.items()},
            "members": {name: spec.to_dict() for name, spec in self.members.items()},
            "created_with": dict(self.created_with),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Manifest":
        """The manifest of schema-valid JSON (``parse_manifest``'s output)."""
        m = data["method"]
        return cls(
            protocol_version=data["protocol"]["version"],
            protocol_sha256=data["protocol"]["sha256"],
            dataset=data["dataset"], track=data["track"], label_strategy=data["label_strategy"],
            num_classes=data["num_classes"],
            method=MethodInfo(name=m["name"], kind=m["kind"], config=m["config"], seed=m["seed"],
                              wall_seconds=m.get("wall_seconds"), device=m["device"]),
            external_data=tuple(data["external_data"]),
            external_weights=tuple(data["external_weights"]),
            tensors=MappingProxyType({n: TensorSpec(dtype=t["dtype"], shape=tuple(t["shape"]))
                                      for n, t in data["tensors"].items()}),
            members=MappingProxyType({n: MemberSpec(sha256=e["sha256"], bytes=e["bytes"])
                                      for n, e in data["members"].items()}),
            created_with=MappingProxyType(dict(data["created_with"])),
        )


def tensor_entry(tensor: torch.Tensor) -> dict[str, Any]:
    return TensorSpec.of(tensor).to_dict()


def manifest_of(cs: CondensedSet, *, protocol: Protocol, num_classes: int,
                members: dict[str, tuple[str, int]]) -> Manifest:
    """``members``: tensor member name -> (sha256, bytes).

    The method's wall time is left out: the same set must give the same bytes, whatever the
    condensation took (the writer records the time beside the archive instead)."""
    tensors = {"videos": TensorSpec.of(cs.videos), "labels": TensorSpec.of(cs.labels)}
    if cs.soft_labels is not None:
        tensors["soft_labels"] = TensorSpec.of(cs.soft_labels)
    return Manifest(
        protocol_version=protocol.version, protocol_sha256=protocol.sha256,
        dataset=cs.dataset, track=cs.track, label_strategy=cs.label_strategy,
        num_classes=num_classes, method=dataclasses.replace(cs.method, wall_seconds=None),
        external_data=tuple(cs.external_data),
        external_weights=tuple(cs.external_weights), tensors=MappingProxyType(tensors),
        members=MappingProxyType({name: MemberSpec(sha256=sha, bytes=size)
                                  for name, (sha, size) in members.items()}),
        created_with=MappingProxyType({"vdcbench": __version__, "torch": torch.__version__}),
    )


def build_manifest(cs: CondensedSet, *, protocol: Protocol, num_classes: int,
                   members: dict[str, tuple[str, int]]) -> dict[str, Any]:
    """The manifest JSON of ``cs`` as a dict (``manifest_of(...).to_dict()``)."""
    return manifest_of(cs, protocol=protocol, num_classes=num_classes,
                       members=members).to_dict()


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
        manifest = parse_json_strict(text, object_pairs_hook=reject_duplicate_keys)
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
