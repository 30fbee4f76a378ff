"""Entries -> tables in the study's Table-6 shape: the one aggregation path of the leaderboard.

A table holds what can be compared and nothing else: one data set (and data-set store hash),
one protocol hash, one evaluation net, one metric. Rows are methods, grouped by kind
(selection, distillation) and then by label strategy (and the teacher, for labels a teacher
gives online); columns are the protocol's official tracks (IPC 1 / 5 / 10) with their total
condensation ratio (the study's Sec. 3.1: stored frames over the train split's frames).
Tables of one data set and protocol come in the protocol's order of nets (:func:`net_rank`), so
the protocol's own evaluation net leads.

A cell is every result of the row's method on that track: usually one entry (one archive) with
its evaluation seeds; several entries (several condensation seeds) are pooled, and their values
per evaluation seed are averaged for the tie rule, which pairs cells by evaluation seed. Each
cell shows mean ± sample std over all its results and n; the best mean per column is bold, the
best within its kind underlined (as in the study), and a cell that the tie rule cannot separate
from the best is marked tied. Every cell also carries its gain over the Random cell of the same
track, label strategy, teacher and net, so that what the labels and the evaluation recipe give
is not credited to the condensed data; a table always has a Random row per label strategy, a
placeholder when no Random entry exists. The full-data row is the protocol teacher of the net
(its sidecar's ``val_top1`` / ``val_top5``).

Entries of the temporal tracks of the protocol's equal-frame grid (v1: ``ipc8-t4``, ``ipc4-t8``,
``ipc2-t16``, ``ipc1-t32``; :mod:`~vdcbench.leaderboard.temporal`) are ranked in tables of their
own, one per data set, net and metric like the official ones, whose columns are (track, formation):
the same archive formed two ways is two cells, and no temporal cell is ever set beside, or marked
against, an official one. Each grid track has a column for its default formation (the one
``vdcbench evaluate`` uses when none is named) and one for every other formation an entry holds.

Entries that are not official (a study variant, a shortened schedule) or on no ranked track are
never ranked; they are listed apart with the reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vdcbench.core.errors import VdcError
from vdcbench.core.json_values import parse_json_strict
from vdcbench.core.stats import Spread
from vdcbench.leaderboard.entry import RANDOM_METHOD, Entry, NetResults
from vdcbench.leaderboard.temporal import formation_order, temporal_tracks
from vdcbench.leaderboard.ties import compare
from vdcbench.leaderboard.verification import Status, status_of
from vdcbench.protocol import Protocol, load_protocol
from vdcbench.train.formation import NONE, default_formation

KIND_ORDER = ("selection", "distillation")
# The two kinds of table: the official tracks (IPC 1 / 5 / 10 at 8 frames) and the temporal
# tracks of the equal-frame grid, a column per (track, formation).
OFFICIAL, TEMPORAL = "official", "temporal"
SECTIONS = (OFFICIAL, TEMPORAL)
METRIC_LABELS = {"top1": "top-1", "top5": "top-5"}
# Size of the train split and mean frames per video of data sets the protocol does not
# generate, from the study's Table 1 (split 1 train lists; Kinetics-400 about 240,000 videos).
DATASET_STATS = {"hmdb51": (3570, 97), "ucf101": (9537, 187), "kinetics400": (240000, 286)}


def condensation_ratio(protocol: Protocol, dataset: str, track_id: str) -> float | None:
    """Total condensation ratio N_c T_c / (N T_mean) of a full track; None when unknown."""
    ds = protocol.dataset(dataset)
    track = protocol.track(ds, track_id)
    if ds.generator is not None:
        videos, frames = ds.num_classes * ds.generator.train_per_class, ds.generator.frames
    elif dataset in DATASET_STATS:
        videos, frames = DATASET_STATS[dataset]
    else:
        return None
    return track.max_instances * track.frames / (videos * frames)


def column_key(track: str, formation: str | None) -> str:
    """A column's name in a row's cells: the track, then ``/<formation>`` for a formation other
    than none (an official table's columns are its tracks, as they always were)."""
    return track if formation is None else f"{track}/{formation}"


@dataclass(frozen=True)
class Column:
    track: str
    ipc: int
    frames: int
    ratio: float | None
    # The formation a temporal table's column holds; None for none (every official column).
    formation: str | None = None

    @property
    def key(self) -> str:
        return column_key(self.track, self.formation)

    @property
    def formation_name(self) -> str:
        return NONE if self.formation is None else self.formation

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"track": self.track, "ipc": self.ipc, "frames": self.frames,
                                "condensation_ratio": self.ratio}
        if self.formation is not None:
            body["formation"] = self.formation
        return body


@dataclass(frozen=True)
class TableCell:
    track: str
    entry_ids: tuple[str, ...]
    values: tuple[float, ...]           # every result, ordered by (entry id, seed)
    by_seed: Mapping[int, float]        # per evaluation seed, averaged over entries
    mean: float
    std: float
    archive_bytes: float                # mean over the cell's entries
    best: bool = False
    best_in_kind: bool = False
    tied_with_best: bool = False
    gain: float | None = None           # over the Random cell of the same track and labels
    # Every verification status among the cell's entries, strongest first; the cell is only as
    # vouched for as its weakest (``status``).
    statuses: tuple[str, ...] = ()
    formation: str | None = None        # a temporal column's formation; None for none

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def status(self) -> str:
        return self.statuses[-1] if self.statuses else Status.SELF_REPORTED.value

    def to_dict(self) -> dict[str, Any]:
        return {"track": self.track, "entries": list(self.entry_ids), "values": list(self.values),
                "by_seed": {str(s): v for s, v in sorted(self.by_seed.items())},
                "mean": self.mean, "std": self.std, "n": self.n,
                "archive_bytes": self.archive_bytes, "best": self.best,
                "best_in_kind": self.best_in_kind, "tied_with_best": self.tied_with_best,
                "gain_over_random": self.gain, "status": self.status,
                "statuses": list(self.statuses),
                **({} if self.formation is None else {"formation": self.formation})}


@dataclass(frozen=True)
class Row:
    kind: str
    label_strategy: str
    method: str
    teacher_sha256: str | None
    cells: Mapping[str, TableCell]      # by column key (an official table's: by track)
    placeholder: bool = False           # a Random row with no entry behind it

    @property
    def is_random(self) -> bool:
        return self.method == RANDOM_METHOD

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label_strategy": self.label_strategy, "method": self.method,
                "teacher_sha256": self.teacher_sha256, "placeholder": self.placeholder,
                "cells": {t: c.to_dict() for t, c in sorted(self.cells.items())}}


@dataclass(frozen=True)
class FullData:
    value: float
    teacher_sha256: str
    epochs: int
    source: str                         # the sidecar's file name

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "teacher_sha256": self.teacher_sha256,
                "epochs": self.epochs, "source": self.source}


@dataclass(frozen=True)
class Table:
    dataset: str
    dataset_sha256: str
    net: str
    metric: str
    protocol_version: int
    protocol_sha256: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    full_data: FullData | None
    section: str = OFFICIAL             # OFFICIAL or TEMPORAL

    @property
    def temporal(self) -> bool:
        return self.section == TEMPORAL

    @property
    def slug(self) -> str:
        part = "-temporal" if self.temporal else ""
        return (f"{self.dataset}-{self.net}{part}-{self.metric}-p{self.protocol_sha256[:12]}"
                f"-d{self.dataset_sha256[:8]}")

    @property
    def title(self) -> str:
        return (f"{self.dataset} · {self.net} · {METRIC_LABELS.get(self.metric, self.metric)} · "
                f"protocol v{self.protocol_version}"
                + (" · temporal tracks" if self.temporal else ""))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.slug, "section": self.section, "dataset": self.dataset,
                "dataset_sha256": self.dataset_sha256, "net": self.net, "metric": self.metric,
                "protocol": {"version": self.protocol_version, "sha256": self.protocol_sha256},
                "columns": [c.to_dict() for c in self.columns],
                "full_data": self.full_data.to_dict() if self.full_data else None,
                "rows": [r.to_dict() for r in self.rows]}


@dataclass(frozen=True)
class Unranked:
    entry: Entry
    reason: str


@dataclass(frozen=True)
class Leaderboard:
    tables: tuple[Table, ...]
    unranked: tuple[Unranked, ...]
    entries: tuple[Entry, ...]


# ----------------------------------------------------------------------------- teachers
def load_teacher_sidecars(folder: Path | None) -> list[tuple[str, dict[str, Any]]]:
    """(file name, sidecar) of every saved protocol teacher in ``folder``, by file name."""
    if folder is None or not Path(folder).is_dir():
        return []
    found = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            data = parse_json_strict(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise VdcError(f"cannot read teacher sidecar {path}: {exc}") from None
        if isinstance(data, dict) and data.get("kind") == "vdcbench-teacher" and "sha256" in data:
            found.append((path.name, data))
    return found


def _full_data(sidecars: Sequence[tuple[str, dict]], table_key: tuple, metric: str) -> FullData | None:
    dataset, dataset_sha, _, protocol_sha, net = table_key
    for name, s in sidecars:
        if (s.get("dataset") == dataset and s.get("net") == net
                and s.get("dataset_sha256") == dataset_sha
                and s.get("protocol", {}).get("sha256") == protocol_sha
                and not s.get("shuffle_frames") and f"val_{metric}" in s):
            return FullData(value=float(s[f"val_{metric}"]), teacher_sha256=s["sha256"],
                            epochs=int(s.get("epochs_run", 0)), source=name)
    return None


# ---------------------------------------------------------------------------- aggregation
def net_rank(protocol: Protocol, net: str) -> tuple[int, str]:
    """Where ``net`` stands among the protocol's nets: the protocol's own order (its evaluation
    net, minic3d, first), not the alphabet; a net the protocol does not name comes last."""
    names = list(protocol.nets)
    return (names.index(net) if net in names else len(names), net)


def unranked_reason(entry: Entry, protocol: Protocol) -> str | None:
    """Why ``entry`` is not ranked, or None when it is."""
    if entry.variant != "official":
        return f"study variant {entry.variant!r}"
    if entry.epochs != protocol.trainer.epochs:
        return f"shortened schedule ({entry.epochs} of {protocol.trainer.epochs} epochs)"
    if not entry.official:
        return "not the official figure"
    if section_of(entry, protocol) is None:
        return (f"track {entry.track} is neither an official track nor a temporal track of the "
                "equal-frame grid")
    return None


def section_of(entry: Entry, protocol: Protocol) -> str | None:
    """The kind of table an entry's track is ranked in; None for a track neither kind ranks."""
    if entry.formation is None and entry.track in protocol.track_ids():
        return OFFICIAL
    if entry.track in temporal_tracks(protocol):
        return TEMPORAL
    return None


def _columns(protocol: Protocol, dataset: str, section: str,
             formations: Iterable[tuple[str, str | None]]) -> tuple[Column, ...]:
    """An official table's tracks; or a temporal table's grid tracks, each with its default
    formation and every other one among ``formations`` ((track, formation) of its entries)."""
    def column(track_id: str, formation: str | None = None) -> Column:
        track = protocol.track(dataset, track_id)
        return Column(track=track_id, ipc=track.ipc, frames=track.frames,
                      ratio=condensation_ratio(protocol, dataset, track_id), formation=formation)

    if section == OFFICIAL:
        return tuple(column(t) for t in protocol.track_ids())
    held = set(formations)
    columns = []
    for track_id in temporal_tracks(protocol):
        frames = protocol.track(dataset, track_id).frames
        default = default_formation(frames, protocol.sampling.frames).id
        names = {None if default == NONE else default}
        names |= {f for t, f in held if t == track_id}
        for name in sorted(names, key=lambda f: formation_order(protocol, frames, f or NONE)):
            columns.append(column(track_id, name))
    return tuple(columns)


def _cell(column: Column, members: Sequence[tuple[Entry, Mapping[int, float]]]) -> TableCell:
    members = sorted(members, key=lambda m: m[0].id)
    values = tuple(v for _, by_seed in members for _, v in sorted(by_seed.items()))
    seeds = sorted({s for _, by_seed in members for s in by_seed})
    by_seed = {s: Spread.of(m[s] for _, m in members if s in m).mean for s in seeds}
    spread = Spread.of(values)
    statuses = sorted({status_of(e).status for e, _ in members}, key=lambda s: -s.rank)
    return TableCell(
        track=column.track, entry_ids=tuple(e.id for e, _ in members), values=values,
        by_seed=by_seed, mean=spread.mean, std=spread.std,
        archive_bytes=Spread.of(e.archive.bytes for e, _ in members).mean,
        statuses=tuple(s.value for s in statuses), formation=column.formation)


def _row_order(protocol: Protocol):
    labels = list(protocol.label_strategies)

    def key(row: Row):
        return (KIND_ORDER.index(row.kind) if row.kind in KIND_ORDER else len(KIND_ORDER),
                labels.index(row.label_strategy) if row.label_strategy in labels else len(labels),
                row.teacher_sha256 or "", not row.is_random, row.method)
    return key


def _mark(rows: list[Row], columns: Sequence[Column]) -> list[Row]:
    """Gains over Random, the best per column and per kind, and ties with the best."""
    cells = {id(r): dict(r.cells) for r in rows}
    random_rows = {(r.label_strategy, r.teacher_sha256): r for r in rows if r.is_random}
    for col in columns:
        present = [r for r in rows if col.key in cells[id(r)]]
        if not present:
            continue
        top = max(cells[id(r)][col.key].mean for r in present)
        best = [cells[id(r)][col.key] for r in present if cells[id(r)][col.key].mean == top]
        kind_top: dict[str, float] = {}
        for r in present:
            value = cells[id(r)][col.key].mean
            kind_top[r.kind] = max(kind_top.get(r.kind, value), value)
        for r in present:
            cell = cells[id(r)][col.key]
            is_best = cell.mean == top
            tied = (not is_best) and any(compare(b.by_seed, cell.by_seed).tied for b in best)
            base = random_rows.get((r.label_strategy, r.teacher_sha256))
            base_cell = cells[id(base)].get(col.key) if base is not None else None
            gain = cell.mean - base_cell.mean if base_cell is not None else None
            cells[id(r)][col.key] = dataclasses.replace(
                cell, best=is_best, best_in_kind=cell.mean == kind_top[r.kind],
                tied_with_best=tied, gain=gain)
    return [Row(kind=r.kind, label_strategy=r.label_strategy, method=r.method,
                teacher_sha256=r.teacher_sha256, cells=cells[id(r)], placeholder=r.placeholder)
            for r in rows]


def build_tables(entries: Iterable[Entry],
                 teacher_sidecars: Sequence[tuple[str, dict[str, Any]]] = ()) -> Leaderboard:
    """Every table the entries make, official tables before temporal ones per data set, and the
    entries that are not ranked (with the reason)."""
    entries = sorted(entries, key=lambda e: (e.dataset, e.id))
    groups: dict[tuple, dict[tuple, list[tuple[Entry, NetResults]]]] = {}
    unranked = []
    for entry in entries:
        protocol = load_protocol(entry.protocol_version)
        reason = unranked_reason(entry, protocol)
        if reason is not None:
            unranked.append(Unranked(entry, reason))
            continue
        for results in entry.results:
            key = (entry.dataset, entry.dataset_sha256, entry.protocol_version,
                   entry.protocol_sha256, results.net, section_of(entry, protocol))
            row_key = (entry.method.kind, entry.label_strategy, entry.teacher_sha256,
                       entry.method.name)
            groups.setdefault(key, {}).setdefault(row_key, []).append((entry, results))

    def table_order(key: tuple) -> tuple:
        dataset, dataset_sha, version, protocol_sha, net, section = key
        return (dataset, dataset_sha, version, protocol_sha, SECTIONS.index(section),
                net_rank(load_protocol(version), net))

    tables = []
    for key in sorted(groups, key=table_order):
        dataset, dataset_sha, version, protocol_sha, net, section = key
        protocol = load_protocol(version)
        columns = _columns(protocol, dataset, section,
                           {(e.track, e.formation) for members in groups[key].values()
                            for e, _ in members})
        by_key = {c.key: c for c in columns}
        for metric in protocol.dataset(dataset).metrics:
            rows = []
            for (kind, labels, teacher, method), members in groups[key].items():
                by_column: dict[str, list] = {}
                for entry, results in members:
                    by_column.setdefault(column_key(entry.track, entry.formation), []).append(
                        (entry, results.metric(metric)))
                rows.append(Row(kind=kind, label_strategy=labels, method=method,
                                teacher_sha256=teacher,
                                cells={k: _cell(by_key[k], m)
                                       for k, m in sorted(by_column.items())}))
            for labels, teacher in sorted({(r.label_strategy, r.teacher_sha256 or "")
                                           for r in rows}):
                teacher = teacher or None
                if not any(r.is_random and r.label_strategy == labels
                           and r.teacher_sha256 == teacher for r in rows):
                    rows.append(Row(kind="selection", label_strategy=labels,
                                    method=RANDOM_METHOD, teacher_sha256=teacher, cells={},
                                    placeholder=True))
            rows.sort(key=_row_order(protocol))
            tables.append(Table(dataset=dataset, dataset_sha256=dataset_sha, net=net,
                                metric=metric, protocol_version=version,
                                protocol_sha256=protocol_sha, columns=columns,
                                rows=tuple(_mark(rows, columns)),
                                full_data=_full_data(teacher_sidecars, key[:5], metric),
                                section=section))
    return Leaderboard(tables=tuple(tables), unranked=tuple(unranked), entries=tuple(entries))
