"""Protocol teachers: trained on a data set's full train split, cached by protocol hash.

A teacher is the "full data set" row of every table, the label provider of soft and multi-sl
evaluation, and the scorer of RDED. It is stored as safetensors with a JSON sidecar (recipe,
data-set hash, validation accuracy, sha256 of the weights file). Teachers shipped with vdcbench
live in ``vdcbench/shipped/teachers`` and are found after the user's cache.

Besides the protocol teacher, a teacher may be trained and saved under a declared teacher profile
(``protocol/teacher-profiles.toml``, e.g. ``cpu``: fewer epochs a CPU can afford). Its file name
and its sidecar carry the profile's name and hash, it is found only when that profile is asked
for, and whatever it labels or scores says so; it is never taken for the protocol teacher.
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
from vdcbench.protocol import (PROTOCOL_PROFILE, Dataset, Loss, Optimizer, Protocol,
                               TeacherProfile, TeacherRecipe, load_teacher_profiles)
from vdcbench.core.randomness import STREAM_INIT, torch_seed
from vdcbench.train.checkpoint import FitCheckpoint
from vdcbench.train.distributed import current_world
from vdcbench.train.interrupt import StopRequest
from vdcbench.train.sources import VideoWindows
from vdcbench.train.trainer import FitConfig, StepProgress, Trainer

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "shipped" / "teachers"
SIDECAR_KIND = "vdcbench-teacher"


@dataclass(frozen=True)
class TeacherSidecar:
    """The JSON beside a teacher's weights: what it was trained on, how, and how well.

    ``recipe`` and ``versions`` stay mappings: they record what ran, as written then (a recipe
    from an older vdcbench may lack a field today's ``TeacherRecipe`` has), and only ever go back
    to JSON. A field that is None is absent from the JSON: ``sha256`` (of the weights file) for
    a teacher that was not saved, ``videos_per_class`` unless the run was shrunk, and the compute
    figures in sidecars written before vdcbench measured them (the shipped teacher's), and
    ``profile`` (the teacher profile's name and sha256) for a protocol teacher, and
    ``world_size`` (the processes a data-parallel training ran on) for one that ran in one.
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
    profile: Mapping[str, str] | None = None
    world_size: int | None = None

    @property
    def profile_name(self) -> str:
        """The teacher profile it was trained under; ``protocol`` for the protocol recipe."""
        return self.profile["name"] if self.profile is not None else PROTOCOL_PROFILE

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
        if self.profile is not None:
            out["profile"] = dict(self.profile)
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
        missing = sorted((known - set(_OPTIONAL_KEYS) - set(_OPTIONAL_MAPPINGS)) - set(data))
        protocol = data.get("protocol")
        if missing or not isinstance(protocol, Mapping) or set(protocol) != {"version", "sha256"}:
            what = repr(missing[0]) if missing else "'protocol' (version and sha256)"
            raise VdcError(f"{source} lacks key {what}")
        values = {k: data[k] for k in fields if k in data}
        values["recipe"] = MappingProxyType(dict(data["recipe"]))
        values["versions"] = MappingProxyType(dict(data["versions"]))
        if "profile" in data:
            profile = data["profile"]
            if (not isinstance(profile, Mapping) or set(profile) != {"name", "sha256"}
                    or not all(isinstance(v, str) for v in profile.values())):
                raise VdcError(f"{source} has a 'profile' that is not its name and sha256")
            values["profile"] = MappingProxyType(dict(profile))
        return cls(protocol_version=protocol["version"], protocol_sha256=protocol["sha256"],
                   **values)


_OPTIONAL_KEYS = ("net_gflops_forward", "train_gflops", "videos_per_class", "sha256",
                  "world_size")
_OPTIONAL_MAPPINGS = ("profile",)


@dataclass(frozen=True)
class Teacher:
    net: nn.Module
    net_name: str
    dataset: str
    sha256: str          # of the safetensors file
    sidecar: TeacherSidecar
    path: Path
    profile: TeacherProfile | None = None    # None: the protocol teacher

    @property
    def profile_name(self) -> str:
        return self.profile.name if self.profile is not None else PROTOCOL_PROFILE


def teacher_filename(protocol: Protocol, dataset: str, net: str,
                     profile: TeacherProfile | None = None) -> str:
    """``<data set>-<net>-p<protocol hash>``, and ``-<profile>-<profile hash>`` for a profile's."""
    name = f"{dataset}-{net}-p{protocol.short_hash}"
    return name if profile is None else f"{name}-{profile.label}"


def teacher_dirs() -> list[Path]:
    return [teachers_dir(), SHIPPED_DIR]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_teacher(protocol: Protocol, dataset: str, net: str,
                 profile: TeacherProfile | None = None) -> Path | None:
    """The saved teacher of ``net`` on ``dataset`` under ``profile`` (None: the protocol's)."""
    name = teacher_filename(protocol, dataset, net, profile)
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


def saved_profiles(protocol: Protocol, dataset: str, net: str) -> tuple[str, ...]:
    """The declared profiles (protocol first) with a saved teacher of ``net`` on ``dataset``."""
    found = (PROTOCOL_PROFILE,) if find_teacher(protocol, dataset, net) is not None else ()
    return found + tuple(name for name, profile in load_teacher_profiles().items()
                         if protocol.version in profile.protocol_versions
                         and find_teacher(protocol, dataset, net, profile) is not None)


def _missing_teacher(protocol: Protocol, dataset: Dataset, net: str,
                     profile: TeacherProfile | None) -> VdcError:
    which = "protocol" if profile is None else f"{profile.name!r}-profile"
    train = (f"vdcbench teacher train --dataset {dataset.name} --net {net}"
             + ("" if profile is None else f" --profile {profile.name}"))
    others = [p for p in saved_profiles(protocol, dataset.name, net)
              if p != (PROTOCOL_PROFILE if profile is None else profile.name)]
    hint = (f"; a teacher of profile {others[0]!r} is saved: choose it with "
            f"teacher_profile={others[0]} (results made with it say so)" if others else "")
    return VdcError(f"no {which} {net} teacher for {dataset.name!r} under protocol "
                    f"v{protocol.version} ({protocol.short_hash}); train it with `{train}` (or "
                    f"pass --train-teacher to run-baseline){hint}")


def load_teacher(protocol: Protocol, dataset: Dataset, net: str, device: str = "cpu",
                 profile: TeacherProfile | None = None) -> Teacher:
    """The saved teacher of ``net`` under ``profile`` (None: the protocol teacher), in eval mode
    with frozen parameters; a one-line ``VdcError`` naming the command that trains it."""
    path = find_teacher(protocol, dataset.name, net, profile)
    if path is None:
        raise _missing_teacher(protocol, dataset, net, profile)
    sidecar = teacher_sidecar(path)
    sha = file_sha256(path)
    if sidecar.sha256 != sha:
        raise VdcError(f"teacher {path} does not match the sha256 in its sidecar; retrain it")
    expected = None if profile is None else profile.identity()
    if (None if sidecar.profile is None else dict(sidecar.profile)) != expected:
        raise VdcError(f"teacher {path} names teacher profile {sidecar.profile_name!r} in its "
                       f"sidecar, not {PROTOCOL_PROFILE if profile is None else profile.name!r} "
                       f"(of this hash); retrain it")
    model = build_net(protocol.net(net), dataset.num_classes)
    model.load_state_dict(load_file(str(path)))
    model.to(device).eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return Teacher(net=model, net_name=net, dataset=dataset.name, sha256=sha, sidecar=sidecar,
                   path=path, profile=profile)


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


def teacher_recipe_for(protocol: Protocol, dataset: Dataset, net: str,
                       profile: TeacherProfile | None = None) -> TeacherRecipe:
    """The recipe a teacher of ``net`` is trained under: the protocol's, or ``profile``'s."""
    if profile is None:
        return protocol.teacher_recipe(dataset, net)
    return profile.recipe(protocol, dataset, net)


def train_teacher(protocol: Protocol, dataset: Dataset, net: str = "minic3d", *,
                  recipe: TeacherRecipe | None = None, epochs: int | None = None,
                  shuffle_frames: bool = False, device: str = "cpu", progress=None,
                  output_dir: Path | None = None, save: bool = True,
                  videos_per_class: int | None = None,
                  resume_store: ArtifactStore | None = None,
                  profile: TeacherProfile | None = None,
                  on_step: StepProgress | None = None,
                  stop: StopRequest | None = None) -> tuple[TeacherSidecar, nn.Module]:
    """Train a teacher on the full train split; return its sidecar (and save it when ``save``).

    The recipe is the protocol's, or the declared ``profile``'s (saved under the profile's name
    and hash, never as the protocol teacher). ``epochs`` shortens the recipe and
    ``videos_per_class`` keeps the first videos of each class of both splits (tests and cost
    estimates only: such a teacher is never saved); ``shuffle_frames`` is the temporal-order
    control; a ``recipe`` other than the declared one is not saved either. With a
    ``resume_store`` the training is checkpointed there after every epoch and a stopped run
    resumes where it left off (a ResNet teacher takes hours on a CPU). ``progress`` hears of each
    epoch, ``on_step`` of each step; a requested ``stop`` ends the fit after the step in progress
    (``FitInterrupted``), its finished epochs kept in the resume store.

    Launched by torchrun (a process group joined), the training is data-parallel over its
    processes (see ``trainer``): every process returns the sidecar and the net, rank 0 alone
    saves the teacher and clears the resume state, and the sidecar says how many ran.
    """
    declared = teacher_recipe_for(protocol, dataset, net, profile)
    recipe = recipe or declared
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
    world = current_world()
    trainer = Trainer(model, config, source, seed=recipe.seed, device=device, world=world)
    data_sha256 = dataset_sha256(dataset)
    checkpoint = None
    if resume_store is not None:
        run = (f"{dataset.name}-{net}-p{protocol.short_hash}-e{config.epochs}-s{recipe.seed}"
               f"{'' if profile is None else '-' + profile.label}"
               f"{'' if recipe == declared else '-r' + _recipe_hash(recipe)}"
               f"{'-shuffled' if shuffle_frames else ''}"
               f"{f'-vpc{videos_per_class}' if videos_per_class is not None else ''}")
        checkpoint = FitCheckpoint(resume_store, f"teacher-{run}-d{data_sha256[:12]}")
    result = trainer.fit(validation, progress=progress, checkpoint=checkpoint, on_step=on_step,
                         stop=stop)
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
        videos_per_class=videos_per_class,
        profile=None if profile is None else MappingProxyType(profile.identity()),
        world_size=world.size if world.parallel else None)
    is_declared_teacher = (config.epochs == recipe.epochs and not shuffle_frames
                           and videos_per_class is None and recipe == declared)
    if save and is_declared_teacher and world.is_writer:
        folder = output_dir or teachers_dir()
        sha = _save_teacher(model, sidecar, folder,
                            teacher_filename(protocol, dataset.name, net, profile))
        sidecar = dataclasses.replace(sidecar, sha256=sha)
    if checkpoint is not None and world.is_writer:
        checkpoint.clear()
    return sidecar, model


def _recipe_hash(recipe: TeacherRecipe) -> str:
    # A hand-made recipe (experiments) must not resume from, or into, the declared one's state.
    text = repr(sorted(dataclasses.asdict(recipe).items()))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class TeacherCost:
    """What training a teacher will take: clips to train on, and seconds at a measured rate."""

    recipe: TeacherRecipe
    train_videos: int
    clips: int                      # epochs x train videos: one clip per video per epoch
    seconds_per_clip: float         # measured on this machine (forward, backward, update)

    @property
    def seconds(self) -> float:
        """Training alone; validation and start-up add a little."""
        return self.clips * self.seconds_per_clip


def measure_clip_seconds(protocol: Protocol, dataset: Dataset, net: str = "minic3d",
                         device: str = "cpu", clips: int = 4, repeats: int = 2) -> float:
    """Seconds one training clip of ``net`` costs here: the best of ``repeats`` timed SGD steps on
    ``clips`` random clips at the data set's crop (after one untimed warm-up step)."""
    import time
    torch_device = torch.device(device)
    generator = torch.Generator().manual_seed(0)
    model = build_net(protocol.net(net), max(2, dataset.num_classes)).to(torch_device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    inputs = torch.randn(clips, 3, protocol.sampling.frames, dataset.crop, dataset.crop,
                         generator=generator).to(torch_device)
    labels = torch.zeros(clips, dtype=torch.int64, device=torch_device)
    best = float("inf")
    for attempt in range(repeats + 1):
        started = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if torch_device.type == "cuda":
            torch.cuda.synchronize(torch_device)
        if attempt:          # the first step pays for allocation and kernel selection
            best = min(best, time.perf_counter() - started)
    return best / clips


def teacher_cost(protocol: Protocol, dataset: Dataset, net: str = "minic3d",
                 profile: TeacherProfile | None = None,
                 seconds_per_clip: float | None = None, device: str = "cpu") -> TeacherCost:
    """The cost of training the teacher of ``net`` on ``dataset`` under ``profile`` (None: the
    protocol recipe), at ``seconds_per_clip`` (measured here when not given)."""
    recipe = teacher_recipe_for(protocol, dataset, net, profile)
    videos = len(open_split(dataset, "train"))
    if seconds_per_clip is None:
        seconds_per_clip = measure_clip_seconds(protocol, dataset, net, device)
    return TeacherCost(recipe=recipe, train_videos=videos, clips=recipe.epochs * videos,
                       seconds_per_clip=seconds_per_clip)


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
