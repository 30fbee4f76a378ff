"""Are two results comparable? Field by field, for result records and entries.

Either side may be a result record (one seed), an entry, or the ``--json`` summary of
``vdcbench evaluate`` (its records, which must form one cell). Each field is reported as the
same, a difference that makes the two incomparable (protocol hash, data set and its store hash,
track, label strategy, evaluation variant, net, teacher, schedule), or a difference worth
knowing that does not (the archive — what is being compared —, the method, the seeds, which
decide how many results pair, and the library versions, which can move numbers).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vdcbench.core.errors import VdcError
from vdcbench.leaderboard.entry import ENTRY_FORMAT, Entry, read_json
from vdcbench.leaderboard.measurement import FIELD_LABELS, Measurement, shown
from vdcbench.methods.settings import with_defaults
from vdcbench.evaluation.records import RECORD_FORMAT, EvalRecord

SAME, BLOCKING, NOTE = "same", "differs", "note"


@dataclass(frozen=True)
class Side:
    """What a record, an evaluation summary or an entry says about how it was measured."""

    kind: str
    source: str
    measurement: Measurement
    epochs: int
    official: bool
    method: str
    seeds: Mapping[str, tuple[int, ...]]          # net -> seeds
    versions: Mapping[str, tuple[str, ...]]       # package -> versions seen
    torch_threads: tuple[str, ...] = ()           # intra-op thread counts seen ("unknown": none)
    method_config: str = "unknown"                # the method's settings, as sorted JSON

    @property
    def nets(self) -> tuple[str, ...]:
        return tuple(sorted(self.seeds))


@dataclass(frozen=True)
class FieldDiff:
    field: str
    a: str
    b: str
    status: str        # "same" | "differs" (not comparable) | "note" (differs, still comparable)
    note: str = ""


@dataclass(frozen=True)
class Comparison:
    a: Side
    b: Side
    fields: tuple[FieldDiff, ...]

    @property
    def blocking(self) -> tuple[str, ...]:
        return tuple(f.field for f in self.fields if f.status == BLOCKING)

    @property
    def comparable(self) -> bool:
        return not self.blocking


def _versions(items: Iterable[Mapping[str, str]]) -> dict[str, tuple[str, ...]]:
    seen: dict[str, set[str]] = {}
    for versions in items:
        for package, version in versions.items():
            seen.setdefault(package, set()).add(str(version))
    return {p: tuple(sorted(v)) for p, v in sorted(seen.items())}


def _threads(counts: Iterable[int | None]) -> tuple[str, ...]:
    return tuple(sorted({"unknown" if c is None else str(c) for c in counts}))


def _config(method: str, config: Mapping[str, Any] | None) -> str:
    if config is None:
        return "unknown"
    return json.dumps(with_defaults(method, config), sort_keys=True)


def _from_records(records: list[EvalRecord], kind: str, source: str) -> Side:
    cells = {r.key.cell() for r in records}
    if len(cells) != 1 or len({r.epochs for r in records}) != 1:
        raise VdcError(f"{source}: its records are not one cell (they differ in more than the "
                       "seed); compare them one by one")
    r = records[0]
    return Side(kind=kind, source=source, measurement=Measurement.of(r.key), epochs=r.epochs,
                official=all(x.official for x in records),
                method=r.method.name,
                seeds={r.key.net: tuple(sorted(x.key.seed for x in records))},
                versions=_versions(x.versions.to_dict() for x in records),
                torch_threads=_threads(x.torch_threads for x in records),
                method_config=_config(r.method.name, r.method.config))


def _from_entry(entry: Entry, source: str) -> Side:
    return Side(kind="entry", source=source, measurement=entry.measurement, epochs=entry.epochs,
                official=entry.official, method=entry.method.name,
                seeds={r.net: tuple(s.seed for s in r.seeds) for r in entry.results},
                versions=_versions(s.versions for r in entry.results for s in r.seeds),
                torch_threads=_threads(s.torch_threads for r in entry.results for s in r.seeds),
                method_config=_config(entry.method.name, entry.method.config))


def load_side(path: str | os.PathLike[str]) -> Side:
    """Read a result record, an entry or an ``evaluate --json`` summary."""
    source = os.fspath(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise VdcError(f"{source}: not a result record, an entry or an evaluation summary")
    try:
        if data.get("format") == RECORD_FORMAT:
            return _from_records([EvalRecord.from_dict(data)], "result record", source)
        if data.get("format") == ENTRY_FORMAT:
            return _from_entry(Entry.from_dict(data, source=source), source)
        if isinstance(data.get("records"), list) and data["records"]:
            records = [EvalRecord.from_dict(r) for r in data["records"]]
            return _from_records(records, "evaluation summary", source)
    except (TypeError, KeyError, AttributeError) as exc:
        raise VdcError(f"{source}: malformed ({exc})") from None
    raise VdcError(f"{source}: not a result record, an entry or an evaluation summary")


def _short(value: Any) -> str:
    return "none" if value is None else shown(value)


# Why a difference in a field of the measurement makes two results incomparable. The archive is
# not among them: it is what a diff compares, so it is reported last, as a note.
_WHY_BLOCKING = {
    "protocol_sha256": "results under different protocols are never compared",
    "dataset_sha256": "different frames were trained and scored on",
    "track": "different budgets",
    "label_strategy": "labels change accuracy more than many methods; compare gains over Random "
                      "instead",
    "variant": "only 'official' is ranked",
    "teacher_sha256": "online labels from different teachers",
    "epochs": "different training budgets",
}


def compare_sides(a: Side, b: Side) -> Comparison:
    fields: list[FieldDiff] = []

    def row(name: str, x: Any, y: Any, *, blocking: bool = True, same_note: str = "",
            note: str = "") -> None:
        if x == y:
            fields.append(FieldDiff(name, _short(x), _short(y), SAME, same_note))
        else:
            fields.append(FieldDiff(name, _short(x), _short(y), BLOCKING if blocking else NOTE,
                                    note))

    for name, label in FIELD_LABELS.items():
        if name == "archive_sha256":
            continue
        if name == "teacher_sha256":        # the nets are listed between variant and teacher
            fields.append(_nets(a, b))
        row(label, getattr(a.measurement, name), getattr(b.measurement, name),
            note=_WHY_BLOCKING.get(name, ""))
    row("official", a.official, b.official, blocking=False,
        note="only official results are ranked")
    fields += _seeds(a, b) + _versions_and_threads(a, b)
    row(FIELD_LABELS["archive_sha256"], a.measurement.archive_sha256,
        b.measurement.archive_sha256, blocking=False, same_note="the same condensed set",
        note="different condensed sets (what is compared)")
    row("method", a.method, b.method, blocking=False)
    row("method settings", a.method_config, b.method_config, blocking=False,
        note="the same method run with other settings" if a.method == b.method else "")
    return Comparison(a=a, b=b, fields=tuple(fields))


def _nets(a: Side, b: Side) -> FieldDiff:
    common = sorted(set(a.nets) & set(b.nets))
    if a.nets == b.nets:
        return FieldDiff("net", ", ".join(a.nets), ", ".join(b.nets), SAME)
    if common:
        return FieldDiff("net", ", ".join(a.nets), ", ".join(b.nets), NOTE,
                         f"comparable on {', '.join(common)} only")
    return FieldDiff("net", ", ".join(a.nets), ", ".join(b.nets), BLOCKING,
                     "no evaluation net in common")


def _seeds(a: Side, b: Side) -> list[FieldDiff]:
    """The seeds per net in common (or of A's first net), which decide how many results pair."""
    rows = []
    for net in sorted(set(a.nets) & set(b.nets)) or a.nets[:1]:
        sa, sb = a.seeds.get(net, ()), b.seeds.get(net, ())
        paired = sorted(set(sa) & set(sb))
        note = (f"{len(paired)} paired seed(s)" if paired
                else "no seed in common: the tie rule cannot pair them")
        rows.append(FieldDiff(f"seeds ({net})", ", ".join(map(str, sa)) or "none",
                              ", ".join(map(str, sb)) or "none",
                              SAME if sa == sb else NOTE, note))
    return rows


def _versions_and_threads(a: Side, b: Side) -> list[FieldDiff]:
    rows = []
    for package in sorted(set(a.versions) | set(b.versions)):
        va, vb = a.versions.get(package, ()), b.versions.get(package, ())
        rows.append(FieldDiff(f"version: {package}", ", ".join(va) or "unknown",
                              ", ".join(vb) or "unknown", SAME if va == vb else NOTE,
                              "" if va == vb else "numbers may move between versions"))
    threads_a, threads_b = ", ".join(a.torch_threads), ", ".join(b.torch_threads)
    rows.append(FieldDiff("torch threads", threads_a or "unknown", threads_b or "unknown",
                          SAME if threads_a == threads_b else NOTE,
                          "" if threads_a == threads_b else
                          "CPU float sums follow the thread count: not bit for bit"))
    return rows


def diff(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> Comparison:
    """Compare two result records, evaluation summaries or entries, field by field."""
    return compare_sides(load_side(a), load_side(b))
