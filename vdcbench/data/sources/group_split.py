"""A seeded train / validation split that never puts one group on both sides.

A *unit* is what the store holds (a video, or a clip cut from a recording); a *group* is what must
not straddle the split (a recording, or a person named in the file name): clips of one person on
both sides would let the evaluation score recognising people, not actions.

Groups are global, not per class: the same person in two classes is one group, because a person
seen in training under one action is still a leak under another. The rule, chosen to keep each
class's validation share close to ``val_fraction`` without splitting a group:

1. each class's target is ``max(1, round(val_fraction * units of the class))`` (half rounds up);
2. the sorted group names are shuffled by ``numpy.random.default_rng(seed).permutation``;
3. in that order, a group goes to validation when some class it holds is still below its target
   and taking it leaves every class it holds at least one training unit; the walk stops once every
   class reaches its target;
4. a class left without a validation or a training unit is refused (``VdcError``): the split
   cannot measure it, and another seed, fraction or group rule is needed.

A listing declares its seeded split as a :class:`SeededSplit`, and ``prepare`` plans it again
over the units that decode: a file that fails would otherwise add a group to the permutation (so
good files change sides) and leave its own side short of its target.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vdcbench.core.errors import VdcError


@dataclass(frozen=True)
class GroupSplit:
    sides: tuple[str, ...]          # "train" or "val", one per unit
    val_groups: tuple[str, ...]     # sorted
    num_groups: int


def class_target(units: int, val_fraction: float) -> int:
    return max(1, math.floor(val_fraction * units + 0.5))


def seeded_group_split(labels: Sequence[int], groups: Sequence[str], *, seed: int,
                       val_fraction: float, class_names: Sequence[str]) -> GroupSplit:
    if len(labels) != len(groups):
        raise ValueError("one group per unit")
    if not 0.0 < val_fraction < 1.0:
        raise VdcError(f"val_fraction must be between 0 and 1 (exclusive), not {val_fraction}")
    per_class = Counter(labels)
    target = {c: class_target(n, val_fraction) for c, n in per_class.items()}
    held: dict[str, Counter] = defaultdict(Counter)
    for label, group in zip(labels, groups):
        held[group][label] += 1
    names = sorted(held)
    order = np.random.default_rng(seed).permutation(len(names))
    in_val: Counter = Counter()
    chosen: set[str] = set()
    for i in order:
        if all(in_val[c] >= target[c] for c in per_class):
            break
        counts = held[names[int(i)]]
        wanted = any(in_val[c] < target[c] for c in counts)
        keeps_training = all(per_class[c] - in_val[c] - k >= 1 for c, k in counts.items())
        if wanted and keeps_training:
            chosen.add(names[int(i)])
            in_val.update(counts)
    for c in sorted(per_class):
        if in_val[c] == 0 or in_val[c] == per_class[c]:
            side = "validation" if in_val[c] == 0 else "training"
            raise VdcError(
                f"the seeded split (seed {seed}, val_fraction {val_fraction}) leaves class "
                f"{class_names[c]!r} without a {side} video ({per_class[c]} units in "
                f"{sum(1 for g in held if held[g][c])} groups); try another seed, fraction or "
                "group rule, or give a split file")
    return GroupSplit(sides=tuple("val" if g in chosen else "train" for g in groups),
                      val_groups=tuple(sorted(chosen)), num_groups=len(names))


@dataclass(frozen=True)
class SeededSplit:
    """The settings of a seeded group split, kept by the listing so that the split can be planned
    over any subset of its units (the ones that decode) with the same rule."""

    seed: int
    val_fraction: float
    grouping: str           # how units are grouped, for the description
    note: str = ""          # appended to the description (how recordings were cut)

    def plan(self, labels: Sequence[int], groups: Sequence[str],
             class_names: Sequence[str]) -> tuple[tuple[str, ...], str]:
        """The side of every unit and the description of the split."""
        split = seeded_group_split(labels, groups, seed=self.seed,
                                   val_fraction=self.val_fraction, class_names=class_names)
        n_val = sum(s == "val" for s in split.sides)
        how = (f"seeded group split: seed {self.seed}, val_fraction {self.val_fraction} per class "
               f"(target max(1, round({self.val_fraction} x units))); {self.grouping}; numpy "
               f"default_rng({self.seed}).permutation over the {split.num_groups} sorted groups, "
               "a group taken into validation while a class it holds is under target and each "
               f"class keeps a training unit; {len(split.val_groups)} groups in validation"
               f"{self.note}; {len(split.sides) - n_val} train / {n_val} val units")
        return split.sides, how
