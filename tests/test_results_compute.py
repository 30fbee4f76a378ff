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


def test_committed_records_without_compute_still_validate_load_and_round_trip():
    paths = sorted(COMMITTED.rglob("seed*.json"))
    assert paths, "the committed records are the leaderboard's raw material"
    for path in paths:
        data = json.loads(path.read_text())
        assert "train_gflops" not in data
        jsonschema.validate(data, SCHEMA)
        record = EvalRecord.from_disk(path)
        assert record.net_gflops_forward is None and record.train_gflops is None
        assert record.to_dict() == data           # rewriting an old record changes nothing
    assert all(c.train_gflops is None for c in aggregate(load_records(COMMITTED)))


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
