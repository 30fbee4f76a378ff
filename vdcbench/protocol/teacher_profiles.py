"""Teacher profiles: declared, separately hashed alternatives to the protocol's teacher recipes.

The protocol teacher of a data set is trained under its ``[teacher_recipes]`` entry (150 epochs
for real data sets: hours on a CPU). A profile, declared in ``protocol/teacher-profiles.toml``,
changes a few of that recipe's values (epochs, schedule, batch, learning rate) for every net. It
is not part of the protocol's hash, which every committed archive, record and entry pins; it has
its own, so a teacher trained under it, and everything that used such a teacher, names the profile
and its hash and is never taken for the protocol's.

``PROTOCOL_PROFILE`` ("protocol") names the protocol's own recipe; it is reserved and never
declared in the file.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from vdcbench.core.errors import UnknownNameError, VdcError
from vdcbench.protocol.declarations import declared_tables, read_declarations, refusal
from vdcbench.protocol.spec import (PROTOCOL_DIR, Dataset, Protocol, TeacherRecipe,
                                    canonical_sha256)

PROFILES_FILE = "teacher-profiles.toml"
PROTOCOL_PROFILE = "protocol"
_PROFILE_KEYS = frozenset({"description", "protocol_versions", "recipe"})
# What a profile may change: the schedule and the batch. The net and the recipe's name are the
# protocol's; the rest (momentum, decay, clip, crops, seed) stays the protocol's by declaration.
_OVERRIDABLE = frozenset({"lr", "epochs", "warmup_epochs", "warmup_start_factor", "milestones",
                          "gamma", "batch_size"})


@dataclass(frozen=True)
class TeacherProfile:
    """A declared teacher profile: its name, hash and what it changes in a protocol recipe."""

    name: str
    description: str
    sha256: str                              # of the profile's table, name included
    protocol_versions: tuple[int, ...]
    overrides: Mapping[str, Any]

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]

    @property
    def label(self) -> str:
        """``cpu-1a2b3c4d5e6f``: the name and short hash, as file names and record paths hold it."""
        return f"{self.name}-{self.short_hash}"

    def identity(self) -> dict[str, str]:
        """What a sidecar, a manifest's method config and a record store: name and hash."""
        return {"name": self.name, "sha256": self.sha256}

    def recipe(self, protocol: Protocol, dataset: Dataset, net: str) -> TeacherRecipe:
        """The data set's protocol recipe for ``net`` with this profile's values."""
        if protocol.version not in self.protocol_versions:
            raise VdcError(f"teacher profile {self.name!r} is declared for protocol "
                           f"v{', v'.join(map(str, self.protocol_versions))}, not "
                           f"v{protocol.version}")
        base = protocol.teacher_recipe(dataset, net)
        return dataclasses.replace(base, name=f"{base.name}+{self.name}", **self.overrides)


_WHAT = "teacher profiles"


def _refuse(source: str, detail: str) -> VdcError:
    return refusal(_WHAT, source, detail)


def _profile(name: str, table: Any, source: str) -> TeacherProfile:
    where = f"[profiles.{name}]"
    if name == PROTOCOL_PROFILE:
        raise _refuse(source, f"{where}: {PROTOCOL_PROFILE!r} is reserved for the protocol's "
                              f"own recipe")
    if not isinstance(table, Mapping):
        raise _refuse(source, f"{where} must be a table")
    unknown = sorted(set(table) - _PROFILE_KEYS)
    missing = sorted(_PROFILE_KEYS - set(table))
    if unknown or missing:
        raise _refuse(source, f"{where}: {'unknown' if unknown else 'missing'} key "
                              f"{(unknown or missing)[0]!r}")
    recipe = table["recipe"]
    if not isinstance(recipe, Mapping) or not recipe:
        raise _refuse(source, f"{where}.recipe must be a table of recipe values")
    bad = sorted(set(recipe) - _OVERRIDABLE)
    if bad:
        raise _refuse(source, f"[profiles.{name}.recipe] may not change {bad[0]!r} (only "
                              f"{', '.join(sorted(_OVERRIDABLE))})")
    versions = table["protocol_versions"]
    if (not isinstance(versions, list) or not versions
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in versions)):
        raise _refuse(source, f"{where}: protocol_versions must be a list of integers")
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in recipe.items()}
    return TeacherProfile(name=name, description=str(table["description"]),
                          sha256=canonical_sha256({"name": name, **table}),
                          protocol_versions=tuple(versions),
                          overrides=MappingProxyType(overrides))


def profiles_from_toml(raw: Mapping[str, Any], source: str = "(in memory)"
                       ) -> Mapping[str, TeacherProfile]:
    """The profiles of a parsed profiles file; a one-line ``VdcError`` for any other shape."""
    profiles = declared_tables(raw, "profiles", _WHAT, source)
    return MappingProxyType({n: _profile(n, t, source) for n, t in profiles.items()})


def load_teacher_profiles(directory: Path = PROTOCOL_DIR) -> Mapping[str, TeacherProfile]:
    """Every declared teacher profile by name (none when the file is absent)."""
    return _load(Path(directory).resolve())


@functools.lru_cache(maxsize=None)
def _load(directory: Path) -> Mapping[str, TeacherProfile]:
    path = directory / PROFILES_FILE
    raw = read_declarations(path, _WHAT)
    return MappingProxyType({}) if raw is None else profiles_from_toml(raw, str(path))


def teacher_profile(name: str | None, protocol: Protocol | None = None,
                    directory: Path = PROTOCOL_DIR) -> TeacherProfile | None:
    """The declared profile ``name``; None for ``"protocol"`` (or None), the protocol's recipe.

    With ``protocol``, a profile not declared for its version is refused."""
    if name is None or name == PROTOCOL_PROFILE:
        return None
    profiles = load_teacher_profiles(directory)
    if name not in profiles:
        raise UnknownNameError("teacher profile", name, [PROTOCOL_PROFILE, *profiles])
    profile = profiles[name]
    if protocol is not None and protocol.version not in profile.protocol_versions:
        raise VdcError(f"teacher profile {name!r} is not declared for protocol "
                       f"v{protocol.version}")
    return profile


def profile_names(directory: Path = PROTOCOL_DIR) -> tuple[str, ...]:
    """``protocol`` and every declared profile: the choices a ``--teacher-profile`` offers."""
    return (PROTOCOL_PROFILE, *load_teacher_profiles(directory))
