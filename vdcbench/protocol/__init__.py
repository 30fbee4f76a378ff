"""Layer 1: the frozen, versioned protocol as typed data (``protocol/v<N>.toml`` and its hash).

Nothing else reads the TOML; everything else asks a ``Protocol`` object.
"""

from vdcbench.protocol.spec import (LATEST_VERSION, PROTOCOL_DIR, ArchiveLimits, Dataset,
                                    GeneratorSpec, NetSpec, Protocol, Sampling, TeacherRecipe,
                                    Track, canonical_sha256, load_protocol,
                                    parse_track_id)

__all__ = ["LATEST_VERSION", "PROTOCOL_DIR", "ArchiveLimits", "Dataset", "GeneratorSpec",
           "NetSpec", "Protocol", "Sampling", "TeacherRecipe", "Track", "canonical_sha256",
           "load_protocol", "parse_track_id"]
