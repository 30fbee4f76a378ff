"""A study's grid, expanded into cells: one condensed set under one net, variant and seed.

A :class:`StudyCell` is a (method, dataset, track, IPC, label strategy, evaluation variant,
formation, net, condensation seed, evaluation seed); a :class:`CellCommand` is a cell with
where its archive goes and how it is scored: what an executor runs, in this process or on a
cluster.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vdcbench.core.errors import VdcError
from vdcbench.study.spec import ALL_VIDEOS, FORMATION_NONE, Arm, Shape, Study


@dataclass(frozen=True)
class StudyCell:
    study: str
    arm: Arm
    dataset: str
    shape: Shape            # with a numeric ipc: the data set resolved "all"
    labels: str
    variant: str
    net: str
    condensation_seed: int
    seed: int

    @property
    def method(self) -> str:
        return self.arm.method

    @property
    def ipc(self) -> int:
        return int(self.shape.ipc)

    @property
    def frames(self) -> int:
        return self.shape.frames

    @property
    def track(self) -> str:
        return f"ipc{self.shape.ipc}-t{self.shape.frames}"

    @property
    def formation(self) -> str:
        return self.shape.formation

    def axis(self, name: str) -> str:
        """The cell's value on a table axis, as the studies file spells it."""
        return {"method": self.arm.label, "shape": self.shape.label, "ipc": str(self.ipc),
                "labels": self.labels, "variant": self.variant, "net": self.net}[name]

    def archive_name(self) -> str:
        """The condensed set's file name: what the set depends on, so cells that share a set
        (other nets, variants, evaluation seeds) share the file."""
        name = f"{self.method}"
        if self.arm.settings:
            digest = hashlib.sha256(json.dumps(self.arm.settings_dict(), sort_keys=True)
                                    .encode()).hexdigest()[:8]
            name += f"-set{digest}"
        name += f"-{self.dataset}-{self.track}-{self.labels}"
        if self.formation != FORMATION_NONE:
            name += "-" + "".join(c if c.isalnum() or c == "-" else "_" for c in self.formation)
        return f"{name}-s{self.condensation_seed}.tar"

    def describe(self) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in self.arm.settings)
        method = f"{self.method} ({settings})" if settings else self.method
        formation = "" if self.formation == FORMATION_NONE else f" {self.formation}"
        return (f"{method} {self.track}{formation} {self.labels} {self.variant} {self.net} "
                f"cs{self.condensation_seed} seed {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "arm": self.arm.label,
                "settings": self.arm.settings_dict(), "dataset": self.dataset,
                "track": self.track, "ipc": self.ipc, "frames": self.frames,
                "formation": self.formation, "labels": self.labels, "variant": self.variant,
                "net": self.net, "condensation_seed": self.condensation_seed, "seed": self.seed}


@dataclass(frozen=True)
class Narrowing:
    """What ``--methods``, ``--seeds`` and ``--ipc`` keep of a grid (None: all)."""

    methods: tuple[str, ...] | None = None     # a method name or an arm's label
    seeds: tuple[int, ...] | None = None
    ipc: tuple[int, ...] | None = None


@dataclass(frozen=True)
class CellCommand:
    """Everything an executor needs to produce one cell's record."""

    cell: StudyCell
    archive: Path
    results_dir: Path
    epochs: int | None          # a shortened schedule (records not official); None: protocol's
    device: str = "cpu"


def expand(study: Study, dataset: str, narrowing: Narrowing = Narrowing(),
           videos_per_class: Callable[[], int] | None = None) -> list[StudyCell]:
    """The study's cells on ``dataset``, in the grid's order (arm, shape, labels, variant, net,
    condensation seed, evaluation seed). ``videos_per_class`` resolves ``ipc = "all"``."""
    arms = study.arms
    if narrowing.methods is not None:
        known = {a.method for a in arms} | {a.label for a in arms}
        unknown = [m for m in narrowing.methods if m not in known]
        if unknown:
            raise VdcError(f"--methods {','.join(unknown)}: not in study {study.name!r} "
                           f"(its methods: {', '.join(dict.fromkeys(a.label for a in arms))})")
        arms = tuple(a for a in arms if a.method in narrowing.methods
                     or a.label in narrowing.methods)
    shapes = [_resolved(shape, videos_per_class) for shape in study.shapes]
    if narrowing.ipc is not None:
        shapes = [s for s in shapes if s.ipc in narrowing.ipc]
        if not shapes:
            raise VdcError(f"--ipc {','.join(map(str, narrowing.ipc))}: study {study.name!r} has "
                           f"no such IPC (its IPCs: "
                           f"{', '.join(dict.fromkeys(str(s.ipc) for s in study.shapes))})")
    cells = []
    for arm in (study.arm_on(a, dataset) for a in arms):
        for shape in shapes:
            seeds = study.seeds_for(int(shape.ipc))
            if narrowing.seeds is not None:
                seeds = tuple(s for s in narrowing.seeds)
            for labels in study.labels:
                for variant in study.variants:
                    if variant == "kl" and labels == "hard":
                        continue           # the kl variant needs teacher labels
                    for net in study.nets:
                        for cs in study.condensation_seeds:
                            cells += [StudyCell(study.name, arm, dataset, shape, labels, variant,
                                                net, cs, seed) for seed in seeds]
    return cells


def _resolved(shape: Shape, videos_per_class: Callable[[], int] | None) -> Shape:
    if shape.ipc != ALL_VIDEOS:
        return shape
    if videos_per_class is None:
        raise VdcError("this study keeps every training video (ipc \"all\"): the data set's "
                       "videos per class are needed")
    return Shape(ipc=videos_per_class(), frames=shape.frames, formation=shape.formation,
                 label=shape.label)


def commands(cells: Sequence[StudyCell], folder: Path, results_dir: Path, epochs: int | None,
             device: str) -> list[CellCommand]:
    """Each cell's command, its archive under ``folder/archives``."""
    return [CellCommand(cell=c, archive=Path(folder) / "archives" / c.archive_name(),
                        results_dir=Path(results_dir), epochs=epochs, device=device)
            for c in cells]
