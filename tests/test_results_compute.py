"""Result records carry the net's forward FLOPs and the run's training compute (optional fields)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from vdcbench.protocol import PROTOCOL_DIR
from vdcbench.evaluation.records import EvalRecord, aggregate, load_records

COMMITTED = Path(__file__).resolve().parents[1] / "submissions" / "records"
SCHEMA = json.loads((PROTOCOL_DIR / "schemas" / "result.schema.json").read_text())


def test_committed_records_with_and_without_compute_validate_load_and_round_trip():
    paths = sorted(COMMITTED.rglob("seed*.json"))
    assert paths, "the committed records are the leaderboard's raw material"
    legacy = 0
    for path in paths:
        data = json.loads(path.read_text())
        jsonschema.validate(data, SCHEMA)
        record = EvalRecord.from_disk(path)
        assert record.to_dict() == data           # rewriting a record changes nothing
        if "train_gflops" not in data:            # written before records carried compute
            legacy += 1
            assert record.net_gflops_forward is None and record.train_gflops is None
        else:
            assert record.train_gflops > 0 and record.net_gflops_forward > 0
    assert legacy, "session-1 records (no compute fields) must keep loading"
    for cell in aggregate(load_records(COMMITTED)):
        # A cell sums compute only when every one of its records carries it.
        assert cell.train_gflops is None or cell.train_gflops > 0


def test_an_evaluation_record_carries_the_nets_flops_and_its_training_compute(protocol, tmp_path,
                                                                              random_ipc1):
    from vdcbench.archive import read_archive
    from vdcbench.evaluation.scoring import EvalSettings, Evaluation
    from vdcbench.models.flops import net_cost

    loaded = read_archive(random_ipc1[1])
    evaluation = Evaluation(protocol, loaded, EvalSettings(seeds=(0,), epochs=2), tmp_path)
    record = evaluation.run_seed(0)
    forward = net_cost(protocol.net("minic3d"), 10, 8, 56).forward_gflops
    clips = 2 * 10                                 # 2 epochs of the ten IPC-1 clips
    assert record.iterations * record.batch_size == clips
    assert record.net_gflops_forward == pytest.approx(forward, abs=1e-6)
    assert record.train_gflops == pytest.approx(3 * forward * clips, abs=1e-3)
    path = next(tmp_path.rglob("seed0.json"))
    jsonschema.validate(json.loads(path.read_text()), SCHEMA)
    assert EvalRecord.from_disk(path) == record
    (cell,) = aggregate([record])
    assert cell.train_gflops == record.train_gflops


def test_schema_refuses_negative_compute():
    data = json.loads(next(COMMITTED.rglob("seed*.json")).read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "train_gflops": -1.0}, SCHEMA)


def test_a_record_that_breaks_the_schema_is_refused_in_one_line(tmp_path):
    from vdcbench.core.errors import VdcError
    from vdcbench.evaluation.records import RecordKey
    key = RecordKey(archive_sha256="a" * 64, protocol_version=1, protocol_sha256="b" * 64,
                    dataset="synthetic", dataset_sha256="d" * 64, track="ipc1-t8",
                    label_strategy="hard", variant="official", net="minic3d",
                    teacher_sha256=None, seed=0)
    record = EvalRecord(key=key, method={"name": "random", "kind": "selection", "seed": 0},
                        top1=20.0, top5=60.0, reference_best_top1=None, official=True,
                        epochs=300, iterations=300, batch_size=10, wall_seconds=1.0,
                        device="cpu", weights_sha256="e" * 64, final_loss=0.1, ledger={},
                        versions={}, by_epoch_top1={"299": 20.0})
    path = record.to_disk(tmp_path)
    assert EvalRecord.from_disk(path) == record
    data = json.loads(path.read_text())
    data["top1"] = 140.0          # a hand edit past 100 %
    path.write_text(json.dumps(data))
    with pytest.raises(VdcError) as caught:
        EvalRecord.from_disk(path)
    message = str(caught.value)
    assert "breaks the schema at top1" in message and "\n" not in message


SUBMISSIONS = COMMITTED.parent


def test_every_committed_record_reserialises_byte_identically():
    """The absolute rule of typed records: reading a committed record and writing it back, as
    ``write_json_atomic`` writes, gives the file's bytes."""
    from vdcbench.evaluation.records import RecordedMethod, RuntimeVersions
    paths = [p for p in sorted(SUBMISSIONS.rglob("seed*.json"))
             if json.loads(p.read_text()).get("format") == "vdcbench-result"]
    assert len([p for p in paths if COMMITTED in p.parents]) >= 80
    for path in paths:
        record = EvalRecord.from_disk(path)
        assert isinstance(record.method, RecordedMethod)
        assert isinstance(record.versions, RuntimeVersions)
        written = json.dumps(record.to_dict(), indent=2, sort_keys=True) + "\n"
        assert written.encode("utf-8") == path.read_bytes(), path


def test_old_records_without_optional_fields_still_load_and_round_trip():
    data = json.loads(next(COMMITTED.rglob("seed*.json")).read_text())
    data["method"] = {"name": "random", "kind": "selection", "seed": None}   # no config yet
    data["versions"] = {"torch": "2.4.0", "numpy": "1.26"}                    # another package
    for optional in ("net_gflops_forward", "train_gflops", "torch_threads"):
        data.pop(optional, None)
    record = EvalRecord.from_dict(data)
    assert record.method.name == "random" and record.method.config is None
    assert record.method.name == "random" and record.versions.to_dict() == data["versions"]
    assert record.versions.torch == "2.4.0" and record.versions.vdcbench is None
    assert record.to_dict() == data


# Issue 16 item 9: 12 committed records predate torch_threads (and compute); displays say
# "unknown" for them instead of implying a value.
def _without_threads() -> list[Path]:
    return sorted(p for p in COMMITTED.rglob("seed*.json")
                  if "torch_threads" not in json.loads(p.read_text()))


def test_twelve_committed_records_lack_a_thread_count_and_say_so_as_unknown():
    from vdcbench.cli.evaluate import threads, tflop
    old = _without_threads()
    assert len(old) == 12
    (cell,) = aggregate([EvalRecord.from_disk(p) for p in old[:3]])
    assert cell.torch_threads == (None,) and cell.train_gflops is None
    assert threads(cell.torch_threads) == "unknown" and tflop(cell.train_gflops) == "unknown"
    assert threads((1, None)) == "1, unknown" and threads((1,)) == "1"


def test_results_and_diff_show_an_unrecorded_thread_count_as_unknown(tmp_path):
    from click.testing import CliRunner

    from vdcbench.cli import main
    from vdcbench.leaderboard.diff import diff
    old = _without_threads()[0]
    new = next(p for p in COMMITTED.rglob("seed*.json") if p not in _without_threads())
    folder = tmp_path / "records"
    for path in (old, new):
        target = folder / path.relative_to(COMMITTED)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    result = CliRunner().invoke(main, ["results", str(folder)], terminal_width=250)
    assert result.exit_code == 0, result.output
    archive, net = old.parts[-4][-12:][:8], old.parts[-3]
    row = next(line for line in result.output.splitlines() if archive in line and net in line)
    assert row.count("unknown") == 2 and " - " not in row   # compute and threads
    threads = next(f for f in diff(old, new).fields if f.field == "torch threads")
    assert threads.a == "unknown" and threads.b == "1"
