"""Property-based fuzzing of the result-record reader (``EvalRecord.from_disk``) and the
leaderboard entry validator (``validate_entries``, what ``vdcbench leaderboard validate`` runs),
with committed records and entries mutated structurally (fields removed, retyped, replaced by
junk, huge numbers, NaN, Infinity, 1e400, nested junk, a repeated key) or byte by byte.

Property (see ``fuzz_strategies``): a valid read or one ``VdcError`` of one line, nothing written
outside tmp. A record that is read must also behave: its path stays under the results folder and
it aggregates; an entry that validates must re-serialise.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz_strategies import (Outcome, expect_valid_or_refused, fuzz_settings, json_documents,
                             memory_bounded, no_writes_outside)
from vdcbench.evaluation.records import EvalRecord, aggregate
from vdcbench.leaderboard.entry import ENTRY_FILE
from vdcbench.leaderboard.validate import validate_entries

ROOT = Path(__file__).resolve().parents[1]
SUBMISSIONS = ROOT / "submissions"


def _committed(pattern: str, picks: tuple[str, ...]) -> list[Path]:
    """One committed file per substring of ``picks`` (a hard, a soft, a teacher-labelled ...)."""
    every = sorted(SUBMISSIONS.glob(pattern))
    chosen = []
    for pick in picks:
        match = next((p for p in every if pick in p.as_posix() and p not in chosen), None)
        if match is not None:
            chosen.append(match)
    return chosen or every[:1]


RECORDS = _committed("records/**/seed*.json", ("/hard-official/seed0", "/soft-official/",
                                              "/multi-sl-official/", "/hard-official/seed2"))
ENTRIES = _committed("*/*/entry.json", ("-hard-", "-soft-", "-multi-sl-"))
RECORD_OUTCOME = Outcome("records")
ENTRY_OUTCOME = Outcome("entries")


def _documents(paths: list[Path]) -> st.SearchStrategy:
    return st.one_of(*[json_documents(json.loads(p.read_text())) for p in paths])


def test_the_seeds_are_valid(tmp_path):
    assert RECORDS and ENTRIES
    for path in RECORDS:
        EvalRecord.from_disk(path)
    root = tmp_path / "submissions"
    for path in ENTRIES:
        target = root / path.parent.parent.name / path.parent.name / ENTRY_FILE
        target.parent.mkdir(parents=True)
        target.write_bytes(path.read_bytes())
    assert len(validate_entries(root, read_archives=False)) == len(ENTRIES)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-records")


def read_record(path: Path) -> EvalRecord:
    record = EvalRecord.from_disk(path)
    # A record read is one the harness may re-write under a results folder and average.
    relative = record.relative_path()
    assert not relative.is_absolute() and ".." not in relative.parts, relative
    record.to_dict()
    aggregate([record])
    return record


@fuzz_settings(ci_examples=1000)
@given(blob=_documents(RECORDS))
def test_fuzz_record(blob, workdir):
    path = workdir / "seed0.json"
    path.write_bytes(blob)
    with no_writes_outside(workdir), memory_bounded():
        expect_valid_or_refused(lambda: read_record(path), RECORD_OUTCOME)


def check_entries(root: Path):
    entries = validate_entries(root, read_archives=False)
    for entry in entries:
        entry.to_dict()
    return entries


@fuzz_settings(ci_examples=600)
@given(data=st.data())
def test_fuzz_entry(data, workdir):
    original = data.draw(st.sampled_from(ENTRIES))
    blob = data.draw(json_documents(json.loads(original.read_text())))
    root = workdir / "submissions"
    path = root / original.parent.parent.name / original.parent.name / ENTRY_FILE
    for old in root.glob(f"*/*/{ENTRY_FILE}"):
        old.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    with no_writes_outside(workdir), memory_bounded():
        expect_valid_or_refused(lambda: check_entries(root), ENTRY_OUTCOME)


def teardown_module(module):
    for outcome in (RECORD_OUTCOME, ENTRY_OUTCOME):
        if outcome.total:
            print("\n" + outcome.summary())
