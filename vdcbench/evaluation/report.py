"""What ``evaluate_archive`` returns: the records of every (net, seed) with their aggregation.

The aggregation (mean, sample std, n; summed compute and wall time) lives on the objects and is
computed through ``vdcbench.core.stats``, the one place that computes it. ``to_dict`` is the JSON
``vdcbench evaluate --json`` has always written, key for key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vdcbench.core.errors import UnknownNameError
from vdcbench.core.stats import Spread
from vdcbench.evaluation.records import EvalRecord, summed_train_gflops


def top5_is_informative(num_classes: int) -> bool:
    """Whether a top-5 accuracy says anything: with five classes or fewer every label is among
    the top five, so it is 100 % by construction, and a table printing it suggests a result.
    Records and ``--json`` keep the number (their format does not depend on the data set)."""
    return num_classes > 5


@dataclass(frozen=True)
class NetResult:
    """One evaluation net's records over the seeds asked for, in the order asked."""

    net: str
    records: tuple[EvalRecord, ...]
    reused_seeds: tuple[int, ...] = ()     # found on disk under the same key, not trained again

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(r.key.seed for r in self.records)

    @property
    def run_seeds(self) -> tuple[int, ...]:
        """The seeds this call trained."""
        return tuple(s for s in self.seeds if s not in self.reused_seeds)

    @property
    def n(self) -> int:
        return len(self.records)

    @property
    def top1(self) -> Spread:
        """Final-epoch top-1 %: mean, sample std and n over the seeds."""
        return Spread.of(r.top1 for r in self.records)

    @property
    def top5(self) -> Spread:
        return Spread.of(r.top5 for r in self.records)

    @property
    def official(self) -> bool:
        """Every record ran the protocol's schedule and the official variant (rankable)."""
        return all(r.official for r in self.records)

    @property
    def train_gflops(self) -> float | None:
        """Training compute summed over the seeds; None when a record predates compute."""
        return summed_train_gflops(list(self.records))

    @property
    def wall_seconds(self) -> float:
        return sum(r.wall_seconds for r in self.records)

    def summary_dict(self) -> dict[str, float]:
        """``{"n", "top1_mean", "top1_std", "top5_mean", "top5_std"}``, as ``--json`` writes it."""
        top1, top5 = self.top1, self.top5
        return {"n": self.n, "top1_mean": top1.mean, "top1_std": top1.std,
                "top5_mean": top5.mean, "top5_std": top5.std}


@dataclass(frozen=True)
class EvaluatedArchive:
    """Which archive was scored, and what it holds."""

    sha256: str
    path: Path | None            # None when the caller passed an archive already read
    method: str
    dataset: str
    track: str
    label_strategy: str
    protocol_version: int
    formation: str = "none"      # how its instances became clips (vdcbench.train.formation)

    def describe(self) -> str:
        """``"<method> <dataset> <track> <labels>"`` (with ``formation <id>`` after the track
        when it is not ``none``), the subject of a summary line."""
        track = self.track if self.formation == "none" else f"{self.track} formation {self.formation}"
        return f"{self.method} {self.dataset} {track} {self.label_strategy}"


@dataclass(frozen=True)
class EvaluationReport:
    """An archive scored on one or more nets over seeds; records are also on disk."""

    archive: EvaluatedArchive
    variant: str
    results_dir: Path
    nets: tuple[NetResult, ...]

    def net(self, name: str) -> NetResult:
        """The result of net ``name``; raises ``UnknownNameError`` for a net not evaluated."""
        for result in self.nets:
            if result.net == name:
                return result
        raise UnknownNameError("evaluated net", name, [r.net for r in self.nets])

    @property
    def records(self) -> tuple[EvalRecord, ...]:
        """Every record, net by net, seed by seed."""
        return tuple(r for result in self.nets for r in result.records)

    @property
    def official(self) -> bool:
        return all(result.official for result in self.nets)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` file: ``by_net`` (a summary per net), ``records``, and, for one net,
        ``summary`` (the format from before ``--net`` took lists)."""
        body: dict[str, Any] = {"by_net": {r.net: r.summary_dict() for r in self.nets},
                                "records": [r.to_dict() for r in self.records]}
        if len(self.nets) == 1:
            body["summary"] = self.nets[0].summary_dict()
        return body
