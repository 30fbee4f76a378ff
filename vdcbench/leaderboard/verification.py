"""An entry's verification status: who vouches for its numbers, and how.

- ``verified``: ``vdcbench verify`` re-scored the listed seeds from the archive and got every
  figure back bit for bit (same weights hash), under the entry's thread count and device;
- ``reproduced``: re-scored, within a stated tolerance, for a stated reason (another thread
  count, a GPU, another torch, another CPU named by the seed's record): close, not the same bits;
- ``self-reported``: nobody re-scored it; ``by`` says who ran it and ``where`` on what (a
  data set CI cannot hold, such as UCF101 on a GPU, can only be this).

The status names the archive's sha256 it was earned on and, per checked seed, the weights hash
it confirmed: :func:`check_status` refuses a status that no longer describes its entry (another
archive, a seed re-submitted since), so a changed archive can never keep a badge. CI re-checks
``verified`` and ``reproduced`` claims of every new or changed entry (``.ci/run``).

Entries written before the status existed carry none; :func:`status_of` reads them as what
they are: self-reported by this repository's own runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from vdcbench.core.errors import VdcError

if TYPE_CHECKING:      # entry imports this module; the type is only named here
    from vdcbench.leaderboard.entry import Entry, NetResults


class Status(str, Enum):
    VERIFIED = "verified"
    REPRODUCED = "reproduced"
    SELF_REPORTED = "self-reported"

    @property
    def rank(self) -> int:
        """Higher is stronger evidence; a cell pooling entries shows its weakest."""
        return {Status.SELF_REPORTED: 0, Status.REPRODUCED: 1, Status.VERIFIED: 2}[self]


STATUS_ORDER = (Status.VERIFIED, Status.REPRODUCED, Status.SELF_REPORTED)
# Figures are ratios of validation clips (20.666666666666668): a move of exactly the tolerance
# (one clip against a one-clip tolerance) can land a few ulps above it, so a billionth of a
# point is allowed on top; no real move is that small.
_SLACK = 1e-9
# Who ran an entry that predates the status: every such entry came from this repository.
LEGACY_BY = "this repository's own runs"


@dataclass(frozen=True)
class CheckedSeed:
    """One seed a verification re-scored: the figures it confirmed (the entry's, at the time)."""

    net: str
    seed: int
    weights_sha256: str     # the entry's, confirmed bit for bit (verified) or not (reproduced)
    top1: float             # the entry's top-1 at the time
    top1_delta: float       # re-scored minus entry; 0.0 when identical

    def to_dict(self) -> dict[str, Any]:
        return {"net": self.net, "seed": self.seed, "weights_sha256": self.weights_sha256,
                "top1": self.top1, "top1_delta": self.top1_delta}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CheckedSeed":
        return cls(net=data["net"], seed=data["seed"], weights_sha256=data["weights_sha256"],
                   top1=float(data["top1"]), top1_delta=float(data["top1_delta"]))


@dataclass(frozen=True)
class Verification:
    status: Status
    archive_sha256: str                 # the archive the status was earned on
    by: str                             # who ran the results (self-reported) or the check
    where: str                          # device, threads, torch, CPU
    reason: str | None = None           # reproduced: why not bit for bit
    tolerance: float | None = None      # reproduced: top-1/top-5 points allowed
    checked: tuple[CheckedSeed, ...] = ()
    vdcbench: str | None = None         # the version that re-scored (verified, reproduced)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "archive_sha256": self.archive_sha256,
                "by": self.by, "where": self.where, "reason": self.reason,
                "tolerance": self.tolerance, "checked": [c.to_dict() for c in self.checked],
                "vdcbench": self.vdcbench}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Verification":
        return cls(status=Status(data["status"]), archive_sha256=data["archive_sha256"],
                   by=data["by"], where=data["where"], reason=data.get("reason"),
                   tolerance=data.get("tolerance"),
                   checked=tuple(CheckedSeed.from_dict(c) for c in data.get("checked", ())),
                   vdcbench=data.get("vdcbench"))

    @property
    def label(self) -> str:
        """How the page and the README name it beside a number."""
        if self.status is Status.REPRODUCED:
            return f"reproduced (±{self.tolerance:g}: {self.reason})"
        if self.status is Status.VERIFIED:
            seeds = ", ".join(f"{c.net} seed {c.seed}" for c in self.checked)
            return f"verified ({seeds})"
        return f"self-reported by {self.by} ({self.where})"


def within(delta: float, tolerance: float) -> bool:
    """Whether a move of ``delta`` points is within ``tolerance`` points (see ``_SLACK``)."""
    return math.isfinite(delta) and abs(delta) <= tolerance + _SLACK


def where_of(results: Sequence["NetResults"]) -> str:
    """Where results ran, from what their seeds record: device, torch thread count, torch."""
    seeds = [s for r in results for s in r.seeds]
    devices = sorted({s.device for s in seeds})
    threads = sorted({s.torch_threads for s in seeds}, key=lambda t: (t is None, t or 0))
    torches = sorted({s.versions.get("torch", "?") for s in seeds})
    counts = ", ".join("unrecorded" if t is None else str(t) for t in threads)
    return (f"{'/'.join(devices)}, torch threads {counts}, torch {'/'.join(torches)}")


def self_reported(archive_sha256: str, authors: Sequence[str],
                  results: Sequence["NetResults"]) -> Verification:
    """The status of results nobody has re-scored: who submitted them and where they ran."""
    return Verification(status=Status.SELF_REPORTED, archive_sha256=archive_sha256,
                        by=", ".join(authors) or "unnamed submitter", where=where_of(results))


def status_of(entry: "Entry") -> Verification:
    """The entry's status; an entry written before statuses existed is self-reported by this
    repository's own runs (every such entry was made here, by ``vdcbench submit``)."""
    if entry.verification is not None:
        return entry.verification
    return Verification(status=Status.SELF_REPORTED, archive_sha256=entry.archive.sha256,
                        by=LEGACY_BY, where=where_of(entry.results))


def status_problem(entry: "Entry", verification: Verification) -> str | None:
    """Why ``verification`` no longer describes ``entry`` (None when it still does)."""
    if verification.archive_sha256 != entry.archive.sha256:
        return (f"its {verification.status.value} status was earned on archive "
                f"{verification.archive_sha256[:12]}, not on the entry's archive "
                f"{entry.archive.sha256[:12]}")
    if verification.status is Status.SELF_REPORTED:
        if verification.checked:
            return "a self-reported status lists re-scored seeds"
        return None
    if not verification.checked:
        return f"a {verification.status.value} status lists no re-scored seed"
    if verification.status is Status.REPRODUCED and (
            not verification.reason or verification.tolerance is None):
        return "a reproduced status must say its tolerance and why"
    for c in verification.checked:
        results = entry.net(c.net)
        seed = next((s for s in results.seeds if s.seed == c.seed), None) if results else None
        if seed is None:
            return f"its status checked {c.net} seed {c.seed}, which the entry no longer holds"
        if seed.weights_sha256 != c.weights_sha256 or seed.top1 != c.top1:
            return (f"{c.net} seed {c.seed} changed since it was {verification.status.value} "
                    f"(top1 {c.top1!r} then, {seed.top1!r} now)")
        if verification.status is Status.VERIFIED and c.top1_delta != 0.0:
            return f"a verified status with {c.net} seed {c.seed} off by {c.top1_delta:+g}"
        if verification.status is Status.REPRODUCED and not within(c.top1_delta,
                                                                    verification.tolerance):
            return (f"{c.net} seed {c.seed} is off by {c.top1_delta:+g} points, outside the "
                    f"status's tolerance ±{verification.tolerance:g}")
    return None


def check_status(entry: "Entry", where: str) -> None:
    """Refuse an entry whose stored status no longer describes it (one line, exit 2)."""
    if entry.verification is None:
        return
    problem = status_problem(entry, entry.verification)
    if problem is not None:
        raise VdcError(f"{where}: {problem}; run `vdcbench verify {entry.id} --write-status` "
                       "again, or resubmit (a resubmitted entry starts self-reported)")


def carried_over(previous: "Entry | None", new: "Entry") -> Verification | None:
    """The status a resubmitted entry keeps: the previous one, where it still describes the new
    entry (same archive, the checked seeds unchanged); otherwise None (self-reported)."""
    if previous is None or previous.verification is None:
        return None
    if previous.verification.status is Status.SELF_REPORTED:
        return None
    return previous.verification if status_problem(new, previous.verification) is None else None
