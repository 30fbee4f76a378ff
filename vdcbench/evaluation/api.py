"""The library API: the benchmark's two jobs as calls, which the ``vdcbench`` CLI only wraps.

- :func:`evaluate_archive` scores an archive over nets and seeds, resuming from stored records;
- :func:`evaluate_cell` scores one (archive, net, seed): the unit a study or a sweep dispatches;
- :func:`run_baseline` condenses a data set with a registered method and writes the archive.

Nothing here prints; pass a :class:`~vdcbench.evaluation.progress.Progress` to watch the work.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vdcbench.archive import LoadedArchive, read_archive, write_archive
from vdcbench.archive.condensed import CondensedSet
from vdcbench.core import paths
from vdcbench.core.artifacts import ArtifactStore
from vdcbench.core.errors import VdcError
from vdcbench.core.output_path import check_output_path
from vdcbench.data.datasets import resolve_dataset
from vdcbench.evaluation.progress import SILENT, Progress
from vdcbench.evaluation.records import EvalRecord
from vdcbench.evaluation.report import EvaluatedArchive, EvaluationReport, NetResult
from vdcbench.evaluation.run_profile import resolve_teacher_profile
from vdcbench.evaluation.scoring import EvalSettings, Evaluation, parse_nets, seed_lock
from vdcbench.methods import CondensationTask, get_method
from vdcbench.protocol import LATEST_VERSION, Dataset, Protocol, TeacherProfile, load_protocol
from vdcbench.train.distributed import SINGLE, World, broadcast_object, current_world
from vdcbench.train.interrupt import StopRequest

ArchiveLike = str | os.PathLike | LoadedArchive


# ------------------------------------------------------------------------------- evaluation
def evaluate_archive(archive: ArchiveLike, *, nets: str | Sequence[str] = "minic3d",
                     seeds: Iterable[int] = (0, 1, 2), variant: str = "official",
                     device: str = "cpu", results_dir: str | os.PathLike | None = None,
                     epochs: int | None = None, teacher_profile: str | None = None,
                     formation: str | None = None,
                     progress: Progress | None = None) -> EvaluationReport:
    """Score an archive under its protocol: per net, one trained student and one record per seed.

    Args:
        archive: a ``submission.tar`` path, or an archive already read with ``read_archive``.
        nets: ``"all"`` (the protocol's evaluation nets), ``"every"`` (every protocol net), a
            comma list such as ``"minic3d,i3d_r18"``, or a sequence of net names.
        seeds: evaluation seeds (non-negative; repeats are dropped, order kept).
        variant: ``"official"`` (the only ranked one), ``"cutmix"`` or ``"kl"``.
        device: a torch device string.
        results_dir: where per-seed records are written and looked up (default: the cache's
            ``results`` folder). A record already there under the same key is reused, not rerun.
        epochs: a shortened schedule for smoke tests; such records are marked not official.
        teacher_profile: the teacher profile of the multi-sl teacher: ``None`` takes the
            archive's (the profile its method condensed with, else the protocol teacher),
            ``"protocol"`` or a declared profile's name (``protocol/teacher-profiles.toml``).
        formation: how the archive's T-frame instances become the net's 8-frame clips, a
            formation id of ``vdcbench.train.formation`` (``segment``, ``slide-window``,
            ``interpolate-linear``, ``interpolate-linear-w4``, ...): ``None`` takes the archive's
            (the formation its method condensed with), else the track's default (``none`` at 8
            frames, ``slide-window`` above, ``interpolate-linear`` below). It is part of every
            record's key and path, so two formations never share a cell.
        progress: receives the evaluation's events; ``None`` for none.

    Returns:
        An :class:`EvaluationReport`: the records per net (which seeds were reused) and their
        aggregation.

    Raises:
        VdcError: an unreadable or invalid archive, an unknown net or variant, bad seeds, a
            missing protocol teacher (multi-sl labels) — all before any net trains.
    """
    loaded = _loaded(archive)
    protocol = loaded.protocol
    names = _net_names(protocol, nets)
    seeds = _seeds(seeds)
    folder = Path(results_dir) if results_dir is not None else paths.results_dir()
    # Every net is set up (its teacher loaded, for multi-sl) before any trains: a missing teacher
    # fails now, not after hours spent on the nets before it.
    evaluations = [Evaluation(protocol, loaded,
                              EvalSettings(seeds=seeds, net=name, variant=variant, device=device,
                                           epochs=epochs, teacher_profile=teacher_profile,
                                           formation=formation),
                              folder)
                   for name in names]
    progress = progress or SILENT
    progress.evaluation_started(names, seeds)
    results = []
    for evaluation in evaluations:
        scored = [_score_seed(evaluation, seed, progress) for seed in seeds]
        results.append(NetResult(net=evaluation.settings.net,
                                 records=tuple(record for record, _ in scored),
                                 reused_seeds=tuple(r.key.seed for r, reused in scored if reused)))
    return EvaluationReport(archive=_evaluated(loaded, archive, evaluations[0].formation.id),
                            variant=variant,
                            results_dir=folder, nets=tuple(results))


def evaluate_cell(archive: ArchiveLike, net: str, seed: int, *, variant: str = "official",
                  device: str = "cpu", results_dir: str | os.PathLike | None = None,
                  epochs: int | None = None, teacher_profile: str | None = None,
                  formation: str | None = None,
                  progress: Progress | None = None) -> EvalRecord:
    """Score one (archive, net, seed) cell, or return its stored record: the unit of a sweep.

    Args:
        archive, variant, device, results_dir, epochs, teacher_profile, formation, progress: as
            for :func:`evaluate_archive`.
        net: one protocol net name.
        seed: one non-negative evaluation seed.

    Returns:
        The cell's :class:`~vdcbench.evaluation.records.EvalRecord` (also written under
        ``results_dir``, unless it was already there).

    Raises:
        VdcError: as :func:`evaluate_archive`.
    """
    loaded = _loaded(archive)
    (name,) = _net_names(loaded.protocol, (net,))
    (seed,) = _seeds((seed,))
    folder = Path(results_dir) if results_dir is not None else paths.results_dir()
    evaluation = Evaluation(loaded.protocol, loaded,
                            EvalSettings(seeds=(seed,), net=name, variant=variant, device=device,
                                         epochs=epochs, teacher_profile=teacher_profile,
                                         formation=formation), folder)
    record, _ = _score_seed(evaluation, seed, progress or SILENT)
    return record


def _score_seed(evaluation: Evaluation, seed: int, progress: Progress) -> tuple[EvalRecord, bool]:
    """The seed's record and whether it was reused: the one place resume is decided. Under the
    seed's lock, so of two processes on one results folder the second waits for the first's
    record and reuses it: each record is trained and written once. The ranks of one torchrun
    launch are one run: rank 0 alone takes the lock (a rank waiting on it would stall the
    collectives rank 0 trains with) and decides for all whether the record exists."""
    world = current_world()
    with seed_lock(evaluation, seed) if world.is_writer else nullcontext():
        return _reuse_or_train(evaluation, seed, progress, world)


def _reuse_or_train(evaluation: Evaluation, seed: int, progress: Progress,
                    world: World = SINGLE) -> tuple[EvalRecord, bool]:
    net = evaluation.settings.net
    cached = broadcast_object(evaluation.existing(seed) if world.is_writer else None, world)
    if cached is not None:
        progress.seed_reused(net, cached)
        return cached, True
    progress.seed_started(net, seed, evaluation.config.epochs)
    record = evaluation.run_seed(
        seed, lambda s, epoch, epochs, loss: progress.evaluation_epoch(net, s, epoch, epochs, loss))
    progress.seed_finished(net, record)
    return record, False


def _loaded(archive: ArchiveLike) -> LoadedArchive:
    return archive if isinstance(archive, LoadedArchive) else read_archive(archive)


def _evaluated(loaded: LoadedArchive, archive: ArchiveLike, formation: str) -> EvaluatedArchive:
    c = loaded.condensed
    return EvaluatedArchive(sha256=loaded.sha256,
                            path=None if isinstance(archive, LoadedArchive) else Path(archive),
                            method=c.method.name, dataset=loaded.track.dataset.name,
                            track=loaded.track.id, label_strategy=c.label_strategy,
                            protocol_version=loaded.protocol.version, formation=formation)


def _net_names(protocol: Protocol, nets: str | Sequence[str]) -> tuple[str, ...]:
    return parse_nets(protocol, nets if isinstance(nets, str) else ",".join(nets))


def _seeds(seeds: Iterable[int]) -> tuple[int, ...]:
    chosen = tuple(dict.fromkeys(seeds))
    if not chosen or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in chosen):
        raise VdcError(f"seeds {chosen!r} must name at least one non-negative integer seed")
    return chosen


# -------------------------------------------------------------------------------- baselines
@dataclass(frozen=True)
class CondensedArchive:
    """A written submission archive and the condensed set in it."""

    path: Path
    sha256: str                  # of the archive file's bytes
    bytes: int
    wall_seconds: float          # condensation and writing (not a teacher trained first)
    condensed: CondensedSet


def run_baseline(method: str, *, dataset: str, ipc: int, frames: int | None = None,
                 label_strategy: str = "hard", settings: Mapping[str, object] | None = None,
                 seed: int = 0, output: str | os.PathLike | None = None, overwrite: bool = False,
                 device: str = "cpu", train_teacher: bool = False,
                 teacher_profile: str | None = None, train_experts: bool = False,
                 progress: Progress | None = None,
                 stop: StopRequest | None = None) -> CondensedArchive:
    """Condense ``dataset`` with the registered method ``method`` and write a submission archive.

    Args:
        method: a registered method name (``vdcbench.methods.available_methods()``).
        dataset: a protocol data set or a prepared collection, e.g. ``"synthetic"``.
        ipc: instances per class of the track; ``frames``: frames per instance (protocol: 8).
        label_strategy: ``"hard"``, ``"soft"`` or ``"multi-sl"``.
        settings: method settings by name (the CLI's ``--set``); values are converted to each
            setting's type as the CLI converts its strings.
        seed: the condensation seed.
        output: the archive to write (default: ``METHOD-DATASET-TRACK-LABELS-sSEED.tar`` in the
            working directory); ``overwrite`` replaces an existing file.
        device: a torch device string.
        train_teacher: first train and save the data set's MiniC3D teacher (of
            ``teacher_profile``) if none is found.
        teacher_profile: whose teacher the method and the soft labels use: ``None`` or
            ``"protocol"`` for the protocol teacher, or a declared profile's name (``"cpu"``).
            It becomes the method's ``teacher_profile`` setting where it has one (a different
            ``settings["teacher_profile"]`` is refused); without it, that setting names the
            profile.
        train_experts: first train the expert trajectories the method reads (MTT, DATM) where
            some are missing; methods that read none train nothing.
        progress: receives the teacher's, the experts' and the condensation's events; ``None``
            for none.
        stop: a teacher trained here stops after its step in progress once ``stop`` is
            requested (``FitInterrupted``, its finished epochs kept for the same call to resume).

    Returns:
        A :class:`CondensedArchive`: path, sha256, size, wall time and the condensed set.

    Raises:
        VdcError: an unknown data set, track, label strategy, method, setting or teacher
            profile, an unprepared data set, an existing output without ``overwrite`` or an
            output folder that does not exist, or a class with too few videos for a selection —
            all before any condensation; a missing teacher the method needs (without
            ``train_teacher``); a set that breaks the track's budget.
    """
    progress = progress or SILENT
    protocol = load_protocol(LATEST_VERSION)
    track = protocol.track(resolve_dataset(protocol, dataset),
                           f"ipc{ipc}-t{frames or protocol.official_frames}")
    if track.dataset.generator is None:
        from vdcbench.data.store import open_store_for
        open_store_for(track.dataset)   # an unprepared data set fails before any work
    protocol.label_strategy(label_strategy)
    cls = get_method(method)
    strings = {key: value if isinstance(value, str) else str(value)
               for key, value in (settings or {}).items()}
    profile = resolve_teacher_profile(protocol, cls, strings, teacher_profile)
    instance = cls(cls.config_from_strings(strings))
    output = Path(output) if output is not None else Path(
        f"{method}-{dataset}-{track.id}-{label_strategy}-s{seed}.tar")
    check_output_path(output, overwrite)
    if train_teacher:
        ensure_teacher(protocol, track.dataset, "minic3d", device=device, profile=profile,
                       progress=progress, stop=stop)
    if train_experts:
        _ensure_experts(instance, protocol, track.dataset, device, progress)
    artifacts = ArtifactStore(paths.method_artifacts_dir(method, dataset, seed))
    started = time.perf_counter()
    task = CondensationTask(protocol, track, label_strategy, seed, artifacts, device,
                            progress=progress.condensation_step, teacher_profile=profile)
    if cls.kind == "selection":
        # A selection cannot keep more real videos than a class has: say so before any work.
        task.require_videos_per_class(track.ipc, f"{method} at IPC {track.ipc}")
    progress.condensation_started(method, dataset, track.id)
    condensed = instance.condense(task)
    sha = write_archive(condensed, output, protocol=protocol, overwrite=overwrite)
    return CondensedArchive(path=output, sha256=sha, bytes=output.stat().st_size,
                            wall_seconds=time.perf_counter() - started, condensed=condensed)


def ensure_teacher(protocol: Protocol, dataset: Dataset, net: str = "minic3d", *,
                   device: str = "cpu", profile: TeacherProfile | None = None,
                   progress: Progress | None = None,
                   stop: StopRequest | None = None) -> bool:
    """Train and save the teacher of ``net`` under ``profile`` (None: the protocol's) unless one
    is already saved; whether one was trained. Resumable: an interrupted training (``stop``
    requested: ``FitInterrupted``) keeps its finished epochs, and the next call goes on from
    them."""
    from vdcbench.train.teacher import (find_teacher, teacher_recipe_for, teacher_resume_store,
                                        train_teacher)
    if find_teacher(protocol, dataset.name, net, profile) is not None:
        return False
    progress = progress or SILENT
    recipe = teacher_recipe_for(protocol, dataset, net, profile)
    progress.teacher_started(net, dataset.name, recipe.epochs)
    sidecar, _ = train_teacher(
        protocol, dataset, net, device=device, profile=profile,
        resume_store=teacher_resume_store(), stop=stop,
        progress=lambda epoch, epochs, loss: progress.teacher_epoch(net, dataset.name, epoch,
                                                                    epochs, loss),
        on_step=lambda epoch, epochs, step, steps, loss: progress.teacher_step(
            net, dataset.name, epoch, epochs, step, steps, loss))
    progress.teacher_finished(net, dataset.name, sidecar.val_top1)
    return True


def _ensure_experts(method, protocol: Protocol, dataset: Dataset, device: str,
                    progress: Progress) -> None:
    """Train the expert trajectories ``method`` reads where some are missing (MTT, DATM)."""
    from vdcbench.methods.mtt import MTT, prepare_experts
    if not isinstance(method, MTT):      # the methods that read experts (DATM is one)
        return
    progress.experts_started(method.name, dataset.name)
    trained = prepare_experts(method, protocol, dataset, device=device,
                              progress=lambda n, count, done, epochs, loss: progress.expert_epoch(
                                  n, count, done, epochs, loss))
    progress.experts_finished(method.name, dataset.name, tuple(trained))
