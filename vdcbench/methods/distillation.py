"""What every distillation method shares: a resumable optimisation of synthetic clips.

A distillation method (DM, EDC; trajectory matching builds on the same) writes an
:class:`Objective`: the learnable tensors (the synthetic clips, and where the method learns them a
learning rate or soft labels), any buffers the optimisation carries between iterations (EDC's
moving averages), its optimisers, and one iteration. :func:`distill` does the rest:

- **Initialisation** from real clips: :func:`initial_selection` runs a selection method (Random's
  choice for the same seed, or RDED's) under hard labels and hands its clips over as float32.
- **Progress**: the iteration, its loss and (from the bar) an ETA, through ``task.progress``.
- **Checkpoints**: every ``checkpoint_every`` iterations (and right after the initialisation) the
  whole optimisation state (every tensor, every optimiser's state, the iteration, the loss curve,
  the compute seconds so far) is saved in the method's artifact store through
  :class:`~vdcbench.train.checkpoint.FitCheckpoint`, so a run stopped in any way resumes at the
  last checkpoint and ends with the same clips as an unbroken run. No generator state is saved
  because none is carried: every random draw of an iteration comes from a generator keyed by
  (seed, method key, iteration, ...), and torch's own generator is reseeded inside a forked RNG
  scope wherever a method needs it (:func:`torch_rng`).
- **The result**: the final clips, labels and loss curve are kept under a key derived from
  everything they depend on, so another label strategy of the same track (hard, soft, multi-sl
  share the clips) reuses them instead of distilling again; the resume state is then dropped.
- **Storage**: clips are optimised in pixel scale [0, 1], unclamped unless the method clamps
  them; they are stored clamped to [0, 1] (the range of an image, inside the reader's tolerance)
  as float16 unless the config says float32 (:func:`stored_clips`).
- **Temporal tracks**: a method's ``formation`` setting (the track's default when empty) names
  how its T-frame synthetic videos become the 8-frame clips a net eats (the study's co-optimised
  slide-window, section 3.1): every iteration the method feeds the nets
  ``form_clips(synthetic, formation, rng)`` with a generator from :func:`window_rng`, keyed by
  the iteration, so the window is as reproducible and resumable as every other draw, and the
  gradient reaches only the frames the window read. On the protocol's 8 frames the formation is
  ``none``: the clips are fed as before, and neither the identity nor the manifest names it
  (:func:`resolved_config`), so results and checkpoints made before formations keep their keys.

A method's ``Config`` declares presets (``--set preset=cpu``): a preset replaces the faithful
values of the keys it names, except where a key was given a value other than its faithful
default; the resolved values and the preset's name are what the archive's manifest records.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vdcbench.core.errors import VdcError
from vdcbench.data.splits import dataset_sha256
from vdcbench.methods.base import CondensationTask, Method, explicit_settings
from vdcbench.protocol.spec import canonical_sha256
from vdcbench.core.randomness import STREAM_METHOD, torch_seed
from vdcbench.train.checkpoint import FitCheckpoint
from vdcbench.train.formation import Formation

STORAGE_DTYPES = {"float16": torch.float16, "float32": torch.float32}

# Config keys that change how a run is carried out, not what it computes: they stay out of the
# identity of a checkpoint and of a cached result.
NOT_IDENTITY = frozenset({"preset", "checkpoint_every"})


# ----------------------------------------------------------------------------------- presets
def apply_preset(config: Any, presets: Mapping[str, Mapping[str, Any]], method: str) -> None:
    """In a frozen config's ``__post_init__``: resolve ``config.preset`` in place.

    Keys still at their faithful default take the preset's value; a key set to anything else,
    or set explicitly by ``--set`` (even to the default), keeps it: an explicit value wins."""
    name = config.preset
    if not name:
        return
    if name not in presets:
        known = ", ".join(sorted(presets))
        raise VdcError(f"{method} preset {name!r} is unknown (known: {known})")
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    explicit = explicit_settings()
    for key, value in presets[name].items():
        if key not in explicit and getattr(config, key) == defaults[key]:
            object.__setattr__(config, key, value)


def check_storage(storage: str, method: str) -> None:
    if storage not in STORAGE_DTYPES:
        raise VdcError(f"{method} storage {storage!r} must be float16 or float32")


def check_positive(config: Any, keys: tuple[str, ...], method: str) -> None:
    for key in keys:
        if getattr(config, key) <= 0:
            raise VdcError(f"{method} {key} must be positive, not {getattr(config, key)}")


# --------------------------------------------------------------------------------- randomness
@contextlib.contextmanager
def torch_rng(*keys: int) -> Iterator[None]:
    """Torch's CPU generator seeded from ``keys`` inside, and the caller's state restored after:
    a method's draws (a fresh net's initialisation) never disturb or depend on the global state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed(*keys))
        yield


def method_torch_seed_keys(task: CondensationTask, *keys: int) -> tuple[int, ...]:
    """The keys :func:`torch_rng` takes for a draw of this task: its seed, the method stream."""
    return (task.seed, STREAM_METHOD, *keys)


# Sets the window draws of a formation apart from a method's other draws of the same iteration
# (its real batch, its crops), so that adding them changed none of those.
WINDOW_KEY = 1_000_900


def window_rng(task: CondensationTask, method_key: int, iteration: int,
               *keys: int) -> np.random.Generator:
    """The generator a formation draws an iteration's windows from: keyed by the method, the
    iteration and ``keys`` (a class, a batch), never carried between iterations, so a resumed run
    draws the windows an unbroken one does."""
    return task.rng(method_key, iteration, WINDOW_KEY, *keys)


# ------------------------------------------------------------------------------- formation
def method_formation(task: CondensationTask, method: Method) -> Formation:
    """The formation ``method``'s config names for this task's track (empty: the track's
    default), refused in one line where it cannot form the track's instances."""
    return task.formation(getattr(method.config, "formation", ""), method.name)


def forms_clips(formation: Formation) -> bool:
    """Whether synthetic videos go through the formation before a net sees them: on the
    protocol's 8 frames (``none``) they are fed exactly as before formations existed."""
    return formation.name != "none"


# ---------------------------------------------------------------------------- initialisation
def initial_selection(task: CondensationTask, method: Method) -> tuple[torch.Tensor, torch.Tensor]:
    """The clips a selection ``method`` picks for this task, as float32 pixel scale, and labels.

    Run under hard labels so no soft labels are computed for clips that are only a start. The
    selection runs on the same track, so on a temporal track it picks T-frame real windows
    (judged through its own ``formation`` setting, where it has one)."""
    selection = CondensationTask(task.protocol, task.track, "hard", task.seed, task.artifacts,
                                 task.device, progress=task.progress,
                                 teacher_profile=task.teacher_profile)
    picked = method.condense(selection)
    videos = picked.videos
    clips = videos.float().div_(255.0) if videos.dtype == torch.uint8 else videos.float()
    return clips.contiguous(), picked.labels.to(torch.int64)


def stored_clips(clips: torch.Tensor, storage: str) -> torch.Tensor:
    """The clips as an archive stores them: clamped to [0, 1], in the configured float dtype."""
    return clips.detach().to("cpu").clamp(0.0, 1.0).to(STORAGE_DTYPES[storage]).contiguous()


# --------------------------------------------------------------------------------- objective
class Objective(abc.ABC):
    """One method's optimisation: its state (``tensors``, ``optimizers``) and one ``step``.

    ``tensors`` names every tensor whose value carries from one iteration to the next (the
    synthetic clips first; a learnable lr, labels, moving averages): a checkpoint saves them and
    a resume copies the saved values into them in place, so optimisers keep their parameters.
    A method whose optimisation has phases (EDC optimises its clips batch by batch) overrides
    ``state_dict``/``load_state_dict`` instead.
    """

    @property
    @abc.abstractmethod
    def clips(self) -> torch.Tensor:
        """The synthetic clips (N, 3, T, S, S), float32 pixel scale."""

    @abc.abstractmethod
    def step(self, iteration: int) -> float:
        """One iteration (0-based): loss, backward, optimiser step; returns the loss."""

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"clips": self.clips}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"tensors": {k: v.detach().cpu().clone() for k, v in self.tensors().items()},
                "optimizers": {k: v.state_dict() for k, v in self.optimizers().items()}}

    def load_state_dict(self, state: Mapping[str, Any], done: int) -> None:
        """Restore what ``state_dict`` saved after ``done`` iterations."""
        with torch.no_grad():
            for name, tensor in self.tensors().items():
                tensor.copy_(state["tensors"][name])
        for name, optimizer in self.optimizers().items():
            optimizer.load_state_dict(state["optimizers"][name])


@dataclass(frozen=True)
class LoopSettings:
    iterations: int
    checkpoint_every: int


@dataclass(frozen=True)
class Distilled:
    """What a distillation produced: the final clips (float32, unclamped), their labels, the
    clips it started from, the loss of every iteration, the compute seconds (all segments of a
    resumed run, the initialisation included), and whether it was an earlier run's result."""

    clips: torch.Tensor
    labels: torch.Tensor
    initial: torch.Tensor
    losses: torch.Tensor
    seconds: float
    reused: bool


def identity_config(config: Any) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(config).items() if k not in NOT_IDENTITY}


def resolved_config(task: CondensationTask, method: Method,
                    config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``config`` with its ``formation`` resolved as ``CondensationTask.finish`` records it
    (:meth:`CondensationTask.recorded_config`)."""
    return task.recorded_config(method, config)


def run_identity(task: CondensationTask, method: Method,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything a distillation's numbers depend on, except the thread count and device."""
    identity = {"method": method.name,
                "config": resolved_config(task, method, identity_config(method.config)),
                "protocol": task.protocol.sha256, "dataset": task.dataset.name,
                "dataset_sha256": dataset_sha256(task.dataset), "track": task.track.id,
                "seed": task.seed, **(extra or {})}
    # A non-protocol teacher (EDC's statistics, RDED's initial selection) changes the clips; the
    # protocol teacher adds nothing, so caches made before profiles existed keep their keys.
    if task.teacher_profile is not None:
        identity["teacher_profile"] = f"{task.teacher_profile.name}@{task.teacher_profile.sha256}"
    return identity


def _json_ready(value: Any) -> Any:
    return json.loads(json.dumps(value))


def result_key(method: str, track: str, identity: Mapping[str, Any]) -> str:
    return f"distill-{method}-{track}-{canonical_sha256(_json_ready(identity))[:20]}-result"


def resume_key(method: str, track: str, identity: Mapping[str, Any]) -> str:
    return f"distill-{method}-{track}-{canonical_sha256(_json_ready(identity))[:20]}-resume"


def _thread_context(task: CondensationTask) -> dict[str, Any]:
    # A resumed run continues only at the thread count and device it started with: CPU float
    # sums are ordered by the thread count, so a run of mixed counts would match neither.
    return {"torch_threads": torch.get_num_threads(), "device": str(task.device)}


def distill(task: CondensationTask, method: Method, settings: LoopSettings,
            initial: Callable[[], tuple[torch.Tensor, torch.Tensor]],
            make_objective: Callable[[torch.Tensor, torch.Tensor], Objective],
            identity_extra: Mapping[str, Any] | None = None,
            setup_seconds: float = 0.0) -> Distilled:
    """Run (or resume, or reuse) ``method``'s distillation for ``task``.

    ``initial()`` gives the starting clips and labels (called only when no checkpoint exists);
    ``make_objective(clips, labels)`` builds the objective around them. ``identity_extra`` adds
    what the numbers depend on beyond the config and the task (a teacher's sha256);
    ``setup_seconds`` what the method spent before (EDC's statistics pass), counted in a fresh
    run's seconds."""
    identity = run_identity(task, method, identity_extra)
    done_key = result_key(method.name, task.track.id, identity)
    cached = task.artifacts.get_tensors(done_key)
    if cached is not None and cached["losses"].numel() == settings.iterations:
        return Distilled(clips=cached["clips"], labels=cached["labels"],
                         initial=cached["initial"], losses=cached["losses"],
                         seconds=float(cached["seconds"]), reused=True)

    started = time.perf_counter()
    checkpoint = FitCheckpoint(task.artifacts, resume_key(method.name, task.track.id, identity),
                               context=_thread_context(task))
    fingerprint = _json_ready(identity)
    state = checkpoint.load(fingerprint)
    if state is not None:
        # FitCheckpoint's unit of progress is called "epoch"; here it counts iterations done.
        done, labels, start = int(state["epoch"]), state["labels"], state["initial"]
        losses, spent = list(state["losses"]), float(state["seconds"])
        objective = make_objective(start.clone(), labels)
        objective.load_state_dict(state["objective"], done)
    else:
        start, labels = initial()
        start = start.detach().cpu().clone()
        done, losses, spent = 0, [], float(setup_seconds)
        objective = make_objective(start.clone(), labels)

    def save(done_now: int) -> None:
        checkpoint.save({"fingerprint": fingerprint, "epoch": done_now, "labels": labels,
                         "initial": start, "losses": list(losses),
                         "seconds": spent + time.perf_counter() - started,
                         "objective": objective.state_dict()})

    if state is None:
        save(0)     # the initialisation (RDED's scoring, say) is never redone after a stop
    total = settings.iterations
    for iteration in range(done, total):
        loss = float(objective.step(iteration))
        if not torch.isfinite(torch.tensor(loss)):
            raise VdcError(f"{method.name}: the loss became {loss} at iteration {iteration + 1}; "
                           f"lower the learning rate (--set lr=...)")
        losses.append(loss)
        task.progress(iteration + 1, total, f"loss {loss:.4g}")
        if (iteration + 1) % settings.checkpoint_every == 0 and iteration + 1 < total:
            save(iteration + 1)

    seconds = spent + time.perf_counter() - started
    result = Distilled(clips=objective.clips.detach().cpu().clone(), labels=labels,
                       initial=start, losses=torch.tensor(losses, dtype=torch.float64),
                       seconds=seconds, reused=False)
    task.artifacts.put_tensors(done_key, {"clips": result.clips, "labels": result.labels,
                                          "initial": start,
                                          "losses": result.losses,
                                          "seconds": torch.tensor(seconds, dtype=torch.float64)})
    checkpoint.clear()
    return result
