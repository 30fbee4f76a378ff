"""Which teacher profile a baseline run uses, from ``--teacher-profile`` and the method's own
``teacher_profile`` setting, checked before any work (the CLI asks it before generating data).
"""

from __future__ import annotations

import dataclasses

from vdcbench.core.errors import VdcError
from vdcbench.methods.features import resolve_profile
from vdcbench.protocol import PROTOCOL_PROFILE, Protocol, TeacherProfile
# Imported under another name: ``teacher_profile`` is what callers call a profile's name.
from vdcbench.protocol import teacher_profile as declared_profile


def resolve_teacher_profile(protocol: Protocol, cls: type, settings: dict[str, str],
                            name: str | None) -> TeacherProfile | None:
    """The run's teacher profile (None: the protocol's), written into ``settings`` as the method's
    ``teacher_profile`` where its config has one, so the manifest records what was used."""
    has_setting = dataclasses.is_dataclass(cls.Config) and "teacher_profile" in {
        f.name for f in dataclasses.fields(cls.Config)}
    given = settings.get("teacher_profile") if has_setting else None
    if name is None:
        return resolve_profile(protocol, given) if given is not None else None
    profile = declared_profile(name, protocol)
    if given is not None and resolve_profile(protocol, given) != profile:
        raise VdcError(f"teacher profile {name!r} and the {cls.name} setting "
                       f"teacher_profile={given} disagree: give one of them")
    if has_setting:
        settings["teacher_profile"] = PROTOCOL_PROFILE if profile is None else profile.name
    return profile
