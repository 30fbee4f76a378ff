"""Leaderboard entries: one condensed set, one evaluation variant and schedule, per-seed results.

An entry lives at ``submissions/<dataset>/<id>/entry.json`` (schema:
``protocol/schemas/entry.schema.json``). It is made from result records by :func:`submit`, never
typed by hand: the records must agree on everything that makes two results comparable (protocol
hash, archive, data set and its store hash, track, label strategy, evaluation variant, teacher,
schedule), so an entry is one row of evidence that can be set beside another. It carries the
archive's sha256 and storage ledger, the condensation cost the manifest records, and per net the
per-seed results with the versions each run used. The summary per net (mean, std, n) is
derived; :meth:`Entry.from_dict` refuses one that does not match its seeds.

:func:`validate_entries` checks every entry under a submissions folder against its schema, the
protocol (version known, hash equal to that version's, names known), its location and, when the
archive file is at hand, the archive itself (sha256, validity, manifest).
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema

from vdcbench.core.atomic_file import write_json_atomic
from vdcbench.core.errors import UnknownNameError, VdcError
from vdcbench.core.stats import Spread
from vdcbench.protocol import PROTOCOL_DIR, Protocol, load_protocol, parse_track_id
from vdcbench.evaluation.records import EvalRecord

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
    dataset: str
    dataset_sha256: str
    track: str
    label_strategy: str
    variant: str
    teacher_sha256: str | None
    protocol_version: int
    protocol_sha256: str
    epochs: int
    official: bool
    archive: ArchiveRef
    ledger: Mapping[str, Any]
    condensation_wall_seconds: float | None
    condensation_device: str | None
    external_data: tuple[str, ...]
    external_weights: tuple[str, ...]
    results: tuple[NetResults, ...]     # sorted by net

    # -- derived -------------------------------------------------------------------------------
    @property
    def ipc(self) -> int:
        return parse_track_id(self.track)[0]

    @property
    def frames(self) -> int:
        return parse_track_id(self.track)[1]

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
            dataset=data["dataset"]["name"], dataset_sha256=data["dataset"]["sha256"],
            track=data["track"], label_strategy=data["label_strategy"], variant=data["variant"],
            teacher_sha256=data["teacher_sha256"],
            protocol_version=data["protocol"]["version"],
            protocol_sha256=data["protocol"]["sha256"],
            epochs=data["epochs"], official=data["official"],
            archive=ArchiveRef(sha256=a["sha256"], bytes=a["bytes"], path=a["path"], url=a["url"]),
            ledger=dict(data["ledger"]),
            condensation_wall_seconds=c["wall_seconds"], condensation_device=c["device"],
            external_data=tuple(data["external_data"]),
            external_weights=tuple(data["external_weights"]),
            results=tuple(sorted(results, key=lambda r: r.net)),
        )

    def to_disk(self, root: Path, *, replace: bool = False) -> Path:
        """Write ``<root>/<dataset>/<id>/entry.json`` atomically. An existing entry with other
        content is kept unless ``replace``."""
        path = Path(root) / self.relative_path()
        if path.exists() and not replace:
            try:
                same = json.loads(path.read_text()) == self.to_dict()
            except (OSError, ValueError):
                same = False
            if not same:
                raise VdcError(f"entry {path} exists with other content; pass --replace to "
                               "overwrite it")
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def from_disk(cls, path: Path) -> "Entry":
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise VdcError(f"cannot read entry {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise VdcError(f"{path}: not JSON ({exc})") from None
        return cls.from_dict(data, source=str(path))


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


# --------------------------------------------------------------------------------- submit
def entry_id(method: str, track: str, label_strategy: str, archive_sha256: str, variant: str,
             epochs: int, protocol_epochs: int) -> str:
    """``<method>-<track>-<labels>-<archive sha12>``, then ``-<variant>`` for a study variant and
    ``-e<epochs>`` for a shortened schedule, so such entries never take an official one's place."""
    slug = _SLUG.sub("-", method.lower()).strip("-._") or "method"
    parts = [slug, track, label_strategy, archive_sha256[:12]]
    if variant != "official":
        parts.append(variant)
    if epochs != protocol_epochs:
        parts.append(f"e{epochs}")
    return "-".join(parts)


# Fields records must share to form one entry, with the words used when they do not.
_SHARED_KEY_FIELDS = (
    ("protocol_version", "protocol version"),
    ("protocol_sha256", "protocol hash"),
    ("archive_sha256", "archive"),
    ("dataset", "data set"),
    ("dataset_sha256", "data-set store hash"),
    ("track", "track"),
    ("label_strategy", "label strategy"),
    ("variant", "evaluation variant"),
    ("teacher_sha256", "teacher"),
)


def _short(value: Any) -> str:
    text = str(value)
    return text[:12] if re.fullmatch(r"[0-9a-f]{64}", text) else text


def _differ(label: str, values: Iterable[Any]) -> VdcError:
    shown = sorted({_short(v) for v in values})
    return VdcError(f"records differ in {label} ({' vs '.join(shown)}); one entry holds records "
                    f"of one {label} only")


def submit(records: Sequence[EvalRecord], archive_path: str | os.PathLike[str], *,
           authors: Sequence[str] = (), method_url: str | None = None,
           archive_url: str | None = None,
           root: str | os.PathLike[str] | None = None) -> Entry:
    """Turn the result records of one archive into an entry (not yet written: see ``to_disk``).

    Refuses records that differ in protocol hash, archive, data set (or its store hash), track,
    label strategy, evaluation variant, teacher or schedule, two records of one (net, seed), and
    records that do not score the archive at ``archive_path``. ``root`` is the submissions folder:
    an archive inside it is referenced by its path relative to it; ``archive_url`` says where to
    download one that is not committed, ``method_url`` where the method is described.
    """
    from vdcbench.archive import read_archive

    records = list(records)
    if not records:
        raise VdcError("no result records to submit")
    for fieldname, label in _SHARED_KEY_FIELDS:
        values = {getattr(r.key, fieldname) for r in records}
        if len(values) > 1:
            raise _differ(label, values)
    epochs = {r.epochs for r in records}
    if len(epochs) > 1:
        raise _differ("schedule (epochs)", epochs)
    for attr, label in (("name", "method"), ("kind", "method kind")):
        values = {str(r.method.get(attr)) for r in records}
        if len(values) > 1:
            raise _differ(label, values)
    seen: set[tuple[str, int]] = set()
    for r in sorted(records, key=lambda r: (r.key.net, r.key.seed)):
        if (r.key.net, r.key.seed) in seen:
            raise VdcError(f"two records for net {r.key.net} seed {r.key.seed}; submit each "
                           "seed once")
        seen.add((r.key.net, r.key.seed))

    key = records[0].key
    protocol = _known_protocol(key.protocol_version, key.protocol_sha256, "the records")
    _check_names(protocol, key.dataset, key.track, key.label_strategy, key.variant,
                 {r.key.net for r in records}, "the records")
    _check_dataset_hash(protocol, key.dataset, key.dataset_sha256, "the records")

    loaded = read_archive(archive_path)
    if loaded.sha256 != key.archive_sha256:
        raise VdcError(f"the records score archive {key.archive_sha256[:12]} but "
                       f"{os.fspath(archive_path)} has sha256 {loaded.sha256[:12]}")
    manifest = loaded.manifest
    method = manifest["method"]
    for what, claimed, actual in (
            ("data set", key.dataset, manifest["dataset"]),
            ("track", key.track, manifest["track"]),
            ("label strategy", key.label_strategy, manifest["label_strategy"]),
            ("method", records[0].method.get("name"), method["name"]),
            ("method kind", records[0].method.get("kind"), method["kind"])):
        if claimed != actual:
            raise VdcError(f"the records say {what} {claimed!r} but the archive's manifest says "
                           f"{actual!r}")

    nets = []
    for net in sorted({r.key.net for r in records}):
        members = sorted((r for r in records if r.key.net == net), key=lambda r: r.key.seed)
        nets.append(NetResults(net=net, seeds=tuple(
            SeedResult(seed=r.key.seed, top1=float(r.top1), top5=float(r.top5),
                       reference_best_top1=(None if r.reference_best_top1 is None
                                            else float(r.reference_best_top1)),
                       iterations=r.iterations, batch_size=r.batch_size,
                       wall_seconds=float(r.wall_seconds), device=r.device,
                       weights_sha256=r.weights_sha256, final_loss=float(r.final_loss),
                       versions=dict(r.versions), torch_threads=r.torch_threads)
            for r in members)))
    epochs_run = records[0].epochs
    official = (key.variant == "official" and epochs_run == protocol.trainer.epochs
                and all(r.official for r in records))
    entry = Entry(
        id=entry_id(method["name"], key.track, key.label_strategy, key.archive_sha256,
                    key.variant, epochs_run, protocol.trainer.epochs),
        method=MethodRef(name=method["name"], kind=method["kind"], authors=tuple(authors),
                         url=method_url or None, config=dict(method["config"]),
                         seed=method["seed"]),
        dataset=key.dataset, dataset_sha256=key.dataset_sha256, track=key.track,
        label_strategy=key.label_strategy, variant=key.variant,
        teacher_sha256=key.teacher_sha256, protocol_version=key.protocol_version,
        protocol_sha256=key.protocol_sha256, epochs=epochs_run, official=official,
        archive=ArchiveRef(sha256=loaded.sha256, bytes=loaded.ledger.archive_bytes,
                           path=_relative_archive_path(archive_path, root), url=archive_url or None),
        ledger=loaded.ledger.to_dict(),
        condensation_wall_seconds=method["wall_seconds"], condensation_device=method["device"],
        external_data=tuple(manifest["external_data"]),
        external_weights=tuple(manifest["external_weights"]),
        results=tuple(nets),
    )
    # Round-trip through the schema: what submit makes, validate accepts.
    return Entry.from_dict(json.loads(json.dumps(entry.to_dict())), source=f"entry {entry.id}")


def _relative_archive_path(archive_path, root) -> str | None:
    if root is None:
        return None
    archive, base = Path(archive_path).resolve(), Path(root).resolve()
    try:
        return archive.relative_to(base).as_posix()
    except ValueError:
        return None


# ------------------------------------------------------------------------------- protocol
def _known_protocol(version: int, sha256: str, subject: str) -> Protocol:
    try:
        protocol = load_protocol(version)
    except VdcError as exc:
        raise VdcError(f"{subject}: {exc}") from None
    if sha256 != protocol.sha256:
        raise VdcError(f"{subject}: protocol hash {sha256[:12]} is not the hash of protocol "
                       f"v{version} ({protocol.short_hash}); results under another protocol "
                       "are never ranked beside these")
    return protocol


def _check_names(protocol: Protocol, dataset: str, track: str, labels: str, variant: str,
                 nets: Iterable[str], subject: str) -> None:
    try:
        protocol.track(dataset, track)
        protocol.label_strategy(labels)
        protocol.variant(variant)
        for net in sorted(nets):
            protocol.net(net)
    except UnknownNameError as exc:
        raise VdcError(f"{subject}: {exc}") from None


def _check_dataset_hash(protocol: Protocol, dataset: str, sha256: str, subject: str) -> None:
    """A data set the protocol generates has one store hash; a prepared one (on the user's
    disk) cannot be checked here."""
    ds = protocol.dataset(dataset)
    if ds.generator is None:
        return
    from vdcbench.data.splits import dataset_sha256
    expected = dataset_sha256(ds)
    if sha256 != expected:
        raise VdcError(f"{subject}: data-set store hash {sha256[:12]} is not the {dataset} store "
                       f"of protocol v{protocol.version} ({expected[:12]})")


# ------------------------------------------------------------------------------- validate
def entry_paths(root: Path) -> list[Path]:
    """Every ``<root>/<dataset>/<id>/entry.json`` (the records and archives folders excluded)."""
    root = Path(root)
    return sorted(p for p in root.glob(f"*/*/{ENTRY_FILE}") if p.parts[-3] not in RESERVED_DIRS)


def archive_file(root: Path, entry: Entry) -> Path | None:
    """The committed archive of ``entry`` under ``root``, if it names one (refusing paths that
    leave ``root``)."""
    if entry.archive.path is None:
        return None
    rel = PurePosixPath(entry.archive.path)
    if rel.is_absolute() or ".." in rel.parts or "\\" in entry.archive.path:
        raise VdcError(f"entry {entry.id}: archive path {entry.archive.path!r} leaves the "
                       "submissions folder")
    return Path(root) / Path(*rel.parts)


def check_entry(entry: Entry, path: Path, root: Path, *, read_archives: bool = True) -> None:
    """Everything a schema cannot say: the protocol, the location, the claims about the archive."""
    where = str(path)
    protocol = _known_protocol(entry.protocol_version, entry.protocol_sha256, where)
    _check_names(protocol, entry.dataset, entry.track, entry.label_strategy, entry.variant,
                 entry.nets, where)
    _check_dataset_hash(protocol, entry.dataset, entry.dataset_sha256, where)
    expected_id = entry_id(entry.method.name, entry.track, entry.label_strategy,
                           entry.archive.sha256, entry.variant, entry.epochs,
                           protocol.trainer.epochs)
    if entry.id != expected_id:
        raise VdcError(f"{where}: id {entry.id!r} should be {expected_id!r}")
    if path.parent.name != entry.id or path.parent.parent.name != entry.dataset:
        raise VdcError(f"{where}: entry {entry.id} of data set {entry.dataset} belongs at "
                       f"{entry.relative_path().as_posix()}")
    if entry.official and (entry.variant != "official" or entry.epochs != protocol.trainer.epochs):
        raise VdcError(f"{where}: claims official results with variant {entry.variant} and "
                       f"{entry.epochs} epochs (official: variant official, "
                       f"{protocol.trainer.epochs} epochs)")
    uses_teacher = protocol.label_strategy(entry.label_strategy).labels == "teacher-online"
    if uses_teacher != (entry.teacher_sha256 is not None):
        raise VdcError(f"{where}: label strategy {entry.label_strategy} "
                       + ("needs a teacher sha256" if uses_teacher else "uses no teacher"))
    if entry.ledger.get("archive_bytes") != entry.archive.bytes:
        raise VdcError(f"{where}: archive bytes {entry.archive.bytes} disagree with the ledger's "
                       f"{entry.ledger.get('archive_bytes')}")
    file = archive_file(root, entry)
    if file is None or not read_archives:
        return
    if not file.is_file():
        raise VdcError(f"{where}: archive {entry.archive.path} is missing")
    from vdcbench.archive import read_archive
    loaded = read_archive(file)
    if loaded.sha256 != entry.archive.sha256:
        raise VdcError(f"{where}: archive {entry.archive.path} has sha256 {loaded.sha256[:12]}, "
                       f"not the sha256 the entry's results were measured on "
                       f"({entry.archive.sha256[:12]})")
    manifest = loaded.manifest
    for what, claimed, actual in (
            ("data set", entry.dataset, manifest["dataset"]),
            ("track", entry.track, manifest["track"]),
            ("label strategy", entry.label_strategy, manifest["label_strategy"]),
            ("method", entry.method.name, manifest["method"]["name"]),
            ("method kind", entry.method.kind, manifest["method"]["kind"]),
            ("protocol hash", entry.protocol_sha256, manifest["protocol"]["sha256"])):
        if claimed != actual:
            raise VdcError(f"{where}: says {what} {_short(claimed)!r} but its archive says "
                           f"{_short(actual)!r}")


def validate_entries(root: str | os.PathLike[str], *, read_archives: bool = True) -> list[Entry]:
    """Load and check every entry under ``root``; the first problem is raised as one line."""
    root = Path(root)
    if not root.is_dir():
        raise VdcError(f"submissions folder {root} does not exist")
    entries, seen = [], {}
    for path in entry_paths(root):
        entry = Entry.from_disk(path)
        check_entry(entry, path, root, read_archives=read_archives)
        same = (entry.archive.sha256, entry.variant, entry.epochs, entry.teacher_sha256)
        if same in seen:
            raise VdcError(f"{path}: measures the same archive, variant and schedule as "
                           f"{seen[same]}")
        seen[same] = path
        entries.append(entry)
    return entries
