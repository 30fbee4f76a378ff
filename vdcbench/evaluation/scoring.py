"""Scoring a condensed set under the protocol: one trained student per seed, one record per seed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from vdcbench.core import paths
from vdcbench.core.artifacts import ArtifactStore
from vdcbench.core.version import __version__
from vdcbench.archive import LoadedArchive
from vdcbench.data.splits import dataset_sha256, open_split, validation_clips
from vdcbench.core.errors import VdcError
from vdcbench.core.locks import exclusive
from vdcbench.models import build_net
from vdcbench.models.flops import NetCost, net_cost, training_gflops
from vdcbench.protocol import PROTOCOL_PROFILE, Protocol, TeacherProfile, teacher_profile
from vdcbench.evaluation.machine import this_machine
# Re-exported: callers import the net choice from here too.
from vdcbench.evaluation.net_choice import (ALL_NETS, EVERY_NET,  # noqa: F401
                                            evaluation_nets, parse_nets)
from vdcbench.evaluation.records import (EvalRecord, RecordedMethod, RecordKey,
                                         RuntimeVersions, find_record, join_profile)
from vdcbench.train.teacher import load_teacher
from vdcbench.core.randomness import STREAM_INIT, torch_seed
from vdcbench.train.checkpoint import FitCheckpoint
from vdcbench.train.formation import NONE, Formation, track_formation
from vdcbench.train.sources import StoredClips
from vdcbench.train.trainer import FitConfig, Trainer, ValidationClips

SeedProgress = Callable[[int, int, int, float], None]   # (seed, epoch, epochs, loss)

# A seed in progress is checkpointed at most this many epochs apart (the protocol's 300-epoch
# schedule: every 10 epochs), at least ten times in a schedule of 10 epochs or more, and after
# every epoch of a shorter one (smoke runs and tests). Saving
# writes the net and the optimiser state (for a ResNet-18 student about 0.4 GB): cheap once per
# ten epochs, not once per epoch, while a stop loses at most ten epochs.
RESUME_EVERY_EPOCHS = 10


def resume_interval(epochs: int) -> int:
    """Epochs between an evaluation seed's checkpoints (the last epoch is always saved)."""
    return max(1, min(RESUME_EVERY_EPOCHS, epochs // 10))


def resume_store() -> ArtifactStore:
    """Where evaluation seeds in progress keep their resume state (under the cache)."""
    return ArtifactStore(paths.evaluation_resume_dir())


def resume_key(key: RecordKey) -> str:
    """An artifact key naming the record identity in full (a hash: the store's keys are short)."""
    fields = dataclasses.asdict(key)
    # Keys from before teacher profiles and formations hash as they did: their checkpoints
    # still resume.
    for later in ("teacher_profile", "formation"):
        if fields[later] is None:
            del fields[later]
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return f"eval-{hashlib.sha256(text.encode()).hexdigest()}"


@dataclass(frozen=True)
class EvalSettings:
    """How to evaluate: the protocol's choices, plus what a user may pick per run."""

    seeds: tuple[int, ...] = (0,)   # what ``evaluate_archive`` runs; one Evaluation scores any seed
    net: str = "minic3d"
    variant: str = "official"
    device: str = "cpu"
    epochs: int | None = None   # a shortened schedule: tests and smoke runs only, never official
    # The teacher profile of the multi-sl teacher: None takes the archive's (the profile its
    # method condensed with, else the protocol teacher); "protocol" or a declared profile's name.
    teacher_profile: str | None = None
    # The temporal formation (``vdcbench.train.formation``): None takes the archive's (the one
    # its method condensed with, its config's ``formation``), else the track's default. Part of
    # the record's key: records of two formations never share a cell.
    formation: str | None = None


def archive_teacher_profile(protocol: Protocol, archive: LoadedArchive) -> str | None:
    """The teacher profile the archive's method condensed with, as ``<name>@<sha256>``; None for
    the protocol teacher or a method without one (a config without ``teacher_profile``)."""
    config = archive.condensed.method.config or {}
    value = config.get("teacher_profile", PROTOCOL_PROFILE)
    if not isinstance(value, str):
        raise VdcError(f"archive {archive.path}: method config teacher_profile {value!r} is not "
                       f"a profile name")
    name, _, sha = value.partition("@")
    if name == PROTOCOL_PROFILE:
        return None
    if sha:
        return join_profile(name, sha)
    profile = teacher_profile(name, protocol)   # a bare name: the profile declared here
    return join_profile(profile.name, profile.sha256)


def _same_profile(profile: TeacherProfile | None, recorded: str | None) -> bool:
    return (None if profile is None else join_profile(profile.name, profile.sha256)) == recorded


def student_fit_config(protocol: Protocol, archive: LoadedArchive, variant: str,
                       epochs: int | None = None) -> FitConfig:
    trainer = protocol.trainer
    track, dataset = archive.track, archive.track.dataset
    strategy = protocol.label_strategy(archive.condensed.label_strategy)
    chosen = protocol.variant(variant)
    loss = chosen.loss_override or strategy.loss
    if loss == "kl" and strategy.labels == "archive-hard":
        raise VdcError("the kl variant needs soft or multi-sl labels, not hard labels")
    run_epochs = epochs or trainer.epochs
    return FitConfig(
        epochs=run_epochs, batch_size=trainer.batch_size_for(dataset, track.ipc),
        optimizer=trainer.optimizer, lr=trainer.lr, lr_factor=trainer.lr_factor,
        betas=trainer.betas, weight_decay=trainer.weight_decay,
        weight_decay_min_ndim=trainer.weight_decay_min_ndim, crop_size=dataset.crop,
        crop_scale=trainer.crop_scale, crop_ratio=trainer.crop_ratio, hflip=dataset.hflip,
        mean=trainer.normalize_mean, std=trainer.normalize_std, loss=loss, gamma=strategy.gamma,
        temperature=chosen.temperature, cutmix=chosen.cutmix, cutmix_beta=chosen.cutmix_beta,
        shuffle=trainer.shuffle, drop_last=trainer.drop_last,
        eval_epochs=tuple(e for e in trainer.reference_metric_epochs if e < run_epochs),
    )


def archive_formation(archive: LoadedArchive) -> str | None:
    """The formation the archive's method condensed with (its config's ``formation``), if any."""
    value = (archive.condensed.method.config or {}).get("formation")
    if value is not None and not isinstance(value, str):
        raise VdcError(f"archive {archive.path}: method config formation {value!r} is not a "
                       f"formation name")
    return value or None


def evaluation_formation(protocol: Protocol, archive: LoadedArchive,
                         chosen: str | None = None) -> Formation:
    """How the archive's instances become clips: ``chosen``, else the archive's, else the track's
    default (``none`` at the protocol's clip length, ``slide-window`` above, ``interpolate-linear``
    below); refused (one line) unless protocol v1 declares it and it fits the track's frames."""
    track = archive.track
    return track_formation(protocol.temporal_formations, track.frames,
                           chosen or archive_formation(archive), protocol.sampling.frames,
                           where=f"track {track.id}")


class Evaluation:
    """One archive under one net and variant, ready to score any seed.

    Set up eagerly (the fit config, the teacher for multi-sl labels) so that what is missing fails
    when it is built, before any seed trains. Resuming is the caller's: ``existing(seed)`` finds
    a stored record, ``run_seed(seed)`` always trains (``evaluate_archive`` does both, once).
    """

    def __init__(self, protocol: Protocol, archive: LoadedArchive, settings: EvalSettings,
                 results_dir: Path):
        self.formation = evaluation_formation(protocol, archive, settings.formation)
        self.protocol = protocol
        self.archive = archive
        self.settings = settings
        self.results_dir = Path(results_dir)
        self.config = student_fit_config(protocol, archive, settings.variant, settings.epochs)
        self.strategy = protocol.label_strategy(archive.condensed.label_strategy)
        self.dataset = archive.track.dataset
        # Once: for a prepared data set it is the store's hash, read from its files.
        self.dataset_sha256 = dataset_sha256(self.dataset)
        self.teacher = None
        condensed_with = archive_teacher_profile(protocol, archive)
        self.teacher_profile = condensed_with
        if self.strategy.labels == "teacher-online":
            if settings.teacher_profile is not None:
                profile = teacher_profile(settings.teacher_profile, protocol)
            elif condensed_with is not None:
                profile = teacher_profile(condensed_with.partition("@")[0], protocol)
            else:
                profile = None
            uses_teacher = "teacher_profile" in (archive.condensed.method.config or {})
            if uses_teacher and not _same_profile(profile, condensed_with):
                made = (condensed_with or PROTOCOL_PROFILE).partition("@")[0]
                raise VdcError(f"the archive was condensed with the {made!r}-profile teacher; its "
                               f"multi-sl labels must come from the same profile's teacher "
                               f"(teacher profile {made})")
            arch = protocol.net(settings.net).teacher_architecture
            self.teacher = load_teacher(protocol, self.dataset, arch, settings.device, profile)
            self.teacher_profile = (None if profile is None
                                    else join_profile(profile.name, profile.sha256))
        elif settings.teacher_profile is not None and settings.teacher_profile != (
                (condensed_with or PROTOCOL_PROFILE).partition("@")[0]):
            raise VdcError(f"a teacher profile applies to multi-sl labels (a teacher labels "
                           f"online); this archive's labels are {archive.condensed.label_strategy}")
        self._validation: ValidationClips | None = None

    def key(self, seed: int) -> RecordKey:
        c = self.archive.condensed
        return RecordKey(
            archive_sha256=self.archive.sha256, protocol_version=self.protocol.version,
            protocol_sha256=self.protocol.sha256, dataset=self.dataset.name,
            dataset_sha256=self.dataset_sha256, track=self.archive.track.id,
            label_strategy=c.label_strategy, variant=self.settings.variant,
            net=self.settings.net, teacher_sha256=self.teacher.sha256 if self.teacher else None,
            seed=seed, epochs=self.config.epochs, teacher_profile=self.teacher_profile,
            formation=None if self.formation.name == NONE else self.formation.id)

    def existing(self, seed: int) -> EvalRecord | None:
        """The stored record of ``seed`` under ``results_dir`` with exactly this key, if any."""
        return find_record(self.results_dir, self.key(seed), self.archive.condensed.method.name)

    @property
    def validation(self) -> ValidationClips:
        if self._validation is None:
            self._validation = validation_clips(self.protocol, open_split(self.dataset, "val"))
        return self._validation

    def run_seed(self, seed: int, progress: SeedProgress | None = None) -> EvalRecord:
        """Train the evaluation net for ``seed``, score it, write its record and return it."""
        c = self.archive.condensed
        torch.manual_seed(torch_seed(seed, STREAM_INIT))
        net = build_net(self.protocol.net(self.settings.net), self.dataset.num_classes)
        label_fn = None
        if self.teacher is not None:
            teacher = self.teacher.net
            label_fn = torch.no_grad()(lambda inputs, indices: teacher(inputs))

        source = StoredClips(c.videos, c.labels, c.soft_labels,
                             None if self.formation.name == NONE else self.formation)
        trainer = Trainer(net, self.config, source, seed=seed, device=self.settings.device,
                          label_fn=label_fn)
        callback = (lambda e, n, loss: progress(seed, e, n, loss)) if progress else None
        checkpoint = self.checkpoint(seed, trainer.device)
        result = trainer.fit(self.validation, progress=callback, checkpoint=checkpoint)
        student_cost, teacher_cost = self.costs()
        official = (self.settings.variant == "official" and self.settings.epochs in (None, self.protocol.trainer.epochs))
        record = EvalRecord(
            key=self.key(seed),
            method=RecordedMethod(name=c.method.name, kind=str(c.method.kind),
                                  seed=c.method.seed, config=dict(c.method.config)),
            top1=result.final.top1, top5=result.final.top5,
            reference_best_top1=result.best_top1(self.protocol.trainer.reference_metric_epochs),
            official=official, epochs=self.config.epochs, iterations=result.iterations,
            batch_size=self.config.batch_size, wall_seconds=round(result.wall_seconds, 2),
            device=str(trainer.device), weights_sha256=result.weights_sha256,
            final_loss=result.losses[-1], ledger=self.archive.ledger.to_dict(),
            versions=runtime_versions(),
            by_epoch_top1={str(e): s.top1 for e, s in sorted(result.by_epoch.items())},
            net_gflops_forward=round(student_cost.forward_gflops, 6),
            train_gflops=round(training_gflops(student_cost, result.clips, teacher_cost), 3),
            torch_threads=torch.get_num_threads(),
            machine=this_machine(str(trainer.device)),
            world_size=trainer.world.size if trainer.world.parallel else None,
        )
        # A torchrun launch is one run: every rank returns the record, rank 0 alone writes it.
        if trainer.world.is_writer:
            record.to_disk(self.results_dir)
            checkpoint.clear()
        return record

    def checkpoint(self, seed: int, device: torch.device) -> FitCheckpoint:
        """The seed's resume state, keyed by its record identity. The thread count and device
        join the fingerprint: a resume under others would give numbers neither run reproduces,
        so such a checkpoint is ignored and the seed starts again."""
        return FitCheckpoint(resume_store(), resume_key(self.key(seed)),
                             every=resume_interval(self.config.epochs),
                             context={"torch_threads": torch.get_num_threads(),
                                      "device": str(device)})

    def costs(self) -> tuple[NetCost, NetCost | None]:
        """Per-clip cost of the student, and of the teacher when one labels online (multi-sl):
        the clips the formation forms, of the protocol's clip length whatever the track's."""
        frames, crop = self.formation.clip_frames, self.dataset.crop
        classes = self.dataset.num_classes
        student = net_cost(self.protocol.net(self.settings.net), classes, frames, crop)
        teacher = (net_cost(self.protocol.net(self.teacher.net_name), classes, frames, crop)
                   if self.teacher is not None else None)
        return student, teacher


def runtime_versions() -> RuntimeVersions:
    """The versions a record carries: vdcbench, torch, Python, and pytorchvideo if installed."""
    try:
        from importlib.metadata import version
        pytorchvideo = version("pytorchvideo")
    except Exception:
        pytorchvideo = "not installed"
    return RuntimeVersions(vdcbench=__version__, torch=torch.__version__,
                           python=platform.python_version(), pytorchvideo=pytorchvideo)


def seed_lock(evaluation: Evaluation, seed: int):
    """The lock of one seed's record under ``results_dir`` (``.locks/.seed<N>-<key hash>.lock``).

    Named by the record's whole key (its schedule included), so only runs that would write the
    same record wait for each other; runs of other seeds, nets or archives in one folder go on in
    parallel.
    """
    digest = hashlib.sha256(repr(evaluation.key(seed)).encode()).hexdigest()[:16]
    return exclusive(evaluation.results_dir / ".locks", f"seed{seed}-{digest}",
                     what=f"the {evaluation.settings.net} record of seed {seed}")

