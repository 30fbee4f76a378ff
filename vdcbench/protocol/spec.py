"""The frozen protocol, loaded from ``protocol/v<N>.toml`` into immutable objects.

Nothing else in vdcbench reads the TOML. A protocol is identified by its version and by the
sha256 of its parsed content in canonical JSON (sorted keys, no whitespace), so comments may be
edited but no value may change without changing the hash; ``tests/test_protocol.py`` pins it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from vdcbench.core.errors import NotBuiltError, UnknownNameError, VdcError

# A source checkout (or editable install) reads the repository's top-level protocol/; a wheel
# carries the same files as the vdcbench._protocol package data.
_SOURCE_DIR = Path(__file__).resolve().parents[2] / "protocol"
PROTOCOL_DIR = _SOURCE_DIR if (_SOURCE_DIR / "v1.toml").is_file() else Path(__file__).resolve().parents[1] / "_protocol"
LATEST_VERSION = 1
_TRACK_ID = re.compile(r"^ipc(\d+)-t(\d+)$")


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

    optimizer: str
    lr: float
    betas: tuple[float, float]
    weight_decay: float
    weight_decay_min_ndim: int
    epochs: int
    schedule: str
    batch_size: str
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
        if self.schedule != "half-cosine":
            raise NotBuiltError(f"schedule {self.schedule!r}")
        if epoch > self.epochs:
            return 0.0
        return 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs / 2.0))

    def batch_size_for(self, dataset: Dataset, ipc: int) -> int:
        if self.batch_size != "base_times_ipc":
            raise NotBuiltError(f"batch-size rule {self.batch_size!r}")
        return dataset.base_batch_size * ipc


@dataclass(frozen=True)
class LabelStrategy:
    name: str
    loss: str
    labels: str
    gamma: float = 0.0


@dataclass(frozen=True)
class Variant:
    """An evaluation variant. Only ``official`` produces the figure that is ranked."""

    name: str
    cutmix: bool
    loss_override: str
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
        if parsed is None or track_id not in self.track_ids(include_temporal=True):
            raise UnknownNameError("track", track_id, self.track_ids(include_temporal=True))
        ipc, frames = parsed
        official = ipc in self.official_ipc and frames == self.official_frames
        return Track(dataset=ds, ipc=ipc, frames=frames, official=official)

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


def _build(cls: type, name: str | None, table: Mapping[str, Any], **extra: Any) -> Any:
    fields = {k: _tuple(v) for k, v in table.items() if k in cls.__dataclass_fields__}
    if name is not None:
        fields["name"] = name
    fields.update(extra)
    return cls(**fields)


def _from_toml(raw: dict[str, Any]) -> Protocol:
    datasets = {}
    for name, table in raw["datasets"].items():
        generator = table.get("generator")
        datasets[name] = _build(
            Dataset, name, table,
            generator=_build(GeneratorSpec, None, generator) if generator else None,
        )
    nets = {}
    for name, table in raw["nets"].items():
        params = {k: _tuple(v) for k, v in table.items()
                  if k not in ("description", "teacher_architecture", "dropout")}
        nets[name] = NetSpec(name=name, description=table["description"],
                             teacher_architecture=table["teacher_architecture"],
                             dropout=table["dropout"], params=MappingProxyType(params))
    tracks = raw["tracks"]
    return Protocol(
        version=raw["protocol"]["version"],
        name=raw["protocol"]["name"],
        sha256=canonical_sha256(raw),
        sampling=_build(Sampling, None, raw["sampling"]),
        datasets=MappingProxyType(datasets),
        official_ipc=tuple(tracks["official_ipc"]),
        official_frames=tracks["official_frames"],
        temporal_frames=tuple(tracks["temporal_frames"]),
        equal_frame_grid=_tuple(tracks["equal_frame_grid"]),
        temporal_formations=tuple(tracks["temporal_formations"]),
        trainer=_build(TrainerRecipe, None, raw["trainer"]),
        label_strategies=MappingProxyType(
            {n: _build(LabelStrategy, n, t) for n, t in raw["label_strategies"].items()}),
        variants=MappingProxyType({n: _build(Variant, n, t) for n, t in raw["variants"].items()}),
        nets=MappingProxyType(nets),
        teacher_recipes=MappingProxyType(
            {n: _build(TeacherRecipe, n, t) for n, t in raw["teacher_recipes"].items()}),
        archive=_build(ArchiveLimits, None, raw["archive"]),
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
        return _from_toml(tomllib.load(fh))
