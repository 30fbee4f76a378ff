"""Why an archive was refused, as an enumerated code plus one line for a human.

The code is the contract (tests and callers match on it); the message names the archive, the
member and the problem, and never spans lines, because the CLI prints it as one.
"""

from __future__ import annotations

import enum

from vdcbench.core.errors import VdcError


class ArchiveErrorCode(enum.Enum):
    # The file itself.
    FILE_NOT_FOUND = "file-not-found"
    NOT_A_FILE = "not-a-file"
    UNREADABLE = "unreadable"
    # The container.
    NOT_A_TAR = "not-a-tar"
    BAD_COMPRESSION = "bad-compression"
    TRUNCATED = "truncated"
    CORRUPT_TAR = "corrupt-tar"
    EXPANSION_LIMIT = "expansion-limit"
    COMPRESSION_RATIO = "compression-ratio"
    # Members.
    LINK_MEMBER = "link-member"
    SPECIAL_MEMBER = "special-member"
    ABSOLUTE_PATH = "absolute-path"
    PARENT_PATH = "parent-path"
    DUPLICATE_MEMBER = "duplicate-member"
    UNEXPECTED_MEMBER = "unexpected-member"
    MISSING_MEMBER = "missing-member"
    TOO_MANY_MEMBERS = "too-many-members"
    HASH_MISMATCH = "hash-mismatch"
    SIZE_MISMATCH = "size-mismatch"
    # The manifest.
    MANIFEST_NOT_FIRST = "manifest-not-first"
    MANIFEST_TOO_LARGE = "manifest-too-large"
    MANIFEST_NOT_JSON = "manifest-not-json"
    SCHEMA = "schema"
    UNKNOWN_PROTOCOL_VERSION = "unknown-protocol-version"
    PROTOCOL_MISMATCH = "protocol-mismatch"
    UNKNOWN_DATASET = "unknown-dataset"
    UNKNOWN_TRACK = "unknown-track"
    NUM_CLASSES_MISMATCH = "num-classes-mismatch"
    # Tensors.
    BAD_TENSOR_FILE = "bad-tensor-file"
    BAD_DTYPE = "bad-dtype"
    BAD_SHAPE = "bad-shape"
    NON_FINITE = "non-finite"
    FLOAT_RANGE = "float-range"
    LABEL_OUT_OF_RANGE = "label-out-of-range"
    SOFT_LABEL_CLASSES = "soft-label-classes"
    LABEL_STRATEGY = "label-strategy"
    # The track's budget.
    BUDGET_IPC = "budget-ipc"
    BUDGET_FRAMES = "budget-frames"
    BUDGET_RESOLUTION = "budget-resolution"
    # Writing.
    DESTINATION_EXISTS = "destination-exists"
    DESTINATION_UNWRITABLE = "destination-unwritable"


class ArchiveError(VdcError):
    """An archive (or a condensed set about to become one) that vdcbench refuses."""

    def __init__(self, code: ArchiveErrorCode, message: str):
        # Library messages (tarfile, safetensors, jsonschema) may carry newlines; the CLI prints
        # exactly one line.
        super().__init__(" ".join(str(message).split()))
        self.code = code

    def __reduce__(self):
        # Exceptions cross process boundaries in multi-process evaluation; keep the code.
        return (type(self), (self.code, str(self)))
