"""Result records carry the net's forward FLOPs and the run's training compute (optional fields)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from vdcbench.protocol import PROTOCOL_DIR
from vdcbench.results import EvalRecord, aggregate, load_records

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
    from vdcbench.evaluate import EvalSettings, Evaluation
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
