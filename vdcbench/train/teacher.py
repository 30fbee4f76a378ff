"""Protocol teachers: trained on a data set's full train split, cached by protocol hash.

A teacher is the "full data set" row of every table, the label provider of soft and multi-sl
evaluation, and the scorer of RDED. It is stored as safetensors with a JSON sidecar (recipe,
data-set hash, validation accuracy, sha256 of the weights file). Teachers shipped with vdcbench
live in ``vdcbench/shipped/teachers`` and are found after the user's cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vdcbench.core.version import __version__
from vdcbench.core.artifacts import ArtifactStore
from vdcbench.core.atomic_file import atomic_path, write_json_atomic
from vdcbench.data.splits import (VideoSplit, class_members, dataset_sha256, open_split,
                                  validation_clips)
from vdcbench.core.errors import VdcError
from vdcbench.core.json_values import load_json_strict, plain_json
from vdcbench.core.paths import teacher_resume_dir, teachers_dir
from vdcbench.models import build_net
from vdcbench.models.flops import net_cost, training_gflops
from vdcbench.protocol import Dataset, Loss, Optimizer, Protocol, TeacherRecipe
from vdcbench.core.randomness import STREAM_INIT, torch_seed
from vdcbench.train.checkpoint import FitCheckpoint
from vdcbench.train.sources import VideoWindows
from vdcbench.train.trainer import FitConfig, Trainer

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "shipped" / "teachers"
SIDECAR_KIND = "vdcbench-teacher"


@dataclass(frozen=True)
class TeacherSidecar:
    """The JSON beside a teacher's weights: what it was trained on, how, and how well.

    ``recipe`` and ``versions`` stay mappings: they record what ran, as written then (a recipe
    from an older vdcbench may lack a field today's ``TeacherRecipe`` has), and only ever go back
    to JSON. A field that is None is absent from the JSON: ``sha256`` (of the weights file) for
    a teacher that was not saved, ``videos_per_class`` unless the run was shrunk, and the compute
    figures in sidecars written before vdcbench measured them (the shipped teacher's).
    """

    net: str
    dataset: str
    dataset_sha256: str
    protocol_version: int
    protocol_sha256: str
    recipe: Mapping[str, Any]
    epochs_run: int
    shuffle_frames: bool
    val_top1: float
    val_top5: float
    train_iterations: int
    wall_seconds: float
    device: str
    versions: Mapping[str, str]
    net_gflops_forward: float | None = None
    train_gflops: float | None = None
    videos_per_class: int | None = None
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "kind": SIDECAR_KIND, "net": self.net, "dataset": self.dataset,
            "dataset_sha256": self.dataset_sha256,
            "protocol": {"version": self.protocol_version, "sha256": self.protocol_sha256},
            "recipe": plain_json(self.recipe), "epochs_run": self.epochs_run,
            "shuffle_frames": self.shuffle_frames, "val_top1": self.val_top1,
            "val_top5": self.val_top5, "train_iterations": self.train_iterations,
            "wall_seconds": self.wall_seconds, "device": self.device,
            "versions": dict(self.versions),
        }
        for key in _OPTIONAL_KEYS:
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *,
                  source: str = "teacher sidecar") -> "TeacherSidecar":
        """The sidecar in ``data``; a ``VdcError`` naming ``source`` for any other shape."""
        if not isinstance(data, Mapping) or data.get("kind") != SIDECAR_KIND:
            raise VdcError(f"{source} is not a vdcbench teacher sidecar")
        fields = {f.name for f in dataclasses.fields(cls)} - {"protocol_version", "protocol_sha256"}
        known = fields | {"kind", "protocol"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise VdcError(f"{source} has unknown key {unknown[0]!r}")
        missing = sorted((known - set(_OPTIONAL_KEYS)) - set(data))
        protocol = data.get("protocol")
        if missing or not isinstance(protocol, Mapping) or set(protocol) != {"version", "sha256"}:
            what = repr(missing[0]) if missing else "'protocol' (version and sha256)"
            raise VdcError(f"{source} lacks key {what}")
        values = {k: data[k] for k in fields if k in data}
        values["recipe"] = MappingProxyType(dict(data["recipe"]))
        values["versions"] = MappingProxyType(dict(data["versions"]))
        return cls(protocol_version=protocol["version"], protocol_sha256=protocol["sha256"],
                   **values)


_OPTIONAL_KEYS = ("net_gflops_forward", "train_gflops", "videos_per_class", "sha256")


@dataclass(frozen=True)
class Teacher:
    net: nn.Module
    net_name: str
    dataset: str
    sha256: str          # of the safetensors file
    sidecar: TeacherSidecar
    path: Path


def teacher_filename(protocol: Protocol, dataset: str, net: str) -> str:
    return f"{dataset}-{net}-p{protocol.short_hash}"


def teacher_dirs() -> list[Path]:
    return [teachers_dir(), SHIPPED_DIR]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_teacher(protocol: Protocol, dataset: str, net: str) -> Path | None:
    name = teacher_filename(protocol, dataset, net)
    for folder in teacher_dirs():
        if (folder / f"{name}.safetensors").is_file() and (folder / f"{name}.json").is_file():
            return folder / f"{name}.safetensors"
    return None


def teacher_sidecar(path: Path) -> TeacherSidecar:
    """The JSON sidecar of the teacher weights at ``path`` (as ``find_teacher`` returns it)."""
    sidecar_path = path.with_suffix(".json")
    source = f"teacher sidecar {sidecar_path}"
    return TeacherSidecar.from_dict(load_json_strict(sidecar_path.read_bytes(), source),
                                    source=source)


def load_teacher(protocol: Protocol, dataset: Dataset, net: str, device: str = "cpu") -> Teacher:
    path = find_teacher(protocol, dataset.name, net)
    if path is None:
        raise VdcError(f"no {net} teacher for {dataset.name!r} under protocol "
                       f"v{protocol.version} ({protocol.short_hash}); train it with "
                       f"`vdcbench teacher train --dataset {dataset.name} --net {net}` (or pass "
                       f"--train-teacher to run-baseline)")
    sidecar = teacher_sidecar(path)
    sha = file_sha256(path)
    if sidecar.sha256 != sha:
        raise VdcError(f"teacher {path} does not match the sha256 in its sidecar; retrain it")
    model = build_net(protocol.net(net), dataset.num_classes)
    model.load_state_dict(load_file(str(path)))
    model.to(device).eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return Teacher(net=model, net_name=net, dataset=dataset.name, sha256=sha, sidecar=sidecar,
                   path=path)


def teacher_resume_store() -> "ArtifactStore":
    """Where an interrupted teacher training keeps its per-epoch state (in the cache)."""
    return ArtifactStore(teacher_resume_dir())


def teacher_fit_config(protocol: Protocol, dataset: Dataset, recipe: TeacherRecipe,
                       epochs: int | None = None) -> FitConfig:
    return FitConfig(
        epochs=epochs or recipe.epochs, batch_size=recipe.batch_size, optimizer=Optimizer.SGD,
        lr=recipe.lr, lr_factor=recipe.lr_factor, momentum=recipe.momentum,
        weight_decay=recipe.weight_decay, weight_decay_min_ndim=0, grad_clip=recipe.grad_clip,
        crop_size=dataset.crop, crop_scale=recipe.crop_scale,
        crop_ratio=protocol.trainer.crop_ratio, hflip=dataset.hflip,
        mean=protocol.trainer.normalize_mean, std=protocol.trainer.normalize_std, loss=Loss.CE,
    )


def train_teacher(protocol: Protocol, dataset: Dataset, net: str = "minic3d", *,
                  recipe: TeacherRecipe | None = None, epochs: int | None = None,
                  shuffle_frames: bool = False, device: str = "cpu", progress=None,
                  output_dir: Path | None = None, save: bool = True,
                  videos_per_class: int | None = None,
                  resume_store: ArtifactStore | None = None) -> tuple[TeacherSidecar, nn.Module]:
    """Train a teacher on the full train split; return its sidecar (and save it when ``save``).

    ``epochs`` shortens the recipe and ``videos_per_class`` keeps the first videos of each class
    of both splits (tests and cost estimates only: such a teacher is never the protocol's);
    ``shuffle_frames`` is the temporal-order control; none of them is saved as the protocol
    teacher. With a ``resume_store`` the training is checkpointed there after every epoch and a
    stopped run resumes where it left off (a ResNet teacher takes hours on a CPU).
    """
    recipe = recipe or protocol.teacher_recipe(dataset, net)
    config = teacher_fit_config(protocol, dataset, recipe, epochs)
    train, val = open_split(dataset, "train"), open_split(dataset, "val")
    if videos_per_class is not None:
        train, val = (_first_per_class(s, videos_per_class) for s in (train, val))
    intervals = np.array([train.interval(v, protocol.sampling) for v in range(len(train))],
                         dtype=np.int64)
    source = VideoWindows(train, train.labels, protocol.sampling.frames, intervals,
                          shuffle_frames=shuffle_frames)
    validation = validation_clips(protocol, val,
                                  shuffle_frames_seed=recipe.seed if shuffle_frames else None)
    torch.manual_seed(torch_seed(recipe.seed, STREAM_INIT))
    model = build_net(protocol.net(net), dataset.num_classes)
    trainer = Trainer(model, config, source, seed=recipe.seed, device=device)
    data_sha256 = dataset_sha256(dataset)
    checkpoint = None
    if resume_store is not None:
        run = (f"{dataset.name}-{net}-p{protocol.short_hash}-e{config.epochs}-s{recipe.seed}"
               f"{'-shuffled' if shuffle_frames else ''}"
               f"{f'-vpc{videos_per_class}' if videos_per_class is not None else ''}")
        checkpoint = FitCheckpoint(resume_store, f"teacher-{run}-d{data_sha256[:12]}")
    result = trainer.fit(validation, progress=progress, checkpoint=checkpoint)
    cost = net_cost(protocol.net(net), dataset.num_classes, protocol.sampling.frames, dataset.crop)
    sidecar = TeacherSidecar(
        net=net, dataset=dataset.name, dataset_sha256=data_sha256,
        protocol_version=protocol.version, protocol_sha256=protocol.sha256,
        recipe=MappingProxyType(dataclasses.asdict(recipe)), epochs_run=config.epochs,
        shuffle_frames=shuffle_frames, val_top1=result.final.top1, val_top5=result.final.top5,
        train_iterations=result.iterations,
        net_gflops_forward=round(cost.forward_gflops, 6),
        train_gflops=round(training_gflops(cost, result.clips), 1),
        wall_seconds=round(result.wall_seconds, 1), device=str(trainer.device),
        versions=MappingProxyType({"vdcbench": __version__, "torch": torch.__version__,
                                   "python": platform.python_version()}),
        videos_per_class=videos_per_class)
    is_protocol_teacher = (config.epochs == recipe.epochs and not shuffle_frames
                           and videos_per_class is None
                           and recipe is protocol.teacher_recipe(dataset, net))
    if save and is_protocol_teacher:
        folder = output_dir or teachers_dir()
        sha = _save_teacher(model, sidecar, folder, teacher_filename(protocol, dataset.name, net))
        sidecar = dataclasses.replace(sidecar, sha256=sha)
    if checkpoint is not None:
        checkpoint.clear()
    return sidecar, model


def _first_per_class(split: VideoSplit, k: int) -> VideoSplit:
    """The first ``k`` videos of every class of an in-memory split: the tiny smoke preset."""
    if k < 1:
        raise VdcError(f"videos per class must be at least 1, not {k}")
    keep = np.concatenate([class_members(split, label, k, f"{k} videos per class")[:k]
                           for label in range(split.num_classes)])
    try:
        videos = split.videos[torch.from_numpy(keep)]
    except AttributeError:
        raise VdcError(f"videos per class needs an in-memory split; the {split.dataset.name!r} "
                       f"{split.split} split is read from its frame store") from None
    return VideoSplit.from_tensor(split.dataset, split.split, videos,
                                  split.labels[torch.from_numpy(keep)], split.class_names)


def _save_teacher(model: nn.Module, sidecar: TeacherSidecar, folder: Path, name: str) -> str:
    """Save the weights and the sidecar (naming their hash); the weights' sha256."""
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(folder / f"{name}.safetensors") as tmp:
        save_file(weights, str(tmp), metadata={"net": sidecar.net, "dataset": sidecar.dataset})
        sha = file_sha256(tmp)
    # Written once the weights are in place, since it names their hash.
    write_json_atomic(folder / f"{name}.json", dataclasses.replace(sidecar, sha256=sha).to_dict())
    return sha
