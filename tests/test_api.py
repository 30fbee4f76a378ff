"""The library API under the CLI: the README's Python block runs as written (on a shortened
schedule), evaluate_archive resumes from records without retraining and sets every net up before
any trains, the report aggregates through core.stats, and run_baseline is the CLI's job."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

import vdcbench
from vdcbench.core.errors import VdcError
from vdcbench.evaluation.progress import Progress
from vdcbench.evaluation.records import EvalRecord, RecordKey
from vdcbench.evaluation.report import NetResult
from vdcbench.evaluation.scoring import Evaluation

ROOT = Path(__file__).resolve().parents[1]


def _readme_python_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Use it from Python", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return block


@pytest.mark.slow   # 84 s on a loaded core (3 Dec); CI runs it in its `pytest -m slow` step
def test_the_readme_python_block_runs(tmp_path, monkeypatch):
    code = _readme_python_block()
    # The README shows the protocol's schedule; the test runs one seed of one epoch. Each
    # substitution must hit, so the block the test runs is the block the README shows.
    shortened = code.replace("seeds=(0, 1, 2)", "seeds=(0,)").replace(
        'results_dir="records")', 'results_dir="records", epochs=1)')
    assert shortened.count("epochs=1") == 1 and "seeds=(0,)" in shortened
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(shortened, "README.md", "exec"), {})
    assert (tmp_path / "r.tar").is_file()
    assert len(list((tmp_path / "records").rglob("seed0.json"))) == 1
    assert "minic3d" in printed.getvalue() and "'n': 1" in printed.getvalue()


def test_the_api_is_exported_lazily_and_documented():
    for name in ("evaluate_archive", "evaluate_cell", "run_baseline"):
        function = getattr(vdcbench, name)
        assert all(word in function.__doc__ for word in ("Args:", "Returns:", "Raises:"))
    assert "evaluate_archive" in dir(vdcbench)
    with pytest.raises(AttributeError):
        vdcbench.no_such_name  # noqa: B018


class Recorder(Progress):
    def __init__(self):
        self.events = []

    def evaluation_started(self, nets, seeds):
        self.events.append(("started", nets, seeds))

    def seed_reused(self, net, record):
        self.events.append(("reused", net, record.key.seed))

    def seed_started(self, net, seed, epochs):
        self.events.append(("seed", net, seed, epochs))

    def evaluation_epoch(self, net, seed, epoch, epochs, loss):
        self.events.append(("epoch", net, seed, epoch))


@pytest.mark.slow   # 45 s on a loaded core (3 Dec); CI runs it in its `pytest -m slow` step
def test_a_rerun_reuses_every_record_without_training(tmp_path, random_ipc1, monkeypatch):
    archive, records = random_ipc1[1], tmp_path / "records"
    first = Recorder()
    report = vdcbench.evaluate_archive(archive, seeds=(0, 1), epochs=1, results_dir=records,
                                       progress=first)
    (result,) = report.nets
    assert result.run_seeds == (0, 1) and result.reused_seeds == ()
    assert first.events[0] == ("started", ("minic3d",), (0, 1))
    assert ("seed", "minic3d", 1, 1) in first.events and ("epoch", "minic3d", 1, 1) in first.events

    def no_training(self, seed, progress=None):
        raise AssertionError(f"seed {seed} trained again")

    monkeypatch.setattr(Evaluation, "run_seed", no_training)
    second = Recorder()
    again = vdcbench.evaluate_archive(archive, seeds=(0, 1), epochs=1, results_dir=records,
                                      progress=second)
    assert again.nets[0].reused_seeds == (0, 1) and again.records == report.records
    assert second.events[1:] == [("reused", "minic3d", 0), ("reused", "minic3d", 1)]
    assert again.to_dict() == report.to_dict()
    # One cell: the same record, found the same way.
    assert vdcbench.evaluate_cell(archive, "minic3d", 1, epochs=1,
                                  results_dir=records) == report.records[1]


def test_a_missing_teacher_fails_before_any_net_trains(protocol, tmp_path, monkeypatch):
    import vdcbench.train.teacher as teacher
    from vdcbench.archive import write_archive
    from vdcbench.core.artifacts import ArtifactStore
    from vdcbench.methods.base import CondensationTask
    from vdcbench.methods.random_selection import RandomSelection

    track = protocol.track("synthetic", "ipc1-t8")
    task = CondensationTask(protocol, track, "multi-sl", 0, ArtifactStore(tmp_path / "a"))
    write_archive(RandomSelection().condense(task), tmp_path / "m.tar", protocol=protocol)
    # Only the shipped MiniC3D teacher exists: i3d_r18's is missing.
    monkeypatch.setattr(teacher, "teacher_dirs", lambda: [teacher.SHIPPED_DIR])
    trained = []
    monkeypatch.setattr(Evaluation, "run_seed", lambda self, seed, progress=None:
                        trained.append(seed))
    with pytest.raises(VdcError, match="vdcbench teacher train --dataset synthetic --net i3d_r18"):
        vdcbench.evaluate_archive(tmp_path / "m.tar", nets="minic3d,i3d_r18", seeds=(0,),
                                  epochs=1, results_dir=tmp_path / "r")
    assert trained == [] and not (tmp_path / "r").exists()


def _record(seed: int, top1: float, *, official=True, gflops=None) -> EvalRecord:
    key = RecordKey(archive_sha256="a" * 64, protocol_version=1, protocol_sha256="b" * 64,
                    dataset="synthetic", dataset_sha256="c" * 64, track="ipc1-t8",
                    label_strategy="hard", variant="official", net="minic3d",
                    teacher_sha256=None, seed=seed)
    return EvalRecord(key=key, method={"name": "random", "kind": "selection", "seed": 0},
                      top1=top1, top5=top1 + 40, reference_best_top1=None, official=official,
                      epochs=300, iterations=300, batch_size=10, wall_seconds=100.0 + seed,
                      device="cpu", weights_sha256="d" * 64, final_loss=0.1, ledger={},
                      versions={"torch": "2.9.0"}, train_gflops=gflops)


def test_the_report_aggregates_mean_sample_std_and_n():
    result = NetResult(net="minic3d", records=(_record(0, 10.0, gflops=1.0),
                                               _record(1, 20.0, gflops=2.0),
                                               _record(2, 30.0, official=False)),
                       reused_seeds=(1,))
    assert (result.top1.mean, result.top1.std, result.top1.n) == (20.0, 10.0, 3)
    assert result.top5.mean == 60.0 and result.top1.format(2) == "20.00 ± 10.00"
    assert result.run_seeds == (0, 2) and not result.official
    assert result.train_gflops is None and result.wall_seconds == 303.0   # one predates compute
    assert result.summary_dict() == {"n": 3, "top1_mean": 20.0, "top1_std": 10.0,
                                     "top5_mean": 60.0, "top5_std": 10.0}
    single = NetResult(net="minic3d", records=(_record(0, 12.5, gflops=1.0),))
    assert single.top1.std == 0.0 and single.top1.format(2) == "12.50"
    assert single.train_gflops == 1.0 and single.official


def test_run_baseline_writes_the_archive_the_cli_wrote(tmp_path):
    from vdcbench.archive import read_archive

    made = vdcbench.run_baseline("random", dataset="synthetic", ipc=1, output=tmp_path / "r.tar")
    assert made.path == tmp_path / "r.tar" and made.bytes == made.path.stat().st_size
    loaded = read_archive(made.path)
    assert loaded.sha256 == made.sha256 and made.condensed.videos.equal(loaded.condensed.videos)
    committed = read_archive(ROOT / "submissions" / "archives" / "random-synthetic-ipc1-hard-s0.tar")
    assert committed.condensed.videos.equal(loaded.condensed.videos)
    assert committed.condensed.labels.equal(loaded.condensed.labels)
    with pytest.raises(VdcError, match="--overwrite"):
        vdcbench.run_baseline("random", dataset="synthetic", ipc=1, output=made.path)


@pytest.mark.parametrize("kwargs, message", [
    ({"dataset": "synthetik", "ipc": 1}, "did you mean 'synthetic'"),
    ({"dataset": "synthetic", "ipc": 3}, "unknown track"),
    ({"dataset": "synthetic", "ipc": 1, "settings": {"x": 1}}, "unknown random setting"),
    ({"dataset": "synthetic", "ipc": 1, "label_strategy": "sof"}, "unknown label strategy"),
])
def test_run_baseline_refuses_before_condensing(tmp_path, monkeypatch, kwargs, message):
    from vdcbench.methods.random_selection import RandomSelection
    monkeypatch.setattr(RandomSelection, "condense",
                        lambda self, task: pytest.fail("condensed despite a bad argument"))
    with pytest.raises(VdcError, match=message):
        vdcbench.run_baseline("random", output=tmp_path / "x.tar", **kwargs)


def test_all_means_the_evaluation_nets_and_every_means_every_net(protocol):
    from vdcbench.evaluation.scoring import evaluation_nets, parse_nets
    assert parse_nets(protocol, "all") == evaluation_nets(protocol)
    assert parse_nets(protocol, "every") == tuple(protocol.nets)
    assert "minic3d-in" in parse_nets(protocol, "every")
    assert "minic3d-in" not in parse_nets(protocol, "all")
