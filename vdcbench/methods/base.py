"""The method API: a ``Method`` condenses a ``CondensationTask`` into a ``CondensedSet``.

A method never reads the protocol TOML, chooses a path or seeds a global generator: the task
gives it the track, the train split, the protocol teacher, keyed random generators, a device, a
progress callback and an artifact store for anything it wants to keep between runs.

The artifact store is the method's own, for one data set and condensation seed, and is shared by
every track (IPC, frames) and label strategy: a key must name whatever its value depends on
beyond those two (the track, the teacher's hash, the protocol hash), so that a cache is reused
exactly where it is valid. ``vdcbench.train.checkpoint.FitCheckpoint`` keeps a long training
there, resumable at each epoch.
"""

from __future__ import annotations

import abc
import contextvars
import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from vdcbench.archive.condensed import CondensedSet, MethodInfo, MethodKind
from vdcbench.data.splits import VideoSplit, class_members, open_split
from vdcbench.train.teacher import load_teacher
from vdcbench.core.errors import VdcError
from vdcbench.core.artifacts import ArtifactStore
from vdcbench.protocol import (PROTOCOL_PROFILE, LabelSource, Protocol, TeacherProfile, Track,
                               teacher_profile)
from vdcbench.train.augment import Normalize, to_unit_float
from vdcbench.train.formation import Formation, form_clips, mean_by_owner, track_formation
from vdcbench.core.randomness import STREAM_METHOD, rng_for

Progress = Callable[[int, int, str], None]


# The keys a caller sets while a config is built from ``--set`` values. A method's declared
# preset fills the keys still at their faithful default in ``__post_init__``, which cannot tell
# an explicit value equal to that default from no value: without this, ``--set preset=cpu --set
# expert_epochs=2`` ran DATM with the preset's 1, since 2 is DATM's default.
_EXPLICIT_SETTINGS: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "explicit_settings", default=frozenset())


def explicit_settings() -> frozenset[str]:
    """The keys set explicitly in the config now being built (a preset leaves them alone)."""
    return _EXPLICIT_SETTINGS.get()


@dataclass(frozen=True)
class NoConfig:
    """For methods without settings."""


class CondensationTask:
    """Everything a method may use to condense one track of one data set."""

    def __init__(self, protocol: Protocol, track: Track, label_strategy: str, seed: int,
                 artifacts: ArtifactStore, device: str = "cpu",
                 progress: Progress | None = None,
                 teacher_profile: TeacherProfile | None = None):
        protocol.label_strategy(label_strategy)
        self.protocol = protocol
        self.track = track
        self.dataset = track.dataset
        self.label_strategy = label_strategy
        self.seed = seed
        self.artifacts = artifacts
        self.device = device
        self._progress = progress
        # The teacher profile (protocol/teacher-profiles.toml) of the teacher this task's methods
        # use unless their config names another; None: the protocol teacher.
        self.teacher_profile = teacher_profile
        self._teachers: dict = {}

    @functools.cached_property
    def train(self) -> VideoSplit:
        """The train split: whole videos at the protocol's resize (the methods' only data)."""
        return open_split(self.dataset, "train")

    def require_videos_per_class(self, needed: int, what: str) -> None:
        """Raise, naming the class, when a class of the train split has fewer than ``needed``."""
        for label in range(self.train.num_classes):
            class_members(self.train, label, needed, what)

    def formation(self, text: str | None = None, what: str = "") -> Formation:
        """The temporal formation a method's ``formation`` setting names for this track (empty:
        the track's default: ``none`` at the protocol's 8 frames, ``slide-window`` above,
        ``interpolate-linear`` below), refused in one line unless the protocol declares it and
        it can form the track's instances. Methods score and select through it, and the archive
        records it, so evaluation forms the clips the same way."""
        where = f"{what} on track {self.track.id}" if what else f"track {self.track.id}"
        return track_formation(self.protocol.temporal_formations, self.track.frames, text or None,
                               self.protocol.sampling.frames, where=where)

    def rng(self, *keys: int) -> np.random.Generator:
        """A generator keyed by the task's seed and ``keys`` (e.g. the class index)."""
        return rng_for(self.seed, STREAM_METHOD, *keys)

    def progress(self, done: int, total: int, what: str = "") -> None:
        if self._progress is not None:
            self._progress(done, total, what)

    def teacher(self, net: str = "minic3d", profile: TeacherProfile | str | None = None):
        """The teacher of ``net`` on this data set (raises with the command to train it).

        ``profile``: None for the task's teacher profile, ``"protocol"`` for the protocol
        teacher, or a declared profile (or its name). Each teacher is loaded (and its file
        hashed) once per task, however often a method asks."""
        profile = self._profile(profile)
        # A protocol teacher is cached under its net's name alone, as before profiles existed.
        key = net if profile is None else (net, profile.label)
        if key not in self._teachers:
            self.protocol.net(net)   # a misspelt net is named as such, not as a missing teacher
            self._teachers[key] = load_teacher(self.protocol, self.dataset, net, self.device,
                                               profile)
        return self._teachers[key]

    def _profile(self, profile: TeacherProfile | str | None) -> TeacherProfile | None:
        if profile is None:
            return self.teacher_profile
        if isinstance(profile, str):
            # A manifest records ``<name>@<sha256>``; the method checked the hash when it chose.
            return teacher_profile(profile.partition("@")[0], self.protocol)
        return profile

    @torch.no_grad()
    def teacher_logits(self, videos: torch.Tensor, net: str = "minic3d",
                       batch_size: int = 50,
                       profile: TeacherProfile | str | None = None,
                       formation: Formation | None = None) -> torch.Tensor:
        """Teacher logits of stored clips, un-augmented and normalised: the ``soft`` labels.

        With a ``formation`` (a temporal track) the teacher sees each instance's deterministic
        clips (the centred window; every segment, whose logits are averaged), never T frames
        at once."""
        teacher = self.teacher(net, profile).net
        trainer = self.protocol.trainer
        normalize = Normalize(trainer.normalize_mean, trainer.normalize_std)
        if formation is None or formation.name == "none":
            out = [teacher(normalize(to_unit_float(videos[i:i + batch_size].to(self.device)))).float().cpu()
                   for i in range(0, videos.shape[0], batch_size)]
            return torch.cat(out)
        out = []
        for i in range(0, videos.shape[0], batch_size):
            formed = form_clips(videos[i:i + batch_size], formation)
            logits = teacher(normalize(to_unit_float(formed.clips.to(self.device)))).float().cpu()
            out.append(mean_by_owner(logits, formed.owners))
        return torch.cat(out)

    def recorded_config(self, method: "Method",
                        config: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``config`` (default: the method's, as a dict) as a manifest records it: a
        ``formation`` resolved to its id on a temporal track (evaluation forms its clips the
        same way), and no key at all at the protocol's 8 frames, where only ``none`` can apply,
        so such manifests (and distillation identities) are those written before formations
        existed."""
        config = dict(dataclasses.asdict(method.config) if config is None else config)
        if "formation" in config:
            formation = self.formation(config["formation"], method.name)
            if self.track.frames == self.protocol.sampling.frames:
                del config["formation"]
            else:
                config["formation"] = formation.id
        return config

    def finish(self, method: "Method", videos: torch.Tensor, labels: torch.Tensor,
               wall_seconds: float | None = None) -> CondensedSet:
        """Wrap selected or synthesised clips as a CondensedSet, adding soft labels when asked."""
        strategy = self.protocol.label_strategy(self.label_strategy)
        config = self.recorded_config(method)
        # Soft labels come from the teacher the method chose (its config's ``teacher_profile``),
        # else from the task's profile, which a method without that setting records here.
        profile = self._profile(config.get("teacher_profile"))
        soft = None
        if strategy.labels is LabelSource.ARCHIVE_LOGITS:
            soft = self.teacher_logits(videos, profile=profile or PROTOCOL_PROFILE,
                                       formation=self.formation(config.get("formation"),
                                                                method.name))
        # A method without the setting that used a profile's teacher (for soft labels, or as
        # EDC asks ``task.teacher``) records it, so its results are never taken for the protocol
        # teacher's.
        used = {key[1] for key in self._teachers if isinstance(key, tuple)}
        if (profile is not None and "teacher_profile" not in config
                and profile.label in used):
            config["teacher_profile"] = f"{profile.name}@{profile.sha256}"
        info = MethodInfo(name=method.name, kind=method.kind, config=config, seed=self.seed,
                          wall_seconds=wall_seconds, device=self.device)
        return CondensedSet(videos=videos.contiguous(), labels=labels.to(torch.int64),
                            soft_labels=soft, label_strategy=self.label_strategy,
                            dataset=self.dataset.name, track=self.track.id, method=info)


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


class Method(abc.ABC):
    """Subclass, set ``name``/``kind``/``description``/``Config``, implement ``condense``."""

    name: ClassVar[str]
    kind: ClassVar[MethodKind]
    description: ClassVar[str]
    Config: ClassVar[type] = NoConfig

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Plugins write ``kind = "selection"`` (CONTRIBUTING.md); the class holds the member, and a
        # misspelt kind fails as the plugin loads, naming the method.
        if "kind" in cls.__dict__:
            name = cls.__dict__.get("name", cls.__name__)
            cls.kind = MethodKind.parse(cls.kind, f"method {name!r} kind")

    def __init__(self, config: Any = None):
        self.config = config if config is not None else self.Config()

    @classmethod
    def config_from_strings(cls, overrides: dict[str, str]) -> Any:
        """Build the config from ``--set key=value`` pairs, converting to each field's type."""
        fields = {f.name: f for f in dataclasses.fields(cls.Config)}
        values = {}
        for key, text in overrides.items():
            if key not in fields:
                from vdcbench.core.errors import UnknownNameError
                raise UnknownNameError(f"{cls.name} setting", key, fields)
            default = getattr(cls.Config(), key)
            try:
                values[key] = _parse_bool(text) if isinstance(default, bool) else type(default)(text)
            except ValueError:
                raise VdcError(f"{cls.name} setting {key}={text!r} is not a valid "
                               f"{type(default).__name__}") from None
        token = _EXPLICIT_SETTINGS.set(frozenset(values))
        try:
            return cls.Config(**values)
        finally:
            _EXPLICIT_SETTINGS.reset(token)

    @abc.abstractmethod
    def condense(self, task: CondensationTask) -> CondensedSet:
        ...
