"""Paper-style tables from result records: methods against tracks × labels, or against nets.

``vdcbench results`` lists one row per cell (an archive under one net, label strategy and
variant). A paper reads differently: the study's Table 6 puts methods in rows and IPC × label
strategy in columns; its Table 7 puts methods in rows and evaluation nets in columns. A
:class:`Pivot` is that view, computed from the records themselves (never from cells), so that a
table cell pooling several condensed sets of one method (Random's condensation seeds, say) gets
its mean and sample standard deviation over every record it holds, and says so: each cell prints
``n`` (records) and, when more than one condensed set went in, how many.

Only records of one data set and protocol version share a table; by default only the official
variant, because that is what is ranked. Records made with a teacher profile other than the
protocol's (a CPU teacher, ``protocol/teacher-profiles.toml``) rank in their own tables: a table
holds one teacher profile, and records that used no teacher at all (Random with hard labels,
the floor) join any.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Literal

from vdcbench.core.errors import VdcError
from vdcbench.core.stats import Spread, mean_or_none
from vdcbench.evaluation.records import EvalRecord
from vdcbench.methods.settings import with_defaults
from vdcbench.protocol import parse_track_id

PivotKind = Literal["methods", "nets"]
PIVOT_KINDS: tuple[str, ...] = ("methods", "nets")
_LABEL_ORDER = {"hard": 0, "soft": 1, "multi-sl": 2}


@dataclass(frozen=True)
class PivotFilter:
    """Which records a table draws from; ``None`` means any."""

    dataset: str | None = None
    methods: tuple[str, ...] | None = None   # rows to keep, by method name
    net: str | None = None                   # the methods table needs exactly one
    label_strategy: str | None = None
    track: str | None = None
    condensation_seed: int | None = None     # keep one condensed set per method
    variant: str | None = None
    official_only: bool = True
    teacher_profile: str | None = None       # a profile's name; teacher-free records join any
    # Tracks to keep (the official ones for the study's Table 6): a temporal track, even one of
    # 8 frames such as ipc4-t8 of the equal-frame grid, is another budget, so it joins a methods
    # table only when asked for.
    tracks: tuple[str, ...] | None = None

    def admits(self, record: EvalRecord) -> bool:
        k = record.key
        profile = record_teacher_profile(record)
        return ((self.dataset is None or k.dataset == self.dataset)
                and (self.teacher_profile is None or profile in (None, self.teacher_profile))
                and (self.methods is None or record.method.name in self.methods)
                and (self.net is None or k.net == self.net)
                and (self.label_strategy is None or k.label_strategy == self.label_strategy)
                and (self.track is None or k.track == self.track)
                and (self.tracks is None or k.track in self.tracks)
                and (self.variant is None or k.variant == self.variant)
                and (self.condensation_seed is None
                     or record.method.seed == self.condensation_seed)
                and (record.official or not self.official_only))


@dataclass(frozen=True)
class PivotCell:
    """The records at one (row, column) of a pivot, pooled over seeds and condensed sets."""

    top1: tuple[float, ...]
    archives: int                        # distinct condensed sets pooled
    wall_seconds: tuple[float, ...]

    @property
    def spread(self) -> Spread:
        return Spread.of(self.top1)

    @property
    def n(self) -> int:
        return len(self.top1)

    @property
    def mean(self) -> float:
        return self.spread.mean

    @property
    def std(self) -> float:
        return self.spread.std

    def text(self) -> str:
        sets = f", {self.archives} sets" if self.archives > 1 else ""
        return f"{self.spread.format()} (n {self.n}{sets})"


@dataclass(frozen=True)
class Pivot:
    """Rows × columns of pooled cells; a missing combination is simply absent."""

    kind: PivotKind
    dataset: str
    protocol_version: int
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: dict[tuple[str, str], PivotCell]
    # The full train split's top-1 per column (a net's protocol teacher), shown as the first row:
    # the ceiling a condensed set is read against. Filled by the caller, who can find teachers.
    full_data: dict[str, float] = field(default_factory=dict)
    # The teacher profile of the records that used a teacher ("protocol", "cpu", ...); None when
    # none did. A renderer names it when it is not the protocol's.
    teacher_profile: str | None = None
    # Row -> the kind of method it holds ("selection", "distillation"), for a methods table: the
    # study's Table 6 reads as a selection half over a distillation half, each under a heading.
    row_kinds: dict[str, str] = field(default_factory=dict)

    FULL_DATA_ROW: ClassVar[str] = "full train split (protocol teacher)"

    def with_full_data(self, values: dict[str, float]) -> "Pivot":
        return dataclasses.replace(self, full_data={c: v for c, v in values.items()
                                                    if c in self.columns})

    def row_texts(self) -> list[tuple[str, list[str]]]:
        """Every row as printed: the full-data row (when known), the methods, the wall times."""
        rows = []
        if self.full_data:
            rows.append((self.FULL_DATA_ROW, [f"{self.full_data[c]:.1f} (n 1)" if c in self.full_data
                                              else "–" for c in self.columns]))
        heading = None
        for row in self.rows:
            kind = self.row_kinds.get(row)
            if kind is not None and kind != heading and len(set(self.row_kinds.values())) > 1:
                heading = kind
                rows.append((self.section_heading(kind), [""] * len(self.columns)))
            rows.append((row, [self.cells[(row, c)].text() if (row, c) in self.cells else "–"
                               for c in self.columns]))
        walls = [self.column_wall_seconds(c) for c in self.columns]
        rows.append(("wall s / evaluation", ["–" if w is None else f"{w:.0f}" for w in walls]))
        return rows

    @staticmethod
    def section_heading(kind: str) -> str:
        """The heading row over one kind's rows, e.g. "selection methods"."""
        return f"{kind} methods"

    def column_wall_seconds(self, column: str) -> float | None:
        """Mean wall time of one evaluation (one record) in a column: what a column costs a seed."""
        return mean_or_none(w for (_, c), cell in self.cells.items() if c == column
                            for w in cell.wall_seconds)

    def to_markdown(self, corner: str) -> str:
        lines = [f"| {corner} | " + " | ".join(self.columns) + " |",
                 "|---" * (len(self.columns) + 1) + "|"]
        headings = {self.section_heading(k) for k in self.row_kinds.values()}
        lines += [f"| {f'**{name}**' if name in headings else name} | " + " | ".join(texts) + " |"
                  for name, texts in self.row_texts()]
        return "\n".join(lines)


def record_teacher_profile(record: EvalRecord) -> str | None:
    """The teacher profile a record's number depends on (``protocol`` for the protocol teacher),
    or None for a record that used no teacher: hard labels of a method without a teacher."""
    if record.key.teacher_profile is not None:
        return record.key.teacher_profile_name
    uses_teacher = (record.key.label_strategy != "hard"
                    or "teacher_profile" in with_defaults(record.method.name,
                                                          record.method.config or {}))
    return "protocol" if uses_teacher else None


def _track_order(track: str) -> tuple:
    # "ipc10-t8" sorts after "ipc5-t8": compare the numbers, not the strings.
    ipc, _, frames = track.partition("-t")
    return (int(ipc[3:]) if ipc[3:].isdigit() else 1 << 30, frames)


def _track_frames(track: str) -> int | None:
    parsed = parse_track_id(track)
    return parsed[1] if parsed else None


def _column_methods(record: EvalRecord) -> tuple[str, tuple]:
    k = record.key
    ipc = k.track.partition("-")[0].upper().replace("IPC", "IPC ")
    # A temporal track's cells name their frames and formation, so that two formations of one
    # track (or ipc1-t8 and ipc1-t32) never pool into one column.
    temporal = f" × {_track_frames(k.track)} frames" if k.formation is not None else ""
    formation = f" ({k.formation})" if k.formation is not None else ""
    return (f"{ipc}{temporal} {k.label_strategy}{formation}",
            (_track_order(k.track), _LABEL_ORDER.get(k.label_strategy, 9), k.label_strategy,
             k.formation or ""))


def _column_nets(record: EvalRecord) -> tuple[str, tuple]:
    net = record.key.net
    return net, (net != "minic3d", net)      # the protocol's own net first


def distinguishing_settings(records: list[EvalRecord]) -> dict[int, str]:
    """For each record (by ``id``), the settings that set it apart from other records of its method.

    One method run with different ``--set`` values is two rows of a table, never one pooled
    row: ``rded (min_scale=1)`` beside ``rded (min_scale=0.08)``. A key an older archive does not
    record is read as the registered default (a new key keeps the old behaviour by default).
    """
    by_method: dict[str, list[EvalRecord]] = {}
    for record in records:
        by_method.setdefault(record.method.name, []).append(record)
    labels: dict[int, str] = {}
    for name, members in by_method.items():
        configs = {id(r): with_defaults(name, r.method.config or {}) for r in members}
        # The formation is the column's (the record's), not the method's row.
        keys = sorted({k for c in configs.values() for k in c} - {"formation"})
        differing = [k for k in keys
                     if len({json.dumps(c.get(k), sort_keys=True) for c in configs.values()}) > 1]
        for record in members:
            config = configs[id(record)]
            labels[id(record)] = ", ".join(f"{k}={json.dumps(config.get(k))}" for k in differing)
    return labels


# Selection rows over distillation rows, as in the study's Table 6; a kind a record does not
# name (written before kinds were recorded) goes last rather than among either.
_KIND_ORDER = {"selection": 0, "distillation": 1}


def _row_method(record: EvalRecord, settings: str) -> tuple[str, tuple]:
    name = record.method.name
    row = f"{name} ({settings})" if settings else name
    kind = _KIND_ORDER.get(record.method.kind, len(_KIND_ORDER))
    return row, (kind, name != "random", name, settings)   # Random, the floor, first


def _row_method_track(record: EvalRecord, settings: str) -> tuple[str, tuple]:
    # A nets table must not pool IPC 1 with IPC 10, so the track and labels name the row.
    name, order = _row_method(record, settings)
    column, column_order = _column_methods(record)
    return f"{name}, {column}", (column_order, order)


def pivot(records: list[EvalRecord], kind: PivotKind, where: PivotFilter = PivotFilter()) -> Pivot:
    """Pool the admitted records into a methods × (track, labels) or methods × nets table."""
    if kind not in PIVOT_KINDS:
        raise VdcError(f"unknown table {kind!r}; choose one of {', '.join(PIVOT_KINDS)}")
    chosen = [r for r in records if where.admits(r)]
    if not chosen:
        asked = ", ".join(f"{k}={','.join(v) if isinstance(v, tuple) else v}"
                          for k, v in vars(where).items() if v is not None and k != "official_only")
        raise VdcError(f"no {'official ' if where.official_only else ''}result records match "
                       f"{asked or 'the table'}")
    datasets = {r.key.dataset for r in chosen}
    versions = {r.key.protocol_version for r in chosen}
    if len(datasets) > 1 or len(versions) > 1:
        raise VdcError(f"records from {len(datasets)} data sets and {len(versions)} protocol "
                       f"versions never share a table; pick one with --dataset")
    # A column's wall time is read as "what one evaluation costs", so a nets table keeps to one
    # track; a methods table compares methods on one net.
    one_of = {"methods": ("net", "variant"), "nets": ("track", "variant")}[kind]
    for axis in one_of:
        values = {getattr(r.key, axis) for r in chosen}
        if len(values) > 1:
            raise VdcError(f"the {kind} table needs one {axis}, the records have "
                           f"{', '.join(sorted(values))}; pick one with --{axis}")
    profiles = {record_teacher_profile(r) for r in chosen} - {None}
    if len(profiles) > 1:
        raise VdcError(f"records made with teachers of profiles {', '.join(sorted(profiles))} "
                       f"never share a table; pick one with --teacher-profile")
    row_of: Callable[[EvalRecord, str], tuple[str, tuple]] = (
        _row_method if kind == "methods" else _row_method_track)
    column_of: Callable[[EvalRecord], tuple[str, tuple]] = (
        _column_methods if kind == "methods" else _column_nets)

    pooled: dict[tuple[str, str], list[EvalRecord]] = {}
    row_keys: dict[str, tuple] = {}
    column_keys: dict[str, tuple] = {}
    settings = distinguishing_settings(chosen)
    for record in chosen:
        row, row_key = row_of(record, settings[id(record)])
        column, column_key = column_of(record)
        row_keys[row], column_keys[column] = row_key, column_key
        pooled.setdefault((row, column), []).append(record)
    cells = {at: PivotCell(top1=tuple(r.top1 for r in members),
                           archives=len({r.key.archive_sha256 for r in members}),
                           wall_seconds=tuple(r.wall_seconds for r in members))
             for at, members in pooled.items()}
    row_kinds = ({row_of(r, settings[id(r)])[0]: r.method.kind for r in chosen}
                 if kind == "methods" else {})
    return Pivot(kind=kind, dataset=datasets.pop(), protocol_version=versions.pop(),
                 rows=tuple(sorted(row_keys, key=row_keys.__getitem__)),
                 columns=tuple(sorted(column_keys, key=column_keys.__getitem__)), cells=cells,
                 teacher_profile=profiles.pop() if profiles else None, row_kinds=row_kinds)
