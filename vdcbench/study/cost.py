"""What a study's remaining cells will cost, from what was measured here before.

Evaluation: every result record carries its wall time and schedule, so a cell's rate is the mean
seconds per epoch of the records of its (data set, track, net, label strategy), times the
cell's epochs. Where no record of that track exists, one of another track on the same data set,
net and labels is scaled by the frames trained (IPC × frames) and the estimate says it is
scaled. Condensation: the wall time an archive of the same method, data set, track and labels
recorded (its manifest, else its ``.timing.json`` sidecar). Where nothing was measured the
estimate says "no rate known" rather than guess.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vdcbench.archive.timing import read_timing
from vdcbench.core.errors import VdcError
from vdcbench.evaluation.records import EvalRecord
from vdcbench.protocol import parse_track_id
from vdcbench.study.cells import StudyCell

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Estimate:
    seconds: float | None       # None: no rate known
    basis: str                  # how it was reached, for the plan

    def __add__(self, other: "Estimate") -> "Estimate":
        if self.seconds is None or other.seconds is None:
            return Estimate(None, "no rate known")
        return Estimate(self.seconds + other.seconds, "")


def _frames(track: str) -> int:
    ipc, frames = parse_track_id(track)
    return ipc * frames


class EvaluationRates:
    """Seconds per epoch of evaluation, by (data set, track, net, labels), from records. Records
    of the cell's own schedule come first: a short smoke run is mostly its final validation, so
    its rate per epoch overstates a 300-epoch run's."""

    def __init__(self, records: Iterable[EvalRecord]):
        samples: dict[tuple[str, str, str, str, int], list[float]] = {}
        for r in records:
            if r.epochs > 0 and r.wall_seconds > 0:
                samples.setdefault((r.key.dataset, r.key.track, r.key.net, r.key.label_strategy,
                                    r.epochs), []).append(r.wall_seconds / r.epochs)
        self._rates = {k: sum(v) / len(v) for k, v in samples.items()}

    def _rate(self, dataset: str, track: str, net: str, labels: str,
              epochs: int) -> float | None:
        same = self._rates.get((dataset, track, net, labels, epochs))
        if same is not None:
            return same
        others = [(e, rate) for (d, t, n, lab, e), rate in self._rates.items()
                  if (d, t, n, lab) == (dataset, track, net, labels)]
        # The schedule nearest the cell's: its share of validation is the most alike.
        return min(others, key=lambda er: abs(er[0] - epochs))[1] if others else None

    def estimate(self, cell: StudyCell, epochs: int) -> Estimate:
        exact = self._rate(cell.dataset, cell.track, cell.net, cell.labels, epochs)
        if exact is not None:
            return Estimate(exact * epochs, f"{exact:.2f} s/epoch measured")
        tracks = {t for (d, t, n, lab, _) in self._rates
                  if (d, n, lab) == (cell.dataset, cell.net, cell.labels)}
        if not tracks:
            return Estimate(None, f"no rate known for {cell.net} {cell.labels} on {cell.dataset}")
        # The nearest budget in frames: the batch, hence each epoch's work, grows with it.
        track = min(tracks, key=lambda t: abs(_frames(t) - _frames(cell.track)))
        rate = self._rate(cell.dataset, track, cell.net, cell.labels, epochs)
        rate *= _frames(cell.track) / _frames(track)
        return Estimate(rate * epochs, f"scaled from {track}")


class CondensationRates:
    """Condensation wall seconds of archives, by (method, data set, track, labels) and the
    method's config: EDC's cpu preset does not time EDC's full recipe."""

    def __init__(self, archives: Iterable[Path]):
        self._timed = [found for found in map(_timed, archives) if found is not None]

    @classmethod
    def of_folders(cls, folders: Sequence[Path]) -> "CondensationRates":
        return cls(p for folder in folders if Path(folder).is_dir()
                   for p in sorted(Path(folder).glob("*.tar")))

    def estimate(self, cell: StudyCell) -> Estimate:
        from vdcbench.study.matching import config_matches
        same = [(labels, seconds) for (method, dataset, track, labels), config, seconds
                in self._timed if (method, dataset, track) == (cell.method, cell.dataset,
                                                               cell.track)
                and config_matches(config, cell)]
        exact = [seconds for labels, seconds in same if labels == cell.labels]
        if exact:
            return Estimate(sum(exact) / len(exact), "measured")
        # Labels add a teacher pass over few clips; the selection or distillation dominates.
        if same:
            return Estimate(sum(s for _, s in same) / len(same), "other labels")
        return Estimate(None, f"no rate known for {cell.method} {cell.track} on {cell.dataset}")


def _timed(path: Path) -> tuple[tuple[str, str, str, str], dict, float] | None:
    """(method, data set, track, labels), the method's config and the wall seconds of an
    archive that recorded them;
    None for one that did not, or that cannot be read (a plan is not the place to refuse it)."""
    try:
        with tarfile.open(path) as tar:
            member = tar.extractfile(MANIFEST)
            manifest = json.loads(member.read()) if member is not None else None
    except (OSError, tarfile.TarError, KeyError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    try:
        method = manifest["method"]
        key = (method["name"], manifest["dataset"], manifest["track"], manifest["label_strategy"])
        config = dict(method.get("config") or {})
        seconds = method.get("wall_seconds")
        if seconds is None:
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            timing = read_timing(path, sha)
            seconds = None if timing is None else timing.wall_seconds
    except (KeyError, TypeError, AttributeError, OSError, ValueError, VdcError):
        return None                  # a malformed manifest or sidecar: not a plan's business
    return None if seconds is None else (key, config, float(seconds))


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
