"""The training-step throughput measurement (the GPU check of the evaluation nets) on a CPU."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from vdcbench.cli import main
from vdcbench.models.flops import net_cost
from vdcbench.models.step_throughput import known_peak_tflops, measure_step


def test_a_step_measurement_credits_the_counted_flops_and_divides_by_the_peak(protocol):
    spec = protocol.net("minic3d")
    row = measure_step(spec, 10, batch=2, frames=8, crop=56, precision="bf16", device="cpu",
                       steps=1, warmup=0, peak_tflops=2.0)
    assert row.clips_per_second == pytest.approx(2 / row.seconds_per_step)
    gflops = net_cost(spec, 10, 8, 56).train_gflops_per_clip * 2
    assert row.achieved_tflops == pytest.approx(gflops / row.seconds_per_step / 1e3)
    assert row.fraction_of_peak == pytest.approx(row.achieved_tflops / 2.0)
    assert row.peak_memory_gib is None and row.to_dict()["precision"] == "bf16"


def test_no_peak_is_guessed_for_a_cpu():
    assert known_peak_tflops(torch.device("cpu")) is None


def test_bad_precision_is_refused(protocol):
    with pytest.raises(ValueError, match="precision"):
        measure_step(protocol.net("minic3d"), 10, 2, 8, 56, "fp8", "cpu")


def test_cli_writes_its_rows_and_refuses_bad_input_in_one_line(tmp_path):
    runner = CliRunner()
    path = tmp_path / "rows.json"
    done = runner.invoke(main, ["step-throughput", "--device", "cpu", "--net", "minic3d",
                                "--batch", "2", "--crop", "56", "--precision", "float32",
                                "--steps", "1", "--warmup", "0", "--json", str(path)])
    assert done.exit_code == 0, done.output
    rows = json.loads(path.read_text())["rows"]
    assert [(r["net"], r["batch"], r["precision"]) for r in rows] == [("minic3d", 2, "float32")]
    for args, message in ((["--batch", "0"], "--batch must be positive"),
                          (["--precision", "fp8"], "unknown precision 'fp8'"),
                          (["--net", "nosuchnet"], "unknown net 'nosuchnet'")):
        refused = runner.invoke(main, ["step-throughput", "--device", "cpu", *args])
        assert refused.exit_code == 2
        assert len(refused.output.strip().splitlines()) == 1 and message in refused.output
