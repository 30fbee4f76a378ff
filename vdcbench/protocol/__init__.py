"""Layer 1: the frozen, versioned protocol as typed data (``protocol/v<N>.toml`` and its hash).

Nothing else reads the TOML; everything else asks a ``Protocol`` object.
"""

from vdcbench.protocol.spec import (LATEST_VERSION, PROTOCOL_DIR, ArchiveLimits, BatchSizeRule,
                                    Choice, Dataset, GeneratorSpec, LabelSource, LabelStrategy,
                                    Loss, NetSpec, Optimizer, Protocol, Sampling, Schedule,
                                    TeacherRecipe, Track, TrainerRecipe, Variant,
                                    canonical_sha256, load_protocol, parse_track_id)
from vdcbench.protocol.teacher_profiles import (PROTOCOL_PROFILE, TeacherProfile,
                                                load_teacher_profiles, teacher_profile)

__all__ = ["LATEST_VERSION", "PROTOCOL_DIR", "ArchiveLimits", "BatchSizeRule", "Choice",
           "Dataset", "GeneratorSpec", "LabelSource", "LabelStrategy", "Loss", "NetSpec",
           "Optimizer", "Protocol", "Sampling", "Schedule", "TeacherRecipe", "Track",
           "TrainerRecipe", "Variant", "canonical_sha256", "load_protocol", "parse_track_id",
           "PROTOCOL_PROFILE", "TeacherProfile", "load_teacher_profiles", "teacher_profile"]
