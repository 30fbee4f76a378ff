"""Mean, sample standard deviation and n over repeated measurements: the one place they are
computed, so a record's summary, a results table and a leaderboard cell cannot disagree."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    """``mean ± std`` over ``n`` values; the std is the sample std (n − 1), 0 for one value."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> "Spread":
        values = list(values)
        if not values:
            return cls(mean=float("nan"), std=0.0, n=0)
        return cls(mean=statistics.fmean(values),
                   std=statistics.stdev(values) if len(values) > 1 else 0.0, n=len(values))

    def format(self, digits: int = 1) -> str:
        """"m ± s" over n results; one result has no spread, so it prints as just "m"."""
        return format_mean_std(self.mean, self.std, self.n, digits)


def mean_or_none(values: Iterable[float]) -> float | None:
    """The mean of the values, or None when there are none (an optional figure left out)."""
    values = list(values)
    return statistics.fmean(values) if values else None


def format_mean_std(mean: float, std: float, n: int, digits: int = 1) -> str:
    """"m ± s" over n results; one result has no spread, so it prints as just "m"."""
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if n > 1 else f"{mean:.{digits}f}"
