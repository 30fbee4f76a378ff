"""Expert trajectories: the parameters of nets trained on the real train split, after every epoch.

Trajectory matching (MTT, DATM) distils by making a student trained on the synthetic clips follow
a segment of an expert's trajectory, so the experts are trained once per data set and recipe and
read back by every distillation. The recipe follows MTT's ``buffer.py`` as the video MTT
(Dancing with Still Images) ran it: the condensation net with instance norm (``minic3d-in``, as
the study's DATM experts), plain SGD at ``lr_teacher`` 0.01 without momentum or weight decay,
constant rate, no ZCA; batch 256, 30 experts of 50 epochs. The augmentation is the one the DATM
video experts trained with: a random resized crop (the data set's teacher-recipe crop scale) and
a flip per clip, every frame of a clip cut alike, each epoch a random slide window of every video.

Every expert ``n`` is its own keyed run: its initialisation, shuffles, windows and crops derive
from (recipe seed, n), so expert 3 is the same whether 5 or 30 are trained, and asking for more
experts later trains only the new ones. Snapshot ``e`` (``e`` = 0 is the initialisation) is one
safetensors file in the experts' artifact store, keyed by the expert set's identity (protocol
hash, data-set hash, the recipe without the expert count), the expert and the epoch. Training is
resumable per expert and epoch: the trainer checkpoints through ``FitCheckpoint`` after every
epoch, and a checkpoint whose epoch's snapshot is missing (a stop between the two writes) has
that snapshot restored from the checkpoint's own weights before training goes on.

The experts live in one artifact store per data set (``core.paths.experts_dir``),
not in a distillation method's own store: MTT and DATM, at every condensation seed, read the same
trajectories, as the reference reads one buffer for all its runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vdcbench.core import paths
from vdcbench.core.artifacts import ArtifactStore
from vdcbench.core.errors import VdcError
from vdcbench.core.randomness import STREAM_INIT, STREAM_METHOD, torch_seed
from vdcbench.data.splits import VideoSplit, class_members, dataset_sha256, open_split
from vdcbench.models import build_net
from vdcbench.protocol import Dataset, Optimizer, Protocol
from vdcbench.protocol.spec import canonical_sha256
from vdcbench.train.checkpoint import FitCheckpoint
from vdcbench.train.sources import VideoWindows
from vdcbench.train.trainer import FitConfig, Trainer


@dataclass(frozen=True)
class ExpertRecipe:
    """How the experts of a data set are trained (MTT ``buffer.py``'s arguments)."""

    name: str                    # "reference" or "synthetic": which declared preset this is
    experts: int                 # MTT num_experts (video MTT: 30)
    epochs: int                  # MTT train_epochs: snapshots 0..epochs
    lr: float = 0.01             # MTT lr_teacher
    momentum: float = 0.0        # MTT: no momentum
    weight_decay: float = 0.0    # MTT: none
    batch_size: int = 256        # MTT batch_train
    videos_per_class: int = 0    # 0: every train video; else the first N of each class
    augment: bool = True         # per-clip random resized crop and flip (DATM's video experts)
    net: str = "minic3d-in"      # the condensation net with instance norm
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("experts", "epochs", "batch_size"):
            if getattr(self, key) < 1:
                raise VdcError(f"expert {key} must be at least 1, not {getattr(self, key)}")
        if self.videos_per_class < 0:
            raise VdcError(f"expert videos_per_class must be 0 (all) or more, not "
                           f"{self.videos_per_class}")
        if not self.lr > 0:
            raise VdcError(f"expert lr must be positive, not {self.lr}")

    def trajectory_identity(self) -> dict:
        """What one expert's numbers depend on: everything but the count and the preset name."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("name", "experts")}


RECIPES = {
    # Video MTT's buffer.sh: 30 experts x 50 epochs of SGD lr 0.01, batch 256.
    "reference": ExpertRecipe(name="reference", experts=30, epochs=50),
    # A few minutes of one core on `synthetic` (about 40 s an epoch on an idle core, 70 s on a
    # loaded one): 2 experts of 4 epochs on the first 8 videos of each class. Batch 40 (2 SGD
    # steps an epoch) at lr 0.05: an epoch's displacement must be mostly the mean gradient, as
    # the reference's batch of 256 makes it, for a student to be able to follow it; at batch 10
    # (8 steps of lr 0.02, the first recipe) it was mostly minibatch noise, and MTT's students
    # could not get their normalised distance below 1.
    "synthetic": ExpertRecipe(name="synthetic", experts=2, epochs=4, lr=0.05, batch_size=40,
                              videos_per_class=8),
}


def default_recipe(dataset: Dataset) -> ExpertRecipe:
    """The declared recipe of ``dataset``: ``synthetic`` for the generated set, else ``reference``."""
    return RECIPES["synthetic" if dataset.generator is not None else "reference"]


def resolve_recipe(dataset: Dataset, experts: int = 0, epochs: int = 0) -> ExpertRecipe:
    """The data set's recipe with ``experts`` / ``epochs`` replaced where given (non-zero)."""
    recipe = default_recipe(dataset)
    changes = {k: v for k, v in (("experts", experts), ("epochs", epochs)) if v}
    return dataclasses.replace(recipe, **changes) if changes else recipe


def experts_store(dataset: Dataset) -> ArtifactStore:
    """The artifact store every trajectory-matching method reads the experts of ``dataset`` from."""
    return ArtifactStore(paths.experts_dir(dataset.name))


@dataclass(frozen=True)
class ExpertSet:
    """The experts of one (protocol, data set, recipe): where their snapshots are, and which exist."""

    protocol: Protocol
    dataset: Dataset
    recipe: ExpertRecipe
    store: ArtifactStore

    @property
    def identity(self) -> str:
        ident = {"protocol": self.protocol.sha256, "dataset": self.dataset.name,
                 "dataset_sha256": dataset_sha256(self.dataset),
                 "recipe": self.recipe.trajectory_identity()}
        return canonical_sha256(ident)[:16]

    def snapshot_key(self, expert: int, epoch: int) -> str:
        return f"expert-{self.identity}-n{expert:03d}-e{epoch:03d}"

    def resume_key(self, expert: int) -> str:
        return f"expert-{self.identity}-n{expert:03d}-resume"

    def has_snapshot(self, expert: int, epoch: int) -> bool:
        return self.store.has(self.snapshot_key(expert, epoch))

    def complete(self, expert: int) -> bool:
        return all(self.has_snapshot(expert, e) for e in range(self.recipe.epochs + 1))

    def completed(self) -> list[int]:
        """The experts (of the recipe's count) whose every snapshot is saved."""
        return [n for n in range(self.recipe.experts) if self.complete(n)]

    def snapshot(self, expert: int, epoch: int) -> dict[str, torch.Tensor]:
        """Expert ``expert``'s parameters after ``epoch`` epochs (0: its initialisation)."""
        tensors = self.store.get_tensors(self.snapshot_key(expert, epoch))
        if tensors is None:
            raise VdcError(f"expert {expert} has no snapshot of epoch {epoch} for "
                           f"{self.dataset.name!r}; train the experts with "
                           f"`{train_command(self.dataset, self.recipe)}`")
        return tensors

    def files(self) -> Iterator[Path]:
        for n in range(self.recipe.experts):
            for e in range(self.recipe.epochs + 1):
                path = self.store.root / f"{self.snapshot_key(n, e)}.safetensors"
                if path.is_file():
                    yield path

    def bytes_on_disk(self) -> int:
        return sum(path.stat().st_size for path in self.files())

    def require(self, count: int, what: str) -> list[int]:
        """The first ``count`` experts, all complete; else a one-line error with the command."""
        missing = [n for n in range(count) if not self.complete(n)]
        if missing:
            done = count - len(missing)
            raise VdcError(f"{what} needs {count} expert trajectories of {self.dataset.name!r} "
                           f"({self.recipe.epochs} epochs, recipe {self.recipe.name!r}) and "
                           f"{done} are saved; train them with "
                           f"`{train_command(self.dataset, self.recipe, count)}` (or pass "
                           f"--train-experts to run-baseline)")
        return list(range(count))


def train_command(dataset: Dataset, recipe: ExpertRecipe, count: int | None = None) -> str:
    declared = default_recipe(dataset)
    command = f"vdcbench experts train --dataset {dataset.name}"
    count = recipe.experts if count is None else count
    if count != declared.experts:
        command += f" --experts {count}"
    if recipe.epochs != declared.epochs:
        command += f" --epochs {recipe.epochs}"
    return command


def expert_set(protocol: Protocol, dataset: Dataset, recipe: ExpertRecipe | None = None,
               store: ArtifactStore | None = None) -> ExpertSet:
    return ExpertSet(protocol, dataset, recipe or default_recipe(dataset),
                     store or experts_store(dataset))


def flat_parameters(net: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable parameters by name, detached copies: what a snapshot holds."""
    return {name: p.detach().cpu().clone() for name, p in net.named_parameters()}


def expert_fit_config(protocol: Protocol, dataset: Dataset, recipe: ExpertRecipe) -> FitConfig:
    crop_scale = (protocol.teacher_recipe(dataset, "minic3d").crop_scale if recipe.augment
                  else (1.0, 1.0))
    return FitConfig(
        epochs=recipe.epochs, batch_size=recipe.batch_size, optimizer=Optimizer.SGD,
        lr=recipe.lr, lr_factor=lambda epoch: 1.0, momentum=recipe.momentum,
        weight_decay=recipe.weight_decay, weight_decay_min_ndim=0, crop_size=dataset.crop,
        crop_scale=crop_scale,
        crop_ratio=protocol.trainer.crop_ratio if recipe.augment else (1.0, 1.0),
        hflip=dataset.hflip and recipe.augment, mean=protocol.trainer.normalize_mean,
        std=protocol.trainer.normalize_std)


@dataclass(frozen=True)
class _SplitSubset:
    """Some videos of a split, renumbered 0..n-1 (a frame source for ``VideoWindows``)."""

    split: VideoSplit
    keep: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.asarray(self.split.lengths)[self.keep]

    def clips(self, videos, frame_indices) -> torch.Tensor:
        return self.split.clips([int(self.keep[int(v)]) for v in videos], frame_indices)


def expert_videos(split: VideoSplit, recipe: ExpertRecipe) -> np.ndarray:
    """The train videos the experts learn from: all, or the first ``videos_per_class`` of each class."""
    if recipe.videos_per_class == 0:
        return np.arange(len(split))
    k = recipe.videos_per_class
    return np.sort(np.concatenate([
        class_members(split, label, k, f"experts with {k} videos per class")[:k]
        for label in range(split.num_classes)]))


def expert_source(protocol: Protocol, split: VideoSplit, recipe: ExpertRecipe) -> VideoWindows:
    keep = expert_videos(split, recipe)
    subset = _SplitSubset(split, keep)
    intervals = np.array([split.interval(int(v), protocol.sampling) for v in keep], dtype=np.int64)
    return VideoWindows(subset, split.labels[torch.from_numpy(keep)], protocol.sampling.frames,
                        intervals)


def build_expert_net(protocol: Protocol, dataset: Dataset, recipe: ExpertRecipe) -> nn.Module:
    return build_net(protocol.net(recipe.net), dataset.num_classes)


EpochProgress = Callable[[int, int, int, int, float], None]
"""(expert, experts, epochs done, epochs, the epoch's last loss)."""


def train_experts(experts: ExpertSet, device: str = "cpu",
                  progress: EpochProgress | None = None) -> list[int]:
    """Train every expert of the recipe's count that is not complete; the experts trained now.

    Each expert resumes from its checkpoint (the epoch after the last one saved)."""
    protocol, dataset, recipe = experts.protocol, experts.dataset, experts.recipe
    pending = [n for n in range(recipe.experts) if not experts.complete(n)]
    if not pending:
        return []
    split = open_split(dataset, "train")
    source = expert_source(protocol, split, recipe)
    config = expert_fit_config(protocol, dataset, recipe)
    for n in pending:
        _train_one(experts, n, source, config, device, progress)
    return pending


def _train_one(experts: ExpertSet, n: int, source: VideoWindows, config: FitConfig, device: str,
               progress: EpochProgress | None) -> None:
    protocol, dataset, recipe = experts.protocol, experts.dataset, experts.recipe
    # The caller's global generator is neither used nor disturbed (the trainer reseeds it).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed(recipe.seed, STREAM_INIT, n))
        net = build_expert_net(protocol, dataset, recipe)
        if not experts.has_snapshot(n, 0):
            experts.store.put_tensors(experts.snapshot_key(n, 0), flat_parameters(net))
        trainer = Trainer(net, config, source, seed=torch_seed(recipe.seed, STREAM_METHOD, n),
                          device=device)
        checkpoint = FitCheckpoint(experts.store, experts.resume_key(n),
                                   context={"torch_threads": torch.get_num_threads(),
                                            "device": str(device)})
        saved = checkpoint.load(trainer.fingerprint())
        if saved is not None:
            # Stopped after the checkpoint and before its snapshot: the checkpoint's weights are it.
            done = int(saved["epoch"]) + 1
            if not experts.has_snapshot(n, done):
                weights = {k: v for k, v in saved["trainer"]["net"].items()
                           if k in dict(net.named_parameters())}
                experts.store.put_tensors(experts.snapshot_key(n, done), weights)

        def after_epoch(done: int, epochs: int, loss: float) -> None:
            experts.store.put_tensors(experts.snapshot_key(n, done), flat_parameters(trainer.net))
            if progress is not None:
                progress(n, recipe.experts, done, epochs, loss)

        trainer.fit(None, progress=after_epoch, checkpoint=checkpoint)
    checkpoint.clear()
