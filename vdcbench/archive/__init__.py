"""CondensedSet <-> submission.tar: schema, hashes, the storage ledger and the track budget.

Every archive is hostile: see ``reader`` for the limits, ``errors`` for the refusal codes.
"""

from vdcbench.archive.errors import ArchiveError, ArchiveErrorCode
from vdcbench.archive.ledger import StorageLedger, budget_track, check_budget
from vdcbench.archive.condensed import MethodKind
from vdcbench.archive.manifest import (FORMAT, FORMAT_VERSION, MEMBERS, Manifest, MemberSpec,
                                       TensorSpec)
from vdcbench.archive.reader import LoadedArchive, expansion_allowance, read_archive
from vdcbench.archive.writer import write_archive

__all__ = [
    "ArchiveError",
    "ArchiveErrorCode",
    "FORMAT",
    "FORMAT_VERSION",
    "LoadedArchive",
    "MEMBERS",
    "Manifest",
    "MemberSpec",
    "MethodKind",
    "StorageLedger",
    "TensorSpec",
    "budget_track",
    "check_budget",
    "expansion_allowance",
    "read_archive",
    "write_archive",
]
