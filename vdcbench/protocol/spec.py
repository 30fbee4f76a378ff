"""The frozen protocol, loaded from ``protocol/v<N>.toml`` into immutable objects.

Nothing else in vdcbench reads the TOML. A protocol is identified by its version and by the
sha256 of its parsed content in canonical JSON (sorted keys, no whitespace), so comments may be
edited but no value may change without changing the hash; ``tests/test_protocol.py`` pins it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
import sys
import tomllib
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from vdcbench.core.errors import NotBuiltError, UnknownNameError, VdcError
from vdcbench.protocol.study_tracks import StudyTracks, load_study_tracks

# A source checkout (or editable install) reads the repository's top-level protocol/; a wheel
# carries the same files as the vdcbench._protocol package data.
_SOURCE_DIR = Path(__file__).resolve().parents[2] / "protocol"
PROTOCOL_DIR = _SOURCE_DIR if (_SOURCE_DIR / "v1.toml").is_file() else Path(__file__).resolve().parents[1] / "_protocol"
LATEST_VERSION = 1
_TRACK_ID = re.compile(r"^ipc(\d+)-t(\d+)$")


if sys.version_info >= (3, 11):
    from enum import StrEnum as _StrEnum
else:  # pragma: no cover - Python 3.10
    class _StrEnum(str, Enum):
        """``enum.StrEnum`` before 3.11."""

        def __str__(self) -> str:
            return self.value

        def __format__(self, spec: str) -> str:
            return self.value.__format__(spec)


class Choice(_StrEnum):
    """A closed choice that files spell as a plain string.

    A ``str`` subclass whose ``str()``, f-string and ``json.dumps`` are the bare value, so records,
    manifests and sidecars written from a member hold the same bytes as from the string, and a
    member compares equal to its string."""

    @classmethod
    def parse(cls, value: Any, what: str) -> "Choice":
        """The member spelt ``value``; a one-line ``VdcError`` naming ``what`` otherwise."""
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(m.value for m in cls)
            raise VdcError(f"{what} must be one of {known}, not {value!r}") from None


class Schedule(Choice):
    """The evaluation trainer's per-epoch learning-rate schedule."""

    HALF_COSINE = "half-cosine"


class BatchSizeRule(Choice):
    BASE_TIMES_IPC = "base_times_ipc"


class Optimizer(Choice):
    ADAMW = "adamw"
    SGD = "sgd"


class Loss(Choice):
    CE = "ce"
    MSE_GT = "mse-gt"
    KL = "kl"


class LabelSource(Choice):
    """Where a label strategy's training targets come from."""

    ARCHIVE_HARD = "archive-hard"        # the archive's class labels only
    ARCHIVE_LOGITS = "archive-logits"    # the archive's stored (N, K) soft labels
    TEACHER_ONLINE = "teacher-online"    # the protocol teacher, on every augmented batch


def parse_track_id(track_id: str) -> tuple[int, int] | None:
    """(instances per class, frames per instance) of a track id like ``ipc10-t8``; None when the
    text is not shaped like one (whether the protocol declares it is ``Protocol.track``'s call)."""
    match = _TRACK_ID.match(track_id)
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True)
class Sampling:
    """Slide-window clip sampling of the study's reference code, frames counted from 0."""

    frames: int
    tau: int


@dataclass(frozen=True)
class GeneratorSpec:
    """How the embedded synthetic data set is generated, and the hashes it must reproduce."""

    version: int
    seed: int
    frames: int
    height: int
    width: int
    train_per_class: int
    val_per_class: int
    train_sha256: str
    val_sha256: str


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    num_classes: int
    split: str
    class_order: str
    resize: tuple[int, int]
    crop: int
    metrics: tuple[str, ...]
    base_batch_size: int
    hflip: bool
    teacher_profile: str
    interval: int | None = None
    classes: tuple[str, ...] = ()
    generator: GeneratorSpec | None = None


@dataclass(frozen=True)
class Track:
    """A budget: at most ``ipc`` instances per class of ``frames`` frames at ``height`` x ``width``."""

    dataset: Dataset
    ipc: int
    frames: int
    official: bool
    # The study-tracks declaration that admits a budget the protocol itself does not declare
    # (protocol/study-tracks.toml); None for the protocol's own tracks.
    study: str | None = None

    @property
    def id(self) -> str:
        return f"ipc{self.ipc}-t{self.frames}"

    @property
    def height(self) -> int:
        return self.dataset.crop

    @property
    def width(self) -> int:
        return self.dataset.crop

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    @property
    def max_instances(self) -> int:
        return self.ipc * self.num_classes

    @property
    def frame_budget(self) -> int:
        """Frames the track allows in all: instances x frames per instance."""
        return self.max_instances * self.frames


@dataclass(frozen=True)
class TrainerRecipe:
    """The evaluation trainer: how a student is trained on a condensed set and scored."""

    optimizer: Optimizer
    lr: float
    betas: tuple[float, float]
    weight_decay: float
    weight_decay_min_ndim: int
    epochs: int
    schedule: Schedule
    batch_size: BatchSizeRule
    shuffle: bool
    drop_last: bool
    crop_scale: tuple[float, float]
    crop_ratio: tuple[float, float]
    normalize_mean: tuple[float, float, float]
    normalize_std: tuple[float, float, float]
    init: str
    official_seeds: tuple[int, ...]
    official_metric: str
    reference_metric_epochs: tuple[int, ...]

    def lr_factor(self, epoch: int) -> float:
        """Per-epoch LR multiplier. The reference divides by 2 inside the cosine, so the LR only
        falls to half its base value over training (a quarter cosine); kept as the study ran it."""
        if self.schedule is not Schedule.HALF_COSINE:
            raise NotBuiltError(f"schedule {self.schedule.value!r}")
        if epoch > self.epochs:
            return 0.0
        return 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs / 2.0))

    def batch_size_for(self, dataset: Dataset, ipc: int) -> int:
        if self.batch_size is not BatchSizeRule.BASE_TIMES_IPC:
            raise NotBuiltError(f"batch-size rule {self.batch_size.value!r}")
        return dataset.base_batch_size * ipc


@dataclass(frozen=True)
class LabelStrategy:
    name: str
    loss: Loss
    labels: LabelSource
    gamma: float = 0.0


@dataclass(frozen=True)
class Variant:
    """An evaluation variant. Only ``official`` produces the figure that is ranked."""

    name: str
    cutmix: bool
    loss_override: Loss | None      # None: the label strategy's loss (the TOML spells it "")
    cutmix_beta: tuple[float, float] = (1.0, 1.0)
    temperature: float = 1.0


@dataclass(frozen=True)
class NetSpec:
    name: str
    description: str
    teacher_architecture: str
    dropout: float
    params: Mapping[str, Any]


@dataclass(frozen=True)
class TeacherRecipe:
    name: str
    net: str
    lr: float
    momentum: float
    weight_decay: float
    grad_clip: float
    epochs: int
    warmup_epochs: int
    warmup_start_factor: float
    milestones: tuple[int, ...]
    gamma: float
    batch_size: int
    crop_scale: tuple[float, float]
    seed: int = 0

    def lr_factor(self, epoch: int) -> float:
        """Linear warm-up from ``warmup_start_factor`` then x``gamma`` at each milestone."""
        if epoch < self.warmup_epochs:
            start = self.warmup_start_factor
            return start + (1.0 - start) * epoch / self.warmup_epochs
        return self.gamma ** sum(epoch >= m for m in self.milestones)


@dataclass(frozen=True)
class ArchiveLimits:
    max_manifest_bytes: int
    max_members: int
    max_expansion: int
    max_compression_ratio: int


@dataclass(frozen=True)
class Protocol:
    version: int
    name: str
    sha256: str
    sampling: Sampling
    datasets: Mapping[str, Dataset]
    official_ipc: tuple[int, ...]
    official_frames: int
    temporal_frames: tuple[int, ...]
    equal_frame_grid: tuple[tuple[int, int], ...]
    temporal_formations: tuple[str, ...]
    trainer: TrainerRecipe
    label_strategies: Mapping[str, LabelStrategy]
    variants: Mapping[str, Variant]
    nets: Mapping[str, NetSpec]
    teacher_recipes: Mapping[str, TeacherRecipe]
    archive: ArchiveLimits
    # Declared beside the protocol, outside its hash: budgets of the study's experiments that the
    # protocol does not declare (vdcbench/protocol/study_tracks.py). Not the protocol's content,
    # so two loads of one protocol compare equal whatever study tracks lie beside them.
    study_tracks: tuple[StudyTracks, ...] = dataclasses.field(default=(), compare=False)

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]

    def dataset(self, name: str) -> Dataset:
        if name not in self.datasets:
            raise UnknownNameError("data set", name, self.datasets)
        return self.datasets[name]

    def net(self, name: str) -> NetSpec:
        if name not in self.nets:
            raise UnknownNameError("net", name, self.nets)
        return self.nets[name]

    def label_strategy(self, name: str) -> LabelStrategy:
        if name not in self.label_strategies:
            raise UnknownNameError("label strategy", name, self.label_strategies)
        return self.label_strategies[name]

    def variant(self, name: str) -> Variant:
        if name not in self.variants:
            raise UnknownNameError("evaluation variant", name, self.variants)
        return self.variants[name]

    def track_ids(self, include_temporal: bool = False) -> list[str]:
        ids = [f"ipc{k}-t{self.official_frames}" for k in self.official_ipc]
        if include_temporal:
            ids += [f"ipc{k}-t{t}" for k, t in self.equal_frame_grid if f"ipc{k}-t{t}" not in ids]
        return ids

    def track(self, dataset: str | Dataset, track_id: str) -> Track:
        ds = dataset if isinstance(dataset, Dataset) else self.dataset(dataset)
        parsed = parse_track_id(track_id)
        every = self.track_ids(include_temporal=True)
        if parsed is None:
            raise UnknownNameError("track", track_id, every)
        ipc, frames = parsed
        if track_id not in every:
            every_video = ds.generator.train_per_class if ds.generator is not None else None
            study = next((s for s in self.study_tracks
                          if s.admits(self.version, ipc, frames, every_video)), None)
            if study is None:
                raise UnknownNameError("track", track_id, every, self._track_hint(*parsed))
            return Track(dataset=ds, ipc=ipc, frames=frames, official=False, study=study.name)
        official = ipc in self.official_ipc and frames == self.official_frames
        return Track(dataset=ds, ipc=ipc, frames=frames, official=official)

    def _track_hint(self, ipc: int, frames: int) -> str:
        """What an undeclared ``ipcK-tT`` is told: the nearest IPC at T frames, if K is an IPC at
        all, and the tracks there are. By number, not spelling: the closest spelling of
        ``ipc0-t8`` is ``ipc10-t8``, which is no answer to an IPC of 0."""
        official = self.track_ids()
        temporal = [t for t in self.track_ids(include_temporal=True) if t not in official]
        same_frames = sorted(k for k, t in (parse_track_id(i) for i in official + temporal)
                             if t == frames)
        nearest = (min(same_frames, key=lambda k: (abs(k - ipc), k))
                   if ipc >= 1 and same_frames else None)
        guess = f"; did you mean 'ipc{nearest}-t{frames}'? " if nearest is not None else "; "
        studies = "; ".join(s.describe() for s in self.study_tracks)
        return (f"{guess}the protocol's tracks are {', '.join(official)} (official)"
                + (f" and {', '.join(temporal)} (temporal)" if temporal else "")
                + (f"; study tracks: {studies}" if studies else ""))

    def teacher_recipe(self, dataset: str | Dataset, net: str) -> TeacherRecipe:
        ds = dataset if isinstance(dataset, Dataset) else self.dataset(dataset)
        key = f"{ds.teacher_profile}-{self.net(net).teacher_architecture}"
        if key not in self.teacher_recipes:
            raise UnknownNameError("teacher recipe", key, self.teacher_recipes)
        return self.teacher_recipes[key]


def canonical_sha256(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _tuple(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuple(v) for v in value)
    return value


# Closed choices: the TOML spells them as strings; the objects hold members. An empty string
# is "not set" where the field is optional (a variant's loss override).
_CHOICES: dict[type, dict[str, type[Choice]]] = {
    TrainerRecipe: {"optimizer": Optimizer, "schedule": Schedule, "batch_size": BatchSizeRule},
    LabelStrategy: {"loss": Loss, "labels": LabelSource},
    Variant: {"loss_override": Loss},
}
_OPTIONAL_CHOICES = {(Variant, "loss_override")}
# Keys of a [nets.<name>] table besides the NetSpec fields: the builders' parameters.
NET_PARAM_KEYS = frozenset({"channels", "kernel", "stride", "padding", "pools", "norm"})
_NET_KEYS = frozenset({"description", "teacher_architecture", "dropout"})
_TOP_LEVEL = ("protocol", "sampling", "datasets", "tracks", "trainer", "label_strategies",
              "variants", "nets", "teacher_recipes", "archive")
_PROTOCOL_KEYS = frozenset({"version", "name", "frozen"})
_TRACK_KEYS = frozenset({"official_ipc", "official_frames", "temporal_frames",
                         "equal_frame_grid", "temporal_formations"})


class _Reader:
    """Reads the parsed TOML of one file, refusing what the protocol does not define.

    A key the objects have no field for used to vanish silently; a misspelt key in a future
    version must stop the load instead, with one line naming the key and its table."""

    def __init__(self, source: str):
        self.source = source

    def refuse(self, where: str, detail: str) -> VdcError:
        return VdcError(f"protocol {self.source}: {detail} in [{where}]" if where
                        else f"protocol {self.source}: {detail}")

    def table(self, raw: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
        path = f"{where}.{key}" if where else key
        if key not in raw:
            raise self.refuse(where, f"missing table {path!r}")
        value = raw[key]
        if not isinstance(value, Mapping):
            raise self.refuse(where, f"{key!r} must be a table")
        return value

    def keys(self, table: Mapping[str, Any], where: str, allowed: frozenset[str],
             required: frozenset[str] = frozenset()) -> None:
        for key in table:
            if key not in allowed:
                raise self.refuse(where, f"unknown key {key!r}")
        missing = sorted(required - set(table))
        if missing:
            raise self.refuse(where, f"missing key {missing[0]!r}")

    def build(self, cls: type, name: str | None, table: Mapping[str, Any], where: str,
              **extra: Any) -> Any:
        fields = cls.__dataclass_fields__
        settable = frozenset(fields) - {"name"} if name is not None else frozenset(fields)
        required = frozenset(k for k, f in fields.items()
                             if f.default is dataclasses.MISSING and k not in extra
                             and k in settable)
        self.keys(table, where, settable, required)
        values = {k: _tuple(v) for k, v in table.items() if k not in extra}
        for key, choice in _CHOICES.get(cls, {}).items():
            if key not in values:
                continue
            if (cls, key) in _OPTIONAL_CHOICES and values[key] == "":
                values[key] = None
            else:
                values[key] = choice.parse(values[key], f"protocol {self.source}: [{where}] {key}")
        if name is not None:
            values["name"] = name
        values.update(extra)
        return cls(**values)

    def named(self, cls: type, raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        """``[key.<name>]`` tables as ``cls`` objects by name."""
        tables = self.table(raw, key, "")
        return MappingProxyType({n: self.build(cls, n, self.table(tables, n, key), f"{key}.{n}")
                                 for n in tables})

    def dataset(self, name: str, table: Mapping[str, Any], where: str) -> Dataset:
        generator = table.get("generator")
        spec = (self.build(GeneratorSpec, None, self.table(table, "generator", where),
                           f"{where}.generator") if generator is not None else None)
        return self.build(Dataset, name, table, where, generator=spec)

    def net(self, name: str, table: Mapping[str, Any], where: str) -> NetSpec:
        self.keys(table, where, _NET_KEYS | NET_PARAM_KEYS, _NET_KEYS)
        params = {k: _tuple(v) for k, v in table.items() if k not in _NET_KEYS}
        return NetSpec(name=name, description=table["description"],
                       teacher_architecture=table["teacher_architecture"],
                       dropout=table["dropout"], params=MappingProxyType(params))


def _from_toml(raw: dict[str, Any], source: str = "(in memory)") -> Protocol:
    r = _Reader(source)
    r.keys(raw, "", frozenset(_TOP_LEVEL), frozenset(_TOP_LEVEL))
    header = r.table(raw, "protocol", "")
    r.keys(header, "protocol", _PROTOCOL_KEYS, frozenset({"version", "name"}))
    tracks = r.table(raw, "tracks", "")
    r.keys(tracks, "tracks", _TRACK_KEYS, _TRACK_KEYS)
    datasets = {n: r.dataset(n, r.table(raw["datasets"], n, "datasets"), f"datasets.{n}")
                for n in r.table(raw, "datasets", "")}
    nets = {n: r.net(n, r.table(raw["nets"], n, "nets"), f"nets.{n}")
            for n in r.table(raw, "nets", "")}
    return Protocol(
        version=header["version"],
        name=header["name"],
        sha256=canonical_sha256(raw),
        sampling=r.build(Sampling, None, r.table(raw, "sampling", ""), "sampling"),
        datasets=MappingProxyType(datasets),
        official_ipc=tuple(tracks["official_ipc"]),
        official_frames=tracks["official_frames"],
        temporal_frames=tuple(tracks["temporal_frames"]),
        equal_frame_grid=_tuple(tracks["equal_frame_grid"]),
        temporal_formations=tuple(tracks["temporal_formations"]),
        trainer=r.build(TrainerRecipe, None, r.table(raw, "trainer", ""), "trainer"),
        label_strategies=r.named(LabelStrategy, raw, "label_strategies"),
        variants=r.named(Variant, raw, "variants"),
        nets=MappingProxyType(nets),
        teacher_recipes=r.named(TeacherRecipe, raw, "teacher_recipes"),
        archive=r.build(ArchiveLimits, None, r.table(raw, "archive", ""), "archive"),
    )


def available_versions(directory: Path = PROTOCOL_DIR) -> list[int]:
    return sorted(int(p.stem[1:]) for p in directory.glob("v*.toml") if p.stem[1:].isdigit())


def load_protocol(version: int = LATEST_VERSION, directory: Path = PROTOCOL_DIR) -> Protocol:
    """The protocol of ``version``; one shared object per (version, directory)."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise VdcError(f"unknown protocol version {version!r} (versions are integers)")
    return _load_protocol(version, Path(directory).resolve())


@functools.lru_cache(maxsize=None)
def _load_protocol(version: int, directory: Path) -> Protocol:
    path = directory / f"v{version}.toml"
    if not path.is_file():
        known = ", ".join(str(v) for v in available_versions(directory)) or "none"
        raise VdcError(f"unknown protocol version {version!r} (known: {known})")
    with path.open("rb") as fh:
        protocol = _from_toml(tomllib.load(fh), source=str(path))
    studies = tuple(s for s in load_study_tracks(directory).values()
                    if protocol.version in s.protocol_versions)
    return dataclasses.replace(protocol, study_tracks=studies)
