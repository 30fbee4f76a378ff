"""Checking entries: everything a schema cannot say about an entry under ``submissions/``.

The protocol (version known, hash equal to that version's, names known, the data-set store hash
of a generated data set), the track and formation (:mod:`~vdcbench.leaderboard.temporal`), the
entry's id and location, its official claim, and, when the
archive file is at hand, the archive itself (sha256, validity, manifest). :func:`submit` runs
the protocol checks on the records before an entry exists.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from vdcbench.core.errors import UnknownNameError, VdcError
from vdcbench.leaderboard.entry import ENTRY_FILE, RESERVED_DIRS, Entry, entry_id
from vdcbench.leaderboard.measurement import shown
from vdcbench.leaderboard.temporal import temporal_problem
from vdcbench.leaderboard.verification import check_status
from vdcbench.protocol import Protocol, load_protocol


def known_protocol(version: int, sha256: str, subject: str) -> Protocol:
    try:
        protocol = load_protocol(version)
    except VdcError as exc:
        raise VdcError(f"{subject}: {exc}") from None
    if sha256 != protocol.sha256:
        raise VdcError(f"{subject}: protocol hash {sha256[:12]} is not the hash of protocol "
                       f"v{version} ({protocol.short_hash}); results under another protocol "
                       "are never ranked beside these")
    return protocol


def check_names(protocol: Protocol, dataset: str, track: str, labels: str, variant: str,
                 nets: Iterable[str], subject: str) -> None:
    try:
        protocol.track(dataset, track)
        protocol.label_strategy(labels)
        protocol.variant(variant)
        for net in sorted(nets):
            protocol.net(net)
    except UnknownNameError as exc:
        raise VdcError(f"{subject}: {exc}") from None


def check_dataset_hash(protocol: Protocol, dataset: str, sha256: str, subject: str) -> None:
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
    protocol = known_protocol(entry.protocol_version, entry.protocol_sha256, where)
    check_names(protocol, entry.dataset, entry.track, entry.label_strategy, entry.variant,
                 entry.nets, where)
    check_dataset_hash(protocol, entry.dataset, entry.dataset_sha256, where)
    problem = temporal_problem(protocol, entry.dataset, entry.track, entry.formation,
                               entry.variant, entry.epochs)
    if problem is not None:
        raise VdcError(f"{where}: {problem}")
    expected_id = entry_id(entry.method.name, entry.track, entry.label_strategy,
                           entry.archive.sha256, entry.variant, entry.epochs,
                           protocol.trainer.epochs, entry.formation)
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
    check_declarations(entry, where)
    check_status(entry, where)
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
    wrong = disagreement(manifest_claims(
        loaded.manifest.to_dict(), dataset=entry.dataset, track=entry.track,
        label_strategy=entry.label_strategy, method=entry.method.name,
        method_kind=entry.method.kind) + (
        ("protocol hash", entry.protocol_sha256, loaded.manifest.protocol_sha256),
        ("external data", _listed(entry.external_data), _listed(loaded.manifest.external_data)),
        ("external weights", _listed(entry.external_weights),
         _listed(loaded.manifest.external_weights))))
    if wrong is not None:
        what, claimed, actual = wrong
        raise VdcError(f"{where}: says {what} {shown(claimed)!r} but its archive says "
                       f"{shown(actual)!r}")


# What in a method's settings names outside data or weights: a URL, a weights file, or a
# setting whose name says so. The manifest's external_data / external_weights must then declare
# it: results helped by outside data are a different claim from condensing the data set alone.
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_WEIGHT_FILE = re.compile(r"\.(pth|pt|ckpt|safetensors|bin|h5|onnx|pkl)$", re.IGNORECASE)
_WEIGHT_KEYS = frozenset({"pretrained", "pretrained_weights", "weights", "weights_path",
                          "init_weights", "checkpoint_path", "backbone_weights"})
_DATA_KEYS = frozenset({"extra_data", "external_data", "data_root", "extra_videos",
                        "unlabeled_data", "additional_data"})


def undeclared_external(config: Mapping[str, Any], external_data: Iterable[str],
                        external_weights: Iterable[str]) -> str | None:
    """The first setting that names outside weights or data the lists do not declare."""
    data, weights = list(external_data), list(external_weights)
    for key, value in sorted(config.items()):
        if value is None or value is False or value == "":
            continue
        text = value if isinstance(value, str) else ""
        names_weights = key.lower() in _WEIGHT_KEYS or bool(_WEIGHT_FILE.search(text))
        names_data = key.lower() in _DATA_KEYS
        if _URL.match(text) and not names_weights:
            names_data = True
        if names_weights and not weights:
            return f"its method setting {key}={value!r} names external weights"
        if names_data and not data:
            return f"its method setting {key}={value!r} names external data"
    return None


def check_declarations(entry: Entry, where: str) -> None:
    """Refuse an entry whose method settings name outside weights or data it does not declare."""
    problem = undeclared_external(entry.method.config, entry.external_data,
                                  entry.external_weights)
    if problem is not None:
        raise VdcError(f"{where}: {problem} but the entry declares none; declare it in the "
                       "archive's manifest (CondensedSet external_data / external_weights) "
                       "and resubmit")


def _listed(sources: Iterable[str]) -> str:
    return "; ".join(sources) or "none"


def manifest_claims(manifest: Mapping[str, Any], *, dataset: str, track: str,
                    label_strategy: str, method: Any, method_kind: Any
                    ) -> tuple[tuple[str, Any, Any], ...]:
    """(what, claimed, what the archive's manifest says) for what results claim of an archive."""
    return (("data set", dataset, manifest["dataset"]),
            ("track", track, manifest["track"]),
            ("label strategy", label_strategy, manifest["label_strategy"]),
            ("method", method, manifest["method"]["name"]),
            ("method kind", method_kind, manifest["method"]["kind"]))


def disagreement(claims: Iterable[tuple[str, Any, Any]]) -> tuple[str, Any, Any] | None:
    """The first (what, claimed, actual) whose claim is not what the archive says, if any."""
    return next((claim for claim in claims if claim[1] != claim[2]), None)


def validate_entries(root: str | os.PathLike[str], *, read_archives: bool = True) -> list[Entry]:
    """Load and check every entry under ``root``; the first problem is raised as one line."""
    root = Path(root)
    if not root.is_dir():
        raise VdcError(f"submissions folder {root} does not exist")
    entries, seen = [], {}
    for path in entry_paths(root):
        entry = Entry.from_disk(path)
        check_entry(entry, path, root, read_archives=read_archives)
        same = (entry.archive.sha256, entry.variant, entry.epochs, entry.teacher_sha256,
                entry.formation)
        if same in seen:
            raise VdcError(f"{path}: measures the same archive, variant, schedule and formation "
                           f"as {seen[same]}")
        seen[same] = path
        entries.append(entry)
    return entries
