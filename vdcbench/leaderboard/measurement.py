"""What makes two results the same measurement, as entries and diffs compare them.

A result record's :class:`~vdcbench.evaluation.records.RecordKey` names one seed of one
evaluation net. An entry holds every net and seed of one measurement, and ``diff`` sets two such
measurements side by side, so both carry the key without its net and seed: a
:class:`Measurement`. Its fields are RecordKey's, taken from it rather than written out again, so
a field added to the key is at once something submit refuses to mix and diff reports.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from vdcbench.evaluation.records import RecordKey

# The parts of a record's key that vary inside one measurement: an entry holds several nets,
# and seeds are the repetitions the tie rule pairs.
PER_RESULT_FIELDS = ("net", "seed")


def _of(cls: type, source: Any) -> Any:
    """The measurement of anything carrying its fields by name (a RecordKey, an Entry)."""
    return cls(**{f.name: getattr(source, f.name) for f in dataclasses.fields(cls)})


Measurement = dataclasses.make_dataclass(
    "Measurement",
    # A key field with a default keeps it: a field added to the key later (optional, as every
    # one since the first eleven) leaves every Measurement built without it valid.
    [(f.name, f.type) if f.default is dataclasses.MISSING
     else (f.name, f.type, dataclasses.field(default=f.default))
     for f in dataclasses.fields(RecordKey) if f.name not in PER_RESULT_FIELDS],
    frozen=True,
    namespace={"__module__": __name__, "of": classmethod(_of),
               "__doc__": "A record's key without the net and the seed: protocol, archive, data "
                          "set and store hash, track, label strategy, variant, teacher, "
                          "schedule."})

FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Measurement))

# How each field reads in a message, in the order submit checks them (and diff lists them).
# A field of RecordKey missing here fails tests/test_leaderboard_measurement.py.
_LABELS = {
    "protocol_version": "protocol version",
    "protocol_sha256": "protocol hash",
    "archive_sha256": "archive",
    "dataset": "data set",
    "dataset_sha256": "data-set store hash",
    "track": "track",
    "label_strategy": "label strategy",
    "variant": "evaluation variant",
    "teacher_sha256": "teacher",
    "epochs": "schedule (epochs)",
    "teacher_profile": "teacher profile",
    "formation": "temporal formation",
}
FIELD_LABELS = {name: label for name, label in _LABELS.items() if name in FIELD_NAMES}


def shown(value: Any) -> str:
    """A field's value in a message: a sha256 as its first 12 hex digits (a teacher profile's
    too, after its name), anything else as is."""
    text = str(value)
    if re.fullmatch(r"[0-9a-f]{64}", text):
        return text[:12]
    profile = re.fullmatch(r"([A-Za-z0-9_-]+@)([0-9a-f]{64})", text)
    return profile.group(1) + profile.group(2)[:12] if profile else text
