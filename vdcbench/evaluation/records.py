"""Result records: one per (archive, protocol, data set, track, labels, variant, net, teacher, seed,
schedule, teacher profile, temporal formation).

Records are typed objects with ``to_disk`` / ``from_disk``; the on-disk layout mirrors the
leaderboard (data set / track / method-archive / net / labels-variant / seed), so a results folder
can be read as a table and an interrupted evaluation resumes from the records it has. A schedule
other than the protocol's is in the path too (``hard-official-e2/seed0.json``), and so is a
teacher profile other than the protocol's (``multi-sl-official-teacher-cpu-57148d4bb08b``), and so
is a temporal formation other than ``none`` (``hard-official-formation-slide-window``). Their
JSON schema is ``protocol/schemas/result.schema.json``.

A record also names the machine that made it (``machine``: CPU model, torch's CPU capability,
torch, device; :mod:`vdcbench.evaluation.machine`), optional so that every record written before
it reads, validates and round-trips unchanged. It is provenance, never identity: it is in no key,
path or compared figure.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import jsonschema

from vdcbench.core.atomic_file import write_json_atomic
from vdcbench.core.errors import VdcError
from vdcbench.core.json_values import load_json_strict
from vdcbench.core.stats import Spread, mean_or_none
from vdcbench.evaluation.machine import Machine
from vdcbench.protocol import PROTOCOL_DIR

RECORD_FORMAT = "vdcbench-result"
RECORD_VERSION = 1
_OPTIONAL_FIELDS = ("net_gflops_forward", "train_gflops", "torch_threads", "machine", "world_size")
SCHEMA_PATH = PROTOCOL_DIR / "schemas" / "result.schema.json"


@functools.lru_cache(maxsize=None)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


@dataclass(frozen=True)
class RecordKey:
    """What makes two results the same measurement (and two seeds of one cell)."""

    archive_sha256: str
    protocol_version: int
    protocol_sha256: str
    dataset: str
    dataset_sha256: str
    track: str
    label_strategy: str
    variant: str
    net: str
    teacher_sha256: str | None
    seed: int
    # The schedule: epochs the student trained. It changes the number as much as the net does,
    # so a 2-epoch smoke run is never taken for the protocol's 300. On disk it is the record's
    # own top-level ``epochs`` (written once, not twice): the key object keeps the eleven fields
    # above, and every record written before the schedule joined the key reads, round-trips and
    # keeps its path unchanged. None only in a key built by hand: its record fills it in.
    epochs: int | None = None
    # The declared teacher profile (protocol/teacher-profiles.toml) of the teacher the result
    # depends on, as ``<name>@<sha256>``: the one that labelled online (multi-sl), or the one the
    # archive's method condensed with (its config's ``teacher_profile``); None for the protocol
    # teacher or no teacher. A teacher trained for 30 epochs is not the protocol's, so its
    # records are another measurement. On disk it is the record's top-level ``teacher_profile``
    # (name and sha256), absent for the protocol's, so every earlier record keeps its bytes.
    teacher_profile: str | None = None
    # The temporal formation the student's clips were formed with (vdcbench.train.formation:
    # ``segment``, ``slide-window``, ``interpolate-linear-w4``, ...); None for ``none``, the
    # instance as its own clip, which is all an 8-frame track can use. On disk it is the record's
    # top-level ``formation``, absent for ``none``: every record written before formations keeps
    # its bytes and path and reads as ``none``.
    formation: str | None = None

    def __post_init__(self) -> None:
        if self.teacher_profile is not None:
            split_profile(self.teacher_profile)      # refuses a malformed one here, not later
        if self.formation == "none":
            object.__setattr__(self, "formation", None)     # one spelling of "no formation"
        if self.formation is not None:
            check_formation(self.formation)

    @property
    def formation_name(self) -> str:
        """The formation's id; ``none`` for the instance as its own clip."""
        return "none" if self.formation is None else self.formation

    @property
    def teacher_profile_name(self) -> str:
        """The profile's name; ``protocol`` for the protocol teacher (or none)."""
        return ("protocol" if self.teacher_profile is None
                else split_profile(self.teacher_profile)[0])

    def cell(self) -> tuple:
        """The key without the seed: records sharing it are aggregated into mean ± std."""
        return tuple(v for k, v in asdict(self).items() if k != "seed")

    def to_dict(self) -> dict[str, Any]:
        """The key as a record stores it (without the schedule, the teacher profile and the
        formation, stored beside it)."""
        return {k: v for k, v in asdict(self).items()
                if k not in ("epochs", "teacher_profile", "formation")}

    def folder_name(self) -> str:
        """``<labels>-<variant>``, ``-e<epochs>`` for a schedule other than the protocol's,
        ``-teacher-<profile>-<hash[:12]>`` for a teacher profile other than the protocol's and
        ``-formation-<id>`` for a formation other than ``none``: the protocol's records keep the
        path they always had, any other run gets its own."""
        name = f"{self.label_strategy}-{self.variant}"
        if self.epochs is not None and self.epochs != _protocol_epochs(self.protocol_version):
            name += f"-e{self.epochs}"
        if self.teacher_profile is not None:
            profile, sha = split_profile(self.teacher_profile)
            name += f"-teacher-{profile}-{sha[:12]}"
        if self.formation is not None:
            name += f"-formation-{self.formation}"
        return name

    def relative_path(self, method_name: str) -> Path:
        """Where the record of this key lies under a results folder: the leaderboard's layout
        (data set / track / method-archive / net / labels-variant[-schedule] / seed)."""
        return (Path(self.dataset) / self.track / f"{method_name}-{self.archive_sha256[:12]}"
                / self.net / self.folder_name() / f"seed{self.seed}.json")


def join_profile(name: str, sha256: str) -> str:
    """A teacher profile as a record key holds it: ``<name>@<sha256>``."""
    return f"{name}@{sha256}"


def split_profile(value: str) -> tuple[str, str]:
    """(name, sha256) of a key's ``teacher_profile``; ``ValueError`` for any other text."""
    name, at, sha = value.partition("@")
    if (not at or not name or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)
            or not all(c.isalnum() or c in "-_" for c in name)):
        raise ValueError(f"teacher profile {value!r} is not <name>@<sha256>")
    return name, sha


def check_formation(value: str) -> str:
    """A key's ``formation``: a formation id (``vdcbench.train.formation.Formation.parse``), in
    the spelling it writes; ``ValueError`` for any other text."""
    from vdcbench.core.errors import VdcError
    from vdcbench.train.formation import Formation
    try:
        parsed = Formation.parse(value)
    except VdcError as exc:
        raise ValueError(str(exc)) from None
    if parsed.id != value:
        raise ValueError(f"formation {value!r} is not spelt as {parsed.id!r}")
    return value


def _protocol_epochs(version: int) -> int:
    # Imported here: the protocol is loaded (once, cached) only when a path is asked for.
    from vdcbench.protocol import load_protocol
    return load_protocol(version).trainer.epochs


@dataclass(frozen=True)
class RecordedMethod:
    """The method that made the evaluated archive, as its manifest names it."""

    name: str
    kind: str                                   # selection | distillation
    seed: int | None = None                     # the condensation seed; None when not recorded
    # The method's settings. None (left out on disk) for records written before they were kept:
    # such records read as the method's defaults.
    config: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "kind": self.kind, "seed": self.seed}
        if self.config is not None:
            body["config"] = dict(self.config)
        return body

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RecordedMethod":
        config = data.get("config")
        return cls(name=data.get("name", "unknown"), kind=data.get("kind", "unknown"),
                   seed=data.get("seed"), config=None if config is None else dict(config))


@dataclass(frozen=True)
class RuntimeVersions:
    """Software versions of a run; a package a record does not name is None (left out on disk)."""

    vdcbench: str | None = None
    torch: str | None = None
    python: str | None = None
    pytorchvideo: str | None = None             # "not installed" when missing at run time
    others: Mapping[str, str] = field(default_factory=dict)   # any further package, verbatim

    _KNOWN = ("vdcbench", "torch", "python", "pytorchvideo")

    def to_dict(self) -> dict[str, str]:
        known = {name: getattr(self, name) for name in self._KNOWN}
        return {**{k: v for k, v in known.items() if v is not None}, **self.others}

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> "RuntimeVersions":
        return cls(**{k: v for k, v in data.items() if k in cls._KNOWN},
                   others={k: v for k, v in data.items() if k not in cls._KNOWN})


@dataclass(frozen=True)
class EvalRecord:
    """One evaluation seed's result; ``to_dict`` is exactly what is stored on disk."""

    key: RecordKey
    method: RecordedMethod
    top1: float
    top5: float
    reference_best_top1: float | None   # the study's best-of-late-epochs figure, never ranked
    official: bool                      # protocol schedule and the official variant
    epochs: int
    iterations: int
    batch_size: int
    wall_seconds: float
    device: str
    weights_sha256: str
    final_loss: float
    # The archive's storage ledger as ``archive.ledger.StorageLedger.to_dict`` wrote it: kept as
    # that mapping, since a second typed copy of the ledger would only duplicate the archive's.
    ledger: Mapping[str, Any]
    versions: RuntimeVersions
    by_epoch_top1: dict[str, float] = field(default_factory=dict)
    # Compute in GFLOPs (2 × fvcore's multiply-adds). Optional: records written before they were
    # kept load without them, and ``to_dict`` leaves them out again so such files round-trip.
    net_gflops_forward: float | None = None     # one clip through the evaluation net
    train_gflops: float | None = None           # the run's training: ≈ 3 × forward × clips seen
    # CPU float sums are ordered by the intra-op thread count, so bitwise reproduction needs it.
    torch_threads: int | None = None
    # The machine that ran it: torch picks CPU kernels per instruction set, so bit for bit also
    # needs the same kind of CPU, and verify must know which one ran. None: written before
    # records named it (such a record cannot tell another CPU from another result).
    machine: Machine | None = None
    # Processes of a data-parallel (torchrun) run: float sums are grouped per rank, so bit for
    # bit also needs the same count. None: one process (and every record written before).
    world_size: int | None = None

    def __post_init__(self) -> None:
        # Callers that build records by hand (tests, importers) may still pass plain dicts.
        if not isinstance(self.method, RecordedMethod):
            object.__setattr__(self, "method", RecordedMethod.from_dict(self.method))
        if not isinstance(self.versions, RuntimeVersions):
            object.__setattr__(self, "versions", RuntimeVersions.from_dict(self.versions))
        if self.machine is not None and not isinstance(self.machine, Machine):
            object.__setattr__(self, "machine", Machine.from_dict(self.machine))
        if self.key.epochs is None:
            object.__setattr__(self, "key", replace(self.key, epochs=self.epochs))
        elif self.key.epochs != self.epochs:
            raise ValueError(f"record key schedule {self.key.epochs} != its epochs {self.epochs}")

    def relative_path(self) -> Path:
        return self.key.relative_path(self.method.name)

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["key"] = self.key.to_dict()
        body["method"], body["versions"] = self.method.to_dict(), self.versions.to_dict()
        body["ledger"] = dict(self.ledger)
        for optional in _OPTIONAL_FIELDS:
            if body[optional] is None:
                del body[optional]
        if self.machine is not None:
            body["machine"] = self.machine.to_dict()
        if self.key.teacher_profile is not None:
            name, sha = split_profile(self.key.teacher_profile)
            body["teacher_profile"] = {"name": name, "sha256": sha}
        if self.key.formation is not None:
            body["formation"] = self.key.formation
        return {"format": RECORD_FORMAT, "format_version": RECORD_VERSION, **body}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalRecord":
        if data.get("format") != RECORD_FORMAT or data.get("format_version") != RECORD_VERSION:
            raise VdcError("not a vdcbench result record (format/format_version mismatch)")
        body = {k: v for k, v in data.items() if k not in ("format", "format_version")}
        profile = body.pop("teacher_profile", None)
        if profile is not None:
            if not isinstance(profile, Mapping) or set(profile) != {"name", "sha256"}:
                raise ValueError("teacher_profile must hold its name and sha256")
            profile = join_profile(profile["name"], profile["sha256"])
        formation = body.pop("formation", None)
        if formation is not None and not isinstance(formation, str):
            raise ValueError("formation must be a formation name")
        body["key"] = RecordKey(**body["key"], epochs=body["epochs"],   # stored beside the key
                                teacher_profile=profile, formation=formation)
        body["method"] = RecordedMethod.from_dict(body["method"])
        body["versions"] = RuntimeVersions.from_dict(body["versions"])
        if body.get("machine") is not None:
            body["machine"] = Machine.from_dict(body["machine"])
        return cls(**body)

    def to_disk(self, root: Path) -> Path:
        path = Path(root) / self.relative_path()
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def from_disk(cls, path: Path) -> "EvalRecord":
        """Read a record file, checked against the result schema: records feed entries, so a
        hand-edited or truncated one is refused here rather than averaged in."""
        try:
            data = load_json_strict(Path(path).read_bytes(), f"result record {path}")
            if data.get("format") == RECORD_FORMAT:   # other JSON is refused by from_dict
                error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
                if error is not None:
                    # A key is the file's text: escaped, so a newline in one stays one line.
                    where = ("/".join(str(p) for p in error.absolute_path)
                             .encode("unicode_escape").decode("ascii") or "the record")
                    raise VdcError(f"result record {path} breaks the schema at {where}: "
                                   f"{error.message[:200]}")
            return cls.from_dict(data)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise VdcError(f"cannot read result record {path}: {exc}") from None



def find_record(root: Path, key: RecordKey, method_name: str) -> EvalRecord | None:
    """The stored record with exactly this key, if any (the unit of resume)."""
    if key.epochs is None:
        raise ValueError("find_record needs the key's schedule (epochs)")
    path = Path(root) / key.relative_path(method_name)
    if not path.is_file():
        return None
    record = EvalRecord.from_disk(path)
    return record if record.key == key else None


def load_records(root: Path) -> list[EvalRecord]:
    return [EvalRecord.from_disk(p) for p in sorted(Path(root).rglob("seed*.json"))]


@dataclass(frozen=True)
class Cell:
    """Records that differ only by seed, aggregated: the unit a table shows."""

    key: RecordKey          # with the seed of the first record; compare with ``cell()``
    method: str
    seeds: tuple[int, ...]
    top1_mean: float
    top1_std: float
    top5_mean: float
    top5_std: float
    reference_best_top1_mean: float | None
    official: bool
    wall_seconds: float
    train_gflops: float | None = None   # summed over seeds; None when a record predates it
    # The distinct thread counts its records ran with; None for a record that does not say (written
    # before records kept it), which a display shows as unknown rather than guess.
    torch_threads: tuple[int | None, ...] = ()

    @property
    def n(self) -> int:
        return len(self.seeds)


def aggregate(records: list[EvalRecord]) -> list[Cell]:
    """Group by every key field but the seed; mean and sample std over seeds (0 for n = 1)."""
    groups: dict[tuple, list[EvalRecord]] = {}
    for record in records:
        groups.setdefault(record.key.cell(), []).append(record)
    cells = [_cell(sorted(members, key=lambda r: r.key.seed)) for members in groups.values()]
    return sorted(cells, key=lambda c: (c.key.dataset, c.key.track, c.method, c.key.net,
                                        c.key.label_strategy, c.key.variant, c.key.archive_sha256))


def summed_train_gflops(records: list[EvalRecord]) -> float | None:
    """Training compute summed over records; None when any record predates compute."""
    compute = [r.train_gflops for r in records]
    return None if None in compute else sum(compute)


def _cell(members: list[EvalRecord]) -> Cell:
    top1, top5 = Spread.of(r.top1 for r in members), Spread.of(r.top5 for r in members)
    return Cell(key=members[0].key, method=members[0].method.name,
                seeds=tuple(r.key.seed for r in members), top1_mean=top1.mean,
                top1_std=top1.std, top5_mean=top5.mean, top5_std=top5.std,
                reference_best_top1_mean=mean_or_none(
                    r.reference_best_top1 for r in members if r.reference_best_top1 is not None),
                official=all(r.official for r in members),
                wall_seconds=sum(r.wall_seconds for r in members),
                train_gflops=summed_train_gflops(members),
                torch_threads=tuple(sorted({r.torch_threads for r in members},
                                           key=lambda t: (t is None, t or 0))))
