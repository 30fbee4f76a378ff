"""The tie rule: when may a table say one cell beats another?

Two cells are compared through their results paired by evaluation seed (the seed drives the
student's initialisation and batch order, so the same seed on two condensed sets is a paired
measurement). With ``d_s = a_s - b_s`` over the seeds both cells have:

- fewer than ``MIN_PAIRS`` (2) paired seeds: no evidence either way, so the cells tie;
- fewer than ``MIN_PERMUTATION_PAIRS`` (6): the cells tie unless every ``d_s`` has the same
  sign (a zero difference has none). Below six pairs no sign-flip test can reach 5 %: its
  smallest two-sided p-value is 2 / 2^n;
- six or more: an exact paired permutation (sign-flip) test, two-sided, at ``ALPHA`` (5 %):
  the p-value is the share of the 2^n sign assignments whose |sum| is at least the observed
  |sum|, counted exactly.

Everything is exact and deterministic: differences are taken between the floats as exact
rationals (``fractions.Fraction``), scaled to integers, and the null distribution of the sum is
enumerated by counting, so no rounding can move a comparison across the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from vdcbench.core.errors import VdcError

ALPHA = Fraction(1, 20)
MIN_PAIRS = 2
MIN_PERMUTATION_PAIRS = 6
# The null distribution has at most 2^n support points; beyond this many seeds counting them
# exactly costs more than a leaderboard build should.
MAX_EXACT_PAIRS = 22


@dataclass(frozen=True)
class TieResult:
    tied: bool
    pairs: int                 # seeds both cells have
    rule: str                  # "too-few-pairs" | "sign" | "permutation"
    direction: int             # sign of the summed paired difference a - b: +1, -1 or 0
    p_value: Fraction | None   # the permutation test's, when it was the rule

    @property
    def a_better(self) -> bool:
        return not self.tied and self.direction > 0


def paired_differences(a: Mapping[int, float], b: Mapping[int, float]) -> list[Fraction]:
    """Exact differences ``a[s] - b[s]`` over the seeds both have, in seed order."""
    return [Fraction(a[s]) - Fraction(b[s]) for s in sorted(set(a) & set(b))]


def _sign(x: Fraction | int) -> int:
    return (x > 0) - (x < 0)


def sign_flip_p_value(differences: list[Fraction]) -> Fraction:
    """Exact two-sided p-value of the paired sign-flip test with statistic |sum of differences|."""
    n = len(differences)
    if n > MAX_EXACT_PAIRS:
        raise VdcError(f"the exact tie test counts at most {MAX_EXACT_PAIRS} paired seeds, "
                       f"not {n}")
    if n == 0:
        return Fraction(1)
    scale = math.lcm(*(d.denominator for d in differences))
    values = [int(d * scale) for d in differences]
    observed = abs(sum(values))
    counts: dict[int, int] = {0: 1}
    for v in values:
        step: dict[int, int] = {}
        for total, count in counts.items():
            for signed in (total + v, total - v):
                step[signed] = step.get(signed, 0) + count
        counts = step
    extreme = sum(count for total, count in counts.items() if abs(total) >= observed)
    return Fraction(extreme, 2 ** n)


def compare(a: Mapping[int, float], b: Mapping[int, float], *, alpha: Fraction = ALPHA,
            min_pairs: int = MIN_PAIRS,
            min_permutation_pairs: int = MIN_PERMUTATION_PAIRS) -> TieResult:
    """Compare two cells given as ``seed -> value``."""
    diffs = paired_differences(a, b)
    n = len(diffs)
    direction = _sign(sum(diffs, Fraction(0)))
    if n < min_pairs:
        return TieResult(True, n, "too-few-pairs", direction, None)
    if n < min_permutation_pairs:
        signs = {_sign(d) for d in diffs}
        separated = len(signs) == 1 and 0 not in signs
        return TieResult(not separated, n, "sign", direction, None)
    p = sign_flip_p_value(diffs)
    return TieResult(not (p <= alpha and direction != 0), n, "permutation", direction, p)


def tied(a: Mapping[int, float], b: Mapping[int, float]) -> bool:
    return compare(a, b).tied
