"""Leaderboard entries: one condensed set, one evaluation variant and schedule, per-seed results.

An entry lives at ``submissions/<dataset>/<id>/entry.json`` (schema:
``protocol/schemas/entry.schema.json``). It is made from result records by
:func:`~vdcbench.leaderboard.submit.submit`, never typed by hand: the records must be one
:class:`~vdcbench.leaderboard.measurement.Measurement` (protocol hash, archive, data set and its
store hash, track, label strategy, evaluation variant, teacher, temporal formation) under one
schedule, so an entry is one row of evidence that can be set beside another. It carries the
archive's sha256 and storage ledger, the condensation cost the manifest records, and per net the
per-seed results with the versions each run used. The summary per net (mean, std, n) is derived;
:meth:`Entry.from_dict` refuses one that does not match its seeds.

An entry of a temporal track of the protocol's equal-frame grid carries the formation its records
were evaluated with (``formation``, e.g. ``slide-window``); entries without it are ``none``, each
instance its own clip, as every entry written before formations is, and they keep their bytes.

What a schema cannot check is :mod:`vdcbench.leaderboard.validate`'s.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from vdcbench.core.atomic_file import write_json_atomic
from vdcbench.core.errors import VdcError
from vdcbench.core.json_values import load_json_strict, parse_json_strict
from vdcbench.core.stats import Spread
from vdcbench.protocol import PROTOCOL_DIR, parse_track_id
from vdcbench.evaluation.records import EvalRecord
from vdcbench.leaderboard.measurement import FIELD_NAMES, Measurement
from vdcbench.leaderboard.verification import Verification

ENTRY_FORMAT = "vdcbench-entry"
ENTRY_VERSION = 1
ENTRY_FILE = "entry.json"
SCHEMA_PATH = PROTOCOL_DIR / "schemas" / "entry.schema.json"
# Folders of submissions/ that are not data sets.
RESERVED_DIRS = ("records", "archives", "ablations")
RANDOM_METHOD = "random"

_SLUG = re.compile(r"[^a-z0-9_.-]+")
_SUMMARY_TOLERANCE = 1e-9
_MAX_MESSAGE = 200


# ------------------------------------------------------------------------------------ types
@dataclass(frozen=True)
class SeedResult:
    """One evaluation seed of one net: the figures and the provenance of its record."""

    seed: int
    top1: float
    top5: float
    reference_best_top1: float | None
    iterations: int
    batch_size: int
    wall_seconds: float
    device: str
    weights_sha256: str
    final_loss: float
    versions: Mapping[str, str] = field(default_factory=dict)
    # On a CPU float sums follow the intra-op thread count, so a seed reproduces bit for bit only
    # at its record's count. Optional: entries made before it was carried load without it.
    torch_threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        body = {"seed": self.seed, "top1": self.top1, "top5": self.top5,
                "reference_best_top1": self.reference_best_top1, "iterations": self.iterations,
                "batch_size": self.batch_size, "wall_seconds": self.wall_seconds,
                "device": self.device, "weights_sha256": self.weights_sha256,
                "final_loss": self.final_loss, "versions": dict(sorted(self.versions.items()))}
        if self.torch_threads is not None:
            body["torch_threads"] = self.torch_threads
        return body

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SeedResult":
        return cls(**{**data, "versions": dict(data["versions"])})

    @classmethod
    def from_record(cls, record: EvalRecord) -> "SeedResult":
        # Figures as floats, so that a record holding an integral value still writes "30.0".
        return cls(seed=record.key.seed, top1=float(record.top1), top5=float(record.top5),
                   reference_best_top1=(None if record.reference_best_top1 is None
                                        else float(record.reference_best_top1)),
                   iterations=record.iterations, batch_size=record.batch_size,
                   wall_seconds=float(record.wall_seconds), device=record.device,
                   weights_sha256=record.weights_sha256, final_loss=float(record.final_loss),
                   versions=record.versions.to_dict(), torch_threads=record.torch_threads)


@dataclass(frozen=True)
class NetResults:
    """The seeds of one evaluation net, sorted by seed."""

    net: str
    seeds: tuple[SeedResult, ...]

    @property
    def n(self) -> int:
        return len(self.seeds)

    def metric(self, name: str) -> dict[int, float]:
        """seed -> value of ``name`` (``top1`` or ``top5``)."""
        return {s.seed: float(getattr(s, name)) for s in self.seeds}

    def spread(self, name: str) -> Spread:
        """Mean, sample std and n of ``name`` (``top1`` or ``top5``) over the seeds."""
        return Spread.of(getattr(s, name) for s in self.seeds)

    def summary(self) -> dict[str, float | int]:
        """The summary as entry.json stores it (and ``from_dict`` checks it against the seeds)."""
        top1, top5 = self.spread("top1"), self.spread("top5")
        return {"n": self.n, "top1_mean": top1.mean, "top1_std": top1.std,
                "top5_mean": top5.mean, "top5_std": top5.std}

    def to_dict(self) -> dict[str, Any]:
        return {"net": self.net, **self.summary(), "seeds": [s.to_dict() for s in self.seeds]}


@dataclass(frozen=True)
class ArchiveRef:
    sha256: str
    bytes: int
    path: str | None      # relative to submissions/, when the archive is committed there
    url: str | None       # where to download it


@dataclass(frozen=True)
class MethodRef:
    name: str
    kind: str
    authors: tuple[str, ...] = ()
    url: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None


@dataclass(frozen=True)
class Entry:
    id: str
    method: MethodRef
    measurement: Measurement    # protocol, archive, data set and store, track, labels, variant...
    epochs: int
    official: bool
    archive: ArchiveRef         # its sha256 is the measurement's archive_sha256
    ledger: Mapping[str, Any]
    condensation_wall_seconds: float | None
    condensation_device: str | None
    external_data: tuple[str, ...]
    external_weights: tuple[str, ...]
    results: tuple[NetResults, ...]     # sorted by net
    # Who vouches for the results (verification.py). None: an entry written before statuses,
    # read as self-reported by this repository's runs (``verification.status_of``).
    verification: Verification | None = None

    def __getattr__(self, name: str) -> Any:
        # Entries are read as ``entry.track``, ``entry.dataset``... by the tables, the pages and
        # the CLI, while the fields themselves are listed once, in Measurement.
        if name in FIELD_NAMES:
            return getattr(self.measurement, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- derived -------------------------------------------------------------------------------
    @property
    def ipc(self) -> int:
        return parse_track_id(self.track)[0]

    @property
    def frames(self) -> int:
        return parse_track_id(self.track)[1]

    @property
    def formation_name(self) -> str:
        """The formation's id; ``none`` for the instance as its own clip."""
        return "none" if self.formation is None else self.formation

    @property
    def nets(self) -> tuple[str, ...]:
        return tuple(r.net for r in self.results)

    def net(self, name: str) -> NetResults | None:
        return next((r for r in self.results if r.net == name), None)

    def relative_path(self) -> Path:
        return Path(self.dataset) / self.id / ENTRY_FILE

    # -- disk ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        m = self.method
        return {
            "format": ENTRY_FORMAT,
            "format_version": ENTRY_VERSION,
            "id": self.id,
            "method": {"name": m.name, "kind": m.kind, "authors": list(m.authors), "url": m.url,
                       "config": dict(m.config), "seed": m.seed},
            "dataset": {"name": self.dataset, "sha256": self.dataset_sha256},
            "track": self.track,
            # Written only when there is one: an entry without it keeps the bytes it always had.
            **({} if self.formation is None else {"formation": self.formation}),
            "label_strategy": self.label_strategy,
            "variant": self.variant,
            "teacher_sha256": self.teacher_sha256,
            "protocol": {"version": self.protocol_version, "sha256": self.protocol_sha256},
            "epochs": self.epochs,
            "official": self.official,
            "archive": {"sha256": self.archive.sha256, "bytes": self.archive.bytes,
                        "path": self.archive.path, "url": self.archive.url},
            "ledger": dict(self.ledger),
            "condensation": {"wall_seconds": self.condensation_wall_seconds,
                             "device": self.condensation_device},
            "external_data": list(self.external_data),
            "external_weights": list(self.external_weights),
            "results": [r.to_dict() for r in self.results],
            **({} if self.verification is None
               else {"verification": self.verification.to_dict()}),
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "entry") -> "Entry":
        """Parse and check an entry: its schema, then that its summaries match its seeds."""
        _check_schema(data, source)
        results = []
        for block in data["results"]:
            seeds = tuple(sorted((SeedResult.from_dict(s) for s in block["seeds"]),
                                 key=lambda s: s.seed))
            if len({s.seed for s in seeds}) != len(seeds):
                raise VdcError(f"{source}: net {block['net']} lists a seed twice")
            net = NetResults(net=block["net"], seeds=seeds)
            for name, value in net.summary().items():
                if not math.isclose(block[name], value, rel_tol=0, abs_tol=_SUMMARY_TOLERANCE):
                    raise VdcError(f"{source}: net {net.net} {name} is {block[name]!r} but its "
                                   f"seeds give {value!r} (edited by hand? resubmit the records)")
            results.append(net)
        if len({r.net for r in results}) != len(results):
            raise VdcError(f"{source}: a net is listed twice in results")
        m, a, c = data["method"], data["archive"], data["condensation"]
        return cls(
            id=data["id"],
            method=MethodRef(name=m["name"], kind=m["kind"], authors=tuple(m["authors"]),
                             url=m["url"], config=dict(m["config"]), seed=m["seed"]),
            measurement=Measurement(
                archive_sha256=a["sha256"], protocol_version=data["protocol"]["version"],
                protocol_sha256=data["protocol"]["sha256"], dataset=data["dataset"]["name"],
                dataset_sha256=data["dataset"]["sha256"], track=data["track"],
                label_strategy=data["label_strategy"], variant=data["variant"],
                teacher_sha256=data["teacher_sha256"], epochs=data["epochs"],
                # An entry holds the protocol teacher's results: entry.schema.json has no
                # place for another teacher profile, and submit refuses records made with one.
                teacher_profile=None, formation=data.get("formation")),
            epochs=data["epochs"], official=data["official"],
            archive=ArchiveRef(sha256=a["sha256"], bytes=a["bytes"], path=a["path"], url=a["url"]),
            ledger=dict(data["ledger"]),
            condensation_wall_seconds=c["wall_seconds"], condensation_device=c["device"],
            external_data=tuple(data["external_data"]),
            external_weights=tuple(data["external_weights"]),
            results=tuple(sorted(results, key=lambda r: r.net)),
            verification=(Verification.from_dict(data["verification"])
                          if "verification" in data else None),
        )

    def to_disk(self, root: Path, *, replace: bool = False) -> Path:
        """Write ``<root>/<dataset>/<id>/entry.json`` atomically. An existing entry with other
        content is kept unless ``replace``."""
        path = Path(root) / self.relative_path()
        if path.exists() and not replace:
            try:
                same = parse_json_strict(path.read_bytes()) == self.to_dict()
            except (OSError, ValueError):
                same = False
            if not same:
                raise VdcError(f"entry {path} exists with other content; pass --replace to "
                               "overwrite it")
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def from_disk(cls, path: Path) -> "Entry":
        return cls.from_dict(read_json(path, what="entry "), source=str(path))


def read_json(path: str | os.PathLike[str], *, what: str = "") -> Any:
    """The JSON in ``path``; an unreadable file or bad JSON is one line naming ``what`` and it."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise VdcError(f"cannot read {what}{os.fspath(path)}: {exc.strerror or exc}") from None
    return load_json_strict(text, os.fspath(path))


# --------------------------------------------------------------------------------- schema
@functools.lru_cache(maxsize=None)
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _check_schema(data: Any, source: str) -> None:
    errors = sorted(_validator().iter_errors(data), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        message = " ".join(err.message.split())
        if len(message) > _MAX_MESSAGE:
            message = message[:_MAX_MESSAGE] + "..."
        raise VdcError(f"{source}: breaks entry.schema.json at {where}: {message}")


# ------------------------------------------------------------------------------------- id
def entry_id(method: str, track: str, label_strategy: str, archive_sha256: str, variant: str,
             epochs: int, protocol_epochs: int, formation: str | None = None) -> str:
    """``<method>-<track>-<labels>-<archive sha12>``, then ``-<formation>`` for a temporal
    formation (one archive formed two ways is two entries), ``-<variant>`` for a study variant and
    ``-e<epochs>`` for a shortened schedule, so such entries never take an official one's place."""
    slug = _SLUG.sub("-", method.lower()).strip("-._") or "method"
    parts = [slug, track, label_strategy, archive_sha256[:12]]
    if formation is not None:
        parts.append(formation)
    if variant != "official":
        parts.append(variant)
    if epochs != protocol_epochs:
        parts.append(f"e{epochs}")
    return "-".join(parts)

