"""Issue 19: result records name the machine that made them (optional, provenance only), and
``vdcbench verify`` tells another CPU from another result.

Nothing here trains: the comparison is tested on constructed record pairs, and the record that
``evaluate`` writes is built by hand from what ``this_machine`` reads."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from vdcbench.cli.verify import seed_line
from vdcbench.core.errors import VdcError
from vdcbench.evaluation.machine import Machine, this_machine
from vdcbench.evaluation.records import EvalRecord, RecordKey, find_record, load_records
from vdcbench.leaderboard.entry import Entry, SeedResult
from vdcbench.leaderboard.verification import Status, Verification, status_problem
from vdcbench.leaderboard.verify import (DEFAULT_CPU_TOLERANCE, UNKNOWN_CPU, Outcome,
                                         VerifyReport, claim_from_entry, claim_from_records,
                                         compare_seed, earned_status, merged_checked,
                                         other_cpu)

COMMITTED = Path(__file__).resolve().parents[1] / "submissions" / "records"
CLIP = 100 / 300                      # one of synthetic's 300 validation clips, in points
EPYC = Machine(device="cpu", torch=torch.__version__, cpu="AMD EPYC", cpu_capability="AVX2",
               architecture="x86_64")
XEON = Machine(device="cpu", torch=torch.__version__, cpu="Intel(R) Xeon(R) Platinum 8375C",
               cpu_capability="AVX512", architecture="x86_64")


def _record(machine: Machine | None = None, seed: int = 1, **changes) -> EvalRecord:
    """K-Center IPC 1 hard seed 1 as committed (figures of issue 19's measurement)."""
    key = RecordKey(archive_sha256="9" * 64, protocol_version=1, protocol_sha256="b" * 64,
                    dataset="synthetic", dataset_sha256="d" * 64, track="ipc1-t8",
                    label_strategy="hard", variant="official", net="minic3d",
                    teacher_sha256=None, seed=seed)
    body = dict(key=key, method={"name": "kcenter", "kind": "selection", "seed": 0},
                top1=62 * CLIP, top5=200 * CLIP, reference_best_top1=64 * CLIP, official=True,
                epochs=300, iterations=300, batch_size=10, wall_seconds=186.66, device="cpu",
                weights_sha256="e2" * 32, final_loss=0.0096, ledger={},
                versions={"vdcbench": "0.1.0", "torch": torch.__version__, "python": "3.11.7"},
                by_epoch_top1={"299": 62 * CLIP}, torch_threads=1, machine=machine)
    body.update(changes)
    return EvalRecord(**body)


# The re-score issue 19 measured on another CPU: top-1 -1 clip, top-5 +3, the reference -3.
MOVED = dict(top1=61 * CLIP, top5=203 * CLIP, reference_best_top1=61 * CLIP,
             weights_sha256="30" * 32, final_loss=0.0084)


# ------------------------------------------------------------------------------ the record
def test_this_machine_names_the_cpu_torch_and_device():
    machine = this_machine("cpu")
    assert machine.device == "cpu" and machine.torch == torch.__version__
    assert machine.cpu_capability == torch.backends.cpu.get_cpu_capability()
    assert machine.cpu                  # /proc/cpuinfo or platform: this machine says its model
    assert Machine.from_dict(machine.to_dict()) == machine


def test_an_evaluation_writes_the_machine_into_its_record(protocol, tmp_path, random_ipc1):
    """A 2-epoch evaluation (the tiny preset the record tests use) names this machine."""
    from vdcbench.archive import read_archive
    from vdcbench.evaluation.scoring import EvalSettings, Evaluation

    evaluation = Evaluation(protocol, read_archive(random_ipc1[1]),
                            EvalSettings(seeds=(0,), epochs=2), tmp_path)
    record = evaluation.run_seed(0)
    assert record.machine == this_machine("cpu")
    stored = json.loads(next(tmp_path.rglob("seed0.json")).read_text())
    assert stored["machine"] == this_machine("cpu").to_dict()
    assert "machine" not in stored["key"]
    assert EvalRecord.from_disk(next(tmp_path.rglob("seed0.json"))) == record


@pytest.mark.parametrize("machine", [EPYC, Machine(device="NVIDIA H200", torch="2.14.1"), None])
def test_a_record_with_or_without_its_machine_round_trips(tmp_path, machine):
    record = _record(machine)
    path = record.to_disk(tmp_path)
    data = json.loads(path.read_text())
    if machine is None:
        assert "machine" not in data     # records keep the bytes they had before the field
    else:
        assert data["machine"] == machine.to_dict()
        assert "cpu" not in data["machine"] or data["machine"]["cpu"] == machine.cpu
    loaded = EvalRecord.from_disk(path)  # checked against the result schema on the way
    assert loaded == record and loaded.machine == machine
    assert loaded.to_dict() == data


def test_the_machine_is_provenance_not_identity(tmp_path):
    """Another machine is the same measurement: same key, path and cell; a resume finds it."""
    here, there = _record(EPYC), _record(XEON)
    assert here.key == there.key and here.key.cell() == there.key.cell()
    assert here.relative_path() == there.relative_path() == _record(None).relative_path()
    there.to_disk(tmp_path)
    assert find_record(tmp_path, here.key, "kcenter") == there
    # An entry's seed (its compared figures) does not carry it either.
    assert SeedResult.from_record(here) == SeedResult.from_record(there)


def test_committed_records_load_unchanged_and_name_no_machine():
    paths = sorted(COMMITTED.rglob("seed*.json"))
    assert paths
    for path in paths:
        data = json.loads(path.read_text())
        record = EvalRecord.from_disk(path)
        assert record.to_dict() == data, path
        if "machine" not in data:
            assert record.machine is None
    assert len(load_records(COMMITTED)) == len(paths)


@pytest.mark.parametrize("machine, where", [
    ({"cpu": "AMD EPYC"}, "machine"),                       # no device
    ({"device": "cpu", "cpu": 3}, "machine/cpu"),
    ({"device": "cpu", "gpu_count": "1"}, "machine"),       # a field nobody documents
    ("AMD EPYC", "machine"),
])
def test_a_malformed_machine_is_refused_in_one_line(tmp_path, machine, where):
    path = _record(EPYC).to_disk(tmp_path)
    data = json.loads(path.read_text())
    data["machine"] = machine
    path.write_text(json.dumps(data))
    with pytest.raises(VdcError) as error:
        EvalRecord.from_disk(path)
    message = str(error.value)
    assert "\n" not in message and f"breaks the schema at {where}" in message


def test_a_schema_refusal_naming_a_key_with_a_newline_stays_one_line(tmp_path):
    """Found by tests/test_fuzz_records.py: the refusal names where the record breaks the
    schema, and a key is the file's own text."""
    path = _record(EPYC).to_disk(tmp_path)
    data = json.loads(path.read_text())
    data["by_epoch_top1"] = {"\n": None}
    path.write_text(json.dumps(data))
    with pytest.raises(VdcError) as error:
        EvalRecord.from_disk(path)
    assert "\n" not in str(error.value) and "by_epoch_top1/\\n" in str(error.value)


def test_a_hand_built_malformed_machine_is_refused():
    with pytest.raises(ValueError, match="unknown field"):
        Machine.from_dict({"device": "cpu", "flags": "avx2"})
    with pytest.raises(ValueError, match="device"):
        Machine.from_dict({"cpu": "AMD EPYC"})


# ------------------------------------------------------------------------------ comparison
def _compare(claimed_machine, measured, **kwargs):
    claimed = SeedResult.from_record(_record(claimed_machine))
    return compare_seed("minic3d", claimed, measured, 2.0, machine=claimed_machine, **kwargs)


def test_identical_stays_identical_whatever_the_machines_say():
    for claimed_machine, ours in ((EPYC, EPYC), (XEON, EPYC), (None, EPYC), (None, None)):
        check = _compare(claimed_machine, _record(ours))
        assert check.outcome is Outcome.IDENTICAL, (claimed_machine, ours)
        assert not check.differences and not check.notes
        # Conditions are still said (bit for bit across CPUs is news worth a line).
        assert bool(check.reasons) == (claimed_machine is XEON)
        assert "identical" in seed_line(check)


def test_another_cpu_within_its_tolerance_is_reproduced_with_the_reason():
    check = _compare(XEON, _record(EPYC, **MOVED))
    assert check.outcome is Outcome.WITHIN_TOLERANCE
    assert check.reasons == ("another CPU (Intel(R) Xeon(R) Platinum 8375C, AVX512 claimed vs "
                             "AMD EPYC, AVX2 here)",)
    assert check.tolerance == DEFAULT_CPU_TOLERANCE and not check.notes
    assert {d.field for d in check.differences} == {"top1", "top5", "reference_best_top1",
                                                    "weights_sha256", "final_loss"}
    line = seed_line(check)
    assert "within tolerance" in line and "±1.5 points" in line and "another CPU" in line
    # Only the capability differing (the same model, kernels for another instruction set).
    check = _compare(dataclasses.replace(EPYC, cpu_capability="AVX512"), _record(EPYC, **MOVED))
    assert check.outcome is Outcome.WITHIN_TOLERANCE
    assert check.reasons == ("another CPU (AMD EPYC, AVX512 claimed vs AMD EPYC, AVX2 here)",)


def test_another_cpu_beyond_its_tolerance_is_different_naming_the_fields():
    beyond = dict(MOVED, top1=56 * CLIP)                 # 6 clips, 2 points: past 1.5
    check = _compare(XEON, _record(EPYC, **beyond))
    assert check.outcome is Outcome.DIFFERENT
    assert [d.field for d in check.outside] == ["top1"]
    assert check.reasons and not check.notes              # the CPU is known: not the excuse
    line = seed_line(check)
    assert "different" in line and "top1" in line and "another CPU" in line
    assert "does not say which CPU" not in line
    # A tighter stated tolerance: one clip, and exactly one clip is within it.
    check = _compare(XEON, _record(EPYC, **dict(MOVED, top5=201 * CLIP,
                                                reference_best_top1=63 * CLIP)),
                     cpu_tolerance=CLIP)
    assert check.outcome is Outcome.WITHIN_TOLERANCE and check.tolerance == CLIP
    check = _compare(XEON, _record(EPYC, **MOVED), cpu_tolerance=CLIP)
    assert check.outcome is Outcome.DIFFERENT
    assert [d.field for d in check.outside] == ["top5", "reference_best_top1"]


def test_a_record_naming_no_machine_that_differs_is_different_and_says_why():
    check = _compare(None, _record(EPYC, **MOVED))
    assert check.outcome is Outcome.DIFFERENT and check.reasons == ()
    assert check.notes == (UNKNOWN_CPU,)
    assert [d.field for d in check.outside] == ["top1", "top5", "reference_best_top1",
                                                "final_loss", "weights_sha256"]
    assert "does not say which CPU made it" in seed_line(check)
    # A record naming a machine without its model or capability cannot tell either.
    check = _compare(Machine(device="cpu", torch=torch.__version__), _record(EPYC, **MOVED))
    assert check.outcome is Outcome.DIFFERENT and check.notes == (UNKNOWN_CPU,)


def test_the_same_cpu_that_differs_is_a_different_result():
    """Same CPU, threads, device and torch: nothing explains a move, so the code (or the
    claim) changed; no note offers the CPU as an excuse."""
    check = _compare(EPYC, _record(EPYC, **dict(MOVED, top1=62 * CLIP - 1e-12)))
    assert check.outcome is Outcome.DIFFERENT and not check.reasons and not check.notes


def test_several_reasons_get_the_loosest_tolerance():
    """Another CPU and another thread count: the thread count's 2 points apply."""
    measured = _record(EPYC, **dict(MOVED, top1=57 * CLIP), torch_threads=2)   # 5 clips
    check = _compare(XEON, measured)
    assert check.outcome is Outcome.WITHIN_TOLERANCE and check.tolerance == 2.0
    assert check.reasons[0].startswith("another thread count")
    assert check.reasons[1].startswith("another CPU")


def test_another_process_count_is_a_reason_under_the_general_tolerance():
    """A record of a data-parallel run (world_size 2) re-scored in one process."""
    claimed = SeedResult.from_record(_record(EPYC, world_size=2))
    check = compare_seed("minic3d", claimed, _record(EPYC, **MOVED), 2.0, machine=EPYC,
                         world_size=2)
    assert check.outcome is Outcome.WITHIN_TOLERANCE and check.tolerance == 2.0
    assert check.reasons == ("another process count (1 here, 2 claimed)",)


def test_other_cpu_needs_both_machines():
    assert other_cpu(None, EPYC) is None and other_cpu(EPYC, None) is None
    assert other_cpu(EPYC, EPYC) is None
    assert other_cpu(EPYC, dataclasses.replace(EPYC, architecture="aarch64")) is not None


# ------------------------------------------------------------------------------ claims, statuses
def _entry_with_records(tmp_path, protocol, machine: Machine | None) -> tuple[Entry, Path]:
    from vdcbench.archive import write_archive
    from vdcbench.archive.condensed import CondensedSet, MethodInfo
    from vdcbench.data.splits import dataset_sha256
    from vdcbench.leaderboard.submit import submit

    root = tmp_path / "submissions"
    archive = root / "archives" / "mine.tar"
    archive.parent.mkdir(parents=True)
    videos = torch.randint(0, 256, (10, 3, 8, 56, 56), generator=torch.Generator().manual_seed(0),
                           dtype=torch.uint8)
    sha = write_archive(CondensedSet(
        videos=videos, labels=torch.arange(10, dtype=torch.int64), dataset="synthetic",
        track="ipc1-t8", method=MethodInfo(name="mine", kind="selection", seed=0,
                                           wall_seconds=1.0, device="cpu", config={}),
        label_strategy="hard"), archive, protocol=protocol)
    records = []
    for seed in (0, 1):
        record = _record(machine, seed=seed, method={"name": "mine", "kind": "selection",
                                                       "seed": 0})
        key = dataclasses.replace(record.key, archive_sha256=sha,
                                  protocol_sha256=protocol.sha256,
                                  dataset_sha256=dataset_sha256(protocol.dataset("synthetic")))
        records.append(dataclasses.replace(record, key=key))
    for record in records:
        record.to_disk(root / "records")
    entry = submit(records, archive, root=root, authors=["C. Contributor"])
    entry.to_disk(root)
    return entry, root


def test_an_entry_claim_reads_each_seeds_machine_from_its_record(tmp_path, protocol):
    entry, root = _entry_with_records(tmp_path, protocol, XEON)
    claim = claim_from_entry(entry, root)
    assert claim.machines == {("minic3d", 0): XEON, ("minic3d", 1): XEON}
    assert {pair: r.weights_sha256 for pair, r in claim.records.items()} == {
        ("minic3d", s.seed): s.weights_sha256 for s in entry.net("minic3d").seeds}
    # An archive and its records as the claim: the records' own machines.
    records = load_records(root / "records")
    assert claim_from_records(claim.archive, records).machines == claim.machines
    # A record that is not the one the entry holds (another weights hash) vouches for nothing.
    [path] = [p for p in (root / "records").rglob("seed1.json")]
    data = json.loads(path.read_text())
    data["weights_sha256"] = "00" * 32
    path.write_text(json.dumps(data))
    assert claim_from_entry(entry, root).machines == {("minic3d", 0): XEON}


def test_an_entry_whose_records_name_no_machine_claims_none(tmp_path, protocol):
    entry, root = _entry_with_records(tmp_path, protocol, None)
    claim = claim_from_entry(entry, root)
    assert claim.machines == {} and len(claim.records) == 2


def test_a_status_earned_on_another_cpu_is_reproduced_and_validates(tmp_path, protocol):
    entry, root = _entry_with_records(tmp_path, protocol, XEON)
    claim = claim_from_entry(entry, root)
    checks = tuple(
        compare_seed("minic3d", seed, _record(EPYC, seed=seed.seed, **MOVED), 2.0,
                     machine=claim.machines[("minic3d", seed.seed)])
        for seed in entry.net("minic3d").seeds)
    report = VerifyReport(claim=claim, checks=checks)
    assert report.ok                     # within tolerance counts as matching: exit 0
    status = earned_status(report, "CI", "cpu")
    assert status.status is Status.REPRODUCED and status.tolerance == DEFAULT_CPU_TOLERANCE
    assert "another CPU (Intel(R) Xeon(R) Platinum 8375C, AVX512 claimed" in status.reason
    assert all(c.top1_delta == pytest.approx(-CLIP) for c in status.checked)
    assert status_problem(entry, status) is None
    # A one-clip tolerance with a one-clip move validates too (float slack), a tighter one not.
    exact = dataclasses.replace(status, tolerance=CLIP)
    assert status_problem(entry, exact) is None
    assert "outside" in status_problem(entry, dataclasses.replace(status, tolerance=0.3))
    # The seeds match, so an identical re-score of others keeps the status reproduced.
    verified = dataclasses.replace(status, status=Status.VERIFIED, reason=None, tolerance=None)
    assert merged_checked(status, verified).status is Status.REPRODUCED


def test_a_status_merged_from_two_reasons_keeps_the_loosest_tolerance():
    def status(tolerance, reason, seed, delta):
        from vdcbench.leaderboard.verification import CheckedSeed
        return Verification(status=Status.REPRODUCED, archive_sha256="9" * 64, by="CI",
                            where="cpu", reason=reason, tolerance=tolerance,
                            checked=(CheckedSeed("minic3d", seed, "e2" * 32, 20.0, delta),))
    merged = merged_checked(status(2.0, "another thread count (2 here, 1 claimed)", 0, 1.8),
                            status(1.5, "another CPU (a claimed vs b here)", 1, -0.3))
    assert merged.tolerance == 2.0
    assert merged.reason == ("another thread count (2 here, 1 claimed); "
                             "another CPU (a claimed vs b here)")
    assert [c.seed for c in merged.checked] == [0, 1]

