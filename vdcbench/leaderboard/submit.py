"""Result records -> an entry: :func:`submit`.

The records must be one measurement (the same :class:`~vdcbench.leaderboard.measurement.
Measurement`, schedule and method), hold each (net, seed) once, pass the protocol's checks, and
score the archive handed in; the entry then carries that archive's ledger and the condensation
cost its manifest (archives from before issue 16) or its timing sidecar records.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from vdcbench.archive.timing import condensation_timing
from vdcbench.core.errors import VdcError
from vdcbench.core.json_values import dumps_strict
from vdcbench.evaluation.records import EvalRecord
from vdcbench.leaderboard.entry import (ArchiveRef, Entry, MethodRef, NetResults, SeedResult,
                                        entry_id)
from vdcbench.leaderboard.measurement import FIELD_LABELS, Measurement, shown
from vdcbench.leaderboard.temporal import temporal_problem
from vdcbench.leaderboard.validate import (check_dataset_hash, check_declarations, check_names,
                                           disagreement, known_protocol, manifest_claims)
from vdcbench.leaderboard.verification import carried_over, self_reported
from vdcbench.protocol import Protocol

_SUBJECT = "the records"


def submit(records: Sequence[EvalRecord], archive_path: str | os.PathLike[str], *,
           authors: Sequence[str] = (), method_url: str | None = None,
           archive_url: str | None = None,
           root: str | os.PathLike[str] | None = None) -> Entry:
    """Turn the result records of one archive into an entry (not yet written: see ``to_disk``).

    Refuses records that differ in protocol hash, archive, data set (or its store hash), track,
    label strategy, evaluation variant, teacher, schedule or temporal formation, two records of
    one (net, seed), records of a study track, records with a formation that are not an official
    measurement of a temporal track of the equal-frame grid (``temporal``), and records that do
    not score the archive at ``archive_path``. ``root`` is the submissions folder:
    an archive inside it is referenced by its path relative to it; ``archive_url`` says where to
    download one that is not committed, ``method_url`` where the method is described.
    """
    records = list(records)
    measurement = one_measurement(records)
    if measurement.teacher_profile is not None:
        raise VdcError(f"the records depend on a teacher of profile "
                       f"{shown(measurement.teacher_profile)}, not the protocol teacher; the "
                       "leaderboard ranks the protocol teacher's results only (compare these "
                       "with vdcbench results, whose tables keep each teacher profile apart)")
    protocol = _checked_protocol(measurement, {r.key.net for r in records})
    problem = temporal_problem(protocol, measurement.dataset, measurement.track,
                               measurement.formation, measurement.variant, records[0].epochs)
    if problem is not None:
        raise VdcError(f"{_SUBJECT}: {problem}")
    loaded = _scored_archive(archive_path, measurement, records[0])
    manifest = loaded.manifest.to_dict()
    method = manifest["method"]
    timing = condensation_timing(archive_path, loaded.sha256, loaded.manifest.method)
    epochs = records[0].epochs
    entry = Entry(
        id=entry_id(method["name"], measurement.track, measurement.label_strategy,
                    measurement.archive_sha256, measurement.variant, epochs,
                    protocol.trainer.epochs, measurement.formation),
        method=MethodRef(name=method["name"], kind=method["kind"], authors=tuple(authors),
                         url=method_url or None, config=dict(method["config"]),
                         seed=method["seed"]),
        measurement=measurement, epochs=epochs,
        official=(measurement.variant == "official" and epochs == protocol.trainer.epochs
                  and all(r.official for r in records)),
        archive=ArchiveRef(sha256=loaded.sha256, bytes=loaded.ledger.archive_bytes,
                           path=_relative_archive_path(archive_path, root),
                           url=archive_url or None),
        ledger=loaded.ledger.to_dict(),
        # The manifest's time (archives from before issue 16), else the timing sidecar's.
        condensation_wall_seconds=timing.wall_seconds if timing else None,
        condensation_device=method["device"],
        external_data=tuple(manifest["external_data"]),
        external_weights=tuple(manifest["external_weights"]),
        results=net_results(records),
    )
    check_declarations(entry, f"entry {entry.id}")
    # Nobody has re-scored new results: self-reported, by its authors, where its records ran;
    # a resubmission keeps an earned status while it still describes the entry.
    previous = _existing(root, entry)
    entry = dataclasses.replace(entry, verification=carried_over(previous, entry) or self_reported(
        entry.archive.sha256, entry.method.authors, entry.results))
    # Round-trip through the schema: what submit makes, validate accepts.
    # dumps_strict: a NaN or infinity (a manifest's wall time) is refused, never written as text.
    return Entry.from_dict(json.loads(dumps_strict(entry.to_dict())), source=f"entry {entry.id}")


def one_measurement(records: Sequence[EvalRecord]) -> Measurement:
    """The measurement the records share, refusing records of several (or of one (net, seed)
    twice): an entry is one row of evidence that can be set beside another."""
    if not records:
        raise VdcError("no result records to submit")
    for name, label in FIELD_LABELS.items():
        values = {getattr(r.key, name) for r in records}
        if len(values) > 1:
            raise _differ(label, values)
    for attr, label in (("name", "method"), ("kind", "method kind")):
        values = {str(getattr(r.method, attr)) for r in records}
        if len(values) > 1:
            raise _differ(label, values)
    seen: set[tuple[str, int]] = set()
    for r in sorted(records, key=lambda r: (r.key.net, r.key.seed)):
        if (r.key.net, r.key.seed) in seen:
            raise VdcError(f"two records for net {r.key.net} seed {r.key.seed}; submit each "
                           "seed once")
        seen.add((r.key.net, r.key.seed))
    return Measurement.of(records[0].key)


def net_results(records: Iterable[EvalRecord]) -> tuple[NetResults, ...]:
    """The records as results per net (sorted by net), each net's seeds sorted by seed."""
    by_net: dict[str, list[EvalRecord]] = {}
    for r in records:
        by_net.setdefault(r.key.net, []).append(r)
    return tuple(NetResults(net=net, seeds=tuple(
        SeedResult.from_record(r) for r in sorted(by_net[net], key=lambda r: r.key.seed)))
        for net in sorted(by_net))


def _differ(label: str, values: Iterable[Any]) -> VdcError:
    different = sorted({shown(v) for v in values})
    return VdcError(f"records differ in {label} ({' vs '.join(different)}); one entry holds "
                    f"records of one {label} only")


def _checked_protocol(measurement: Measurement, nets: Iterable[str]) -> Protocol:
    protocol = known_protocol(measurement.protocol_version, measurement.protocol_sha256, _SUBJECT)
    check_names(protocol, measurement.dataset, measurement.track, measurement.label_strategy,
                measurement.variant, nets, _SUBJECT)
    check_dataset_hash(protocol, measurement.dataset, measurement.dataset_sha256, _SUBJECT)
    return protocol


def _scored_archive(archive_path: str | os.PathLike[str], measurement: Measurement,
                    record: EvalRecord):
    """The archive at ``archive_path``, read and verified, refused unless it is the one the
    records score (its sha256, and what its manifest says of data set, track, labels, method)."""
    from vdcbench.archive import read_archive

    loaded = read_archive(archive_path)
    if loaded.sha256 != measurement.archive_sha256:
        raise VdcError(f"the records score archive {measurement.archive_sha256[:12]} but "
                       f"{os.fspath(archive_path)} has sha256 {loaded.sha256[:12]}")
    wrong = disagreement(manifest_claims(
        loaded.manifest.to_dict(), dataset=measurement.dataset, track=measurement.track,
        label_strategy=measurement.label_strategy, method=record.method.name,
        method_kind=record.method.kind))
    if wrong is not None:
        what, claimed, actual = wrong
        raise VdcError(f"the records say {what} {claimed!r} but the archive's manifest says "
                       f"{actual!r}")
    return loaded


def _existing(root, entry: Entry) -> Entry | None:
    """The entry already written for ``entry``'s id under ``root``, if one is there and reads."""
    if root is None:
        return None
    path = Path(root) / entry.relative_path()
    if not path.is_file():
        return None
    try:
        return Entry.from_disk(path)
    except VdcError:
        return None       # an unreadable old entry is replaced (--replace), never carried over


def _relative_archive_path(archive_path, root) -> str | None:
    if root is None:
        return None
    archive, base = Path(archive_path).resolve(), Path(root).resolve()
    try:
        return archive.relative_to(base).as_posix()
    except ValueError:
        return None
