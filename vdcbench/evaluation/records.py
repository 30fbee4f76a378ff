"""Result records: one per (archive, protocol, data set, track, labels, variant, net, teacher, seed).

Records are typed objects with ``to_disk`` / ``from_disk``; the on-disk layout mirrors the
leaderboard (data set / track / method-archive / net / labels-variant / seed), so a results folder
can be read as a table and an interrupted evaluation resumes from the records it has. Their JSON
schema is ``protocol/schemas/result.schema.json``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from vdcbench.core.atomic_file import write_json_atomic
from vdcbench.core.errors import VdcError
from vdcbench.protocol import PROTOCOL_DIR

RECORD_FORMAT = "vdcbench-result"
RECORD_VERSION = 1
_OPTIONAL_FIELDS = ("net_gflops_forward", "train_gflops", "torch_threads")
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

    def cell(self) -> tuple:
        """The key without the seed: records sharing it are aggregated into mean ± std."""
        return tuple(v for k, v in asdict(self).items() if k != "seed")


@dataclass(frozen=True)
class EvalRecord:
    key: RecordKey
    method: dict[str, Any]
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
    ledger: dict[str, Any]
    versions: dict[str, str]
    by_epoch_top1: dict[str, float] = field(default_factory=dict)
    # Compute in GFLOPs (2 × fvcore's multiply-adds). Optional: records written before they were
    # kept load without them, and ``to_dict`` leaves them out again so such files round-trip.
    net_gflops_forward: float | None = None     # one clip through the evaluation net
    train_gflops: float | None = None           # the run's training: ≈ 3 × forward × clips seen
    # CPU float sums are ordered by the intra-op thread count, so bitwise reproduction needs it.
    torch_threads: int | None = None

    def relative_path(self) -> Path:
        k = self.key
        return (Path(k.dataset) / k.track / f"{self.method.get('name', 'unknown')}-{k.archive_sha256[:12]}"
                / k.net / f"{k.label_strategy}-{k.variant}" / f"seed{k.seed}.json")

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        for optional in _OPTIONAL_FIELDS:
            if body[optional] is None:
                del body[optional]
        return {"format": RECORD_FORMAT, "format_version": RECORD_VERSION, **body}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalRecord":
        if data.get("format") != RECORD_FORMAT or data.get("format_version") != RECORD_VERSION:
            raise VdcError("not a vdcbench result record (format/format_version mismatch)")
        body = {k: v for k, v in data.items() if k not in ("format", "format_version")}
        body["key"] = RecordKey(**body["key"])
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
            data = json.loads(Path(path).read_text())
            if data.get("format") == RECORD_FORMAT:   # other JSON is refused by from_dict
                error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
                if error is not None:
                    where = "/".join(str(p) for p in error.absolute_path) or "the record"
                    raise VdcError(f"result record {path} breaks the schema at {where}: "
                                   f"{error.message[:200]}")
            return cls.from_dict(data)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise VdcError(f"cannot read result record {path}: {exc}") from None


def mean_std(mean: float, std: float, n: int, digits: int = 1) -> str:
    """"m ± s" over n results; one result has no spread, so it prints as just "m"."""
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if n > 1 else f"{mean:.{digits}f}"


def find_record(root: Path, key: RecordKey, method_name: str) -> EvalRecord | None:
    """The stored record with exactly this key, if any (the unit of resume)."""
    probe = EvalRecord(key=key, method={"name": method_name}, top1=0, top5=0,
                       reference_best_top1=None, official=False, epochs=0, iterations=0,
                       batch_size=0, wall_seconds=0, device="", weights_sha256="", final_loss=0,
                       ledger={}, versions={})
    path = Path(root) / probe.relative_path()
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

    @property
    def n(self) -> int:
        return len(self.seeds)


def aggregate(records: list[EvalRecord]) -> list[Cell]:
    """Group by every key field but the seed; mean and sample std over seeds (0 for n = 1)."""
    import statistics

    groups: dict[tuple, list[EvalRecord]] = {}
    for record in records:
        groups.setdefault(record.key.cell(), []).append(record)
    cells = []
    for members in groups.values():
        members.sort(key=lambda r: r.key.seed)

        def stats(values):
            return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0

        top1, top5 = stats([r.top1 for r in members]), stats([r.top5 for r in members])
        refs = [r.reference_best_top1 for r in members if r.reference_best_top1 is not None]
        compute = [r.train_gflops for r in members]
        cells.append(Cell(key=members[0].key, method=members[0].method.get("name", "unknown"),
                          seeds=tuple(r.key.seed for r in members), top1_mean=top1[0],
                          top1_std=top1[1], top5_mean=top5[0], top5_std=top5[1],
                          reference_best_top1_mean=statistics.fmean(refs) if refs else None,
                          official=all(r.official for r in members),
                          wall_seconds=sum(r.wall_seconds for r in members),
                          train_gflops=None if None in compute else sum(compute)))
    return sorted(cells, key=lambda c: (c.key.dataset, c.key.track, c.method, c.key.net,
                                        c.key.label_strategy, c.key.variant, c.key.archive_sha256))
