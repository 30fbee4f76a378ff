"""The command line: the README's job end to end (shortened), and one-line errors with exit 2."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from vdcbench.cli import main


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.slow   # 46 s on a loaded core (3 Dec); CI runs it in its `pytest -m slow` step
def test_run_baseline_validate_evaluate_and_resume(tmp_path):
    archive = tmp_path / "r.tar"
    result = _run("run-baseline", "random", "--dataset", "synthetic", "--ipc", "1", "-o", archive)
    assert result.exit_code == 0, result.output
    assert archive.is_file()
    result = _run("validate", archive)
    assert result.exit_code == 0 and "frame bytes" in result.output
    records, summary = tmp_path / "records", tmp_path / "out" / "summary.json"
    summary.parent.mkdir()
    args = ("evaluate", archive, "--seeds", "0,1", "--epochs", "2", "--results-dir", records,
            "--json", summary)
    result = _run(*args)
    assert result.exit_code == 0, result.output
    assert "NOT official" in result.output
    data = json.loads(summary.read_text())
    assert data["summary"]["n"] == 2 and len(list(records.rglob("seed*.json"))) == 2
    assert all(not r["official"] and r["iterations"] == 2 for r in data["records"])
    # Each record carries the method's settings, so tables can tell two settings apart.
    from vdcbench.archive import read_archive
    config = dict(read_archive(archive).condensed.method.config)
    assert all(r["method"]["config"] == config for r in data["records"])
    # A rerun reuses the records instead of training again.
    again = _run(*args)
    assert again.exit_code == 0 and again.output.count("reusing record") == 2


def test_same_seed_gives_the_same_archive_content(tmp_path):
    from vdcbench.archive import read_archive
    for name in ("a.tar", "b.tar"):
        assert _run("run-baseline", "random", "--dataset", "synthetic", "--ipc", "1",
                    "--seed", "4", "-o", tmp_path / name).exit_code == 0
    a, b = read_archive(tmp_path / "a.tar").condensed, read_archive(tmp_path / "b.tar").condensed
    assert a.videos.equal(b.videos) and a.labels.equal(b.labels)


@pytest.mark.parametrize("args, message", [
    (("run-baseline", "random", "--dataset", "synthetik", "--ipc", "1"), "did you mean 'synthetic'"),
    (("run-baseline", "random", "--dataset", "synthetic", "--ipc", "3"), "unknown track 'ipc3-t8'"),
    (("run-baseline", "randm", "--dataset", "synthetic", "--ipc", "1"), "did you mean 'random'"),
    (("run-baseline", "random", "--dataset", "synthetic", "--ipc", "1", "--label-strategy", "sof"),
     "unknown label strategy"),
    (("run-baseline", "random", "--dataset", "synthetic", "--ipc", "1", "--set", "x=1"),
     "unknown random setting"),
    (("run-baseline", "rded", "--dataset", "synthetic", "--ipc", "1", "--set", "mipc=many"),
     "mipc='many' is not a valid int"),
    (("run-baseline", "rded", "--dataset", "synthetic", "--ipc", "1", "--set", "mipc=0"),
     "mipc must be at least 1"),
    (("run-baseline", "rded", "--dataset", "synthetic", "--ipc", "1", "--set", "mipc"),
     "must look like key=value"),
    (("run-baseline", "random", "--dataset", "ucf101", "--ipc", "1"),
     "run `vdcbench prepare ucf101 --root PATH`"),
    (("run-baseline", "random", "--dataset", "synthetic", "--ipc", "1", "--results-dir", "{tmp}/r"),
     "add --evaluate"),
    (("run-baseline", "random", "--dataset", "synthetic", "--ipc", "1", "-o", "{tmp}/x.tar",
      "--evaluate", "--net", "resnet"), "unknown net"),
    (("evaluate", "missing.tar"), "missing.tar"),
    (("evaluate", "{tmp}/r.tar", "--seeds", "a,b"), "--seeds"),
    (("evaluate", "{tmp}/r.tar", "--net", "resnet"), "unknown net"),
    (("evaluate", "{tmp}/r.tar", "--variant", "mixup"), "unknown evaluation variant"),
    (("evaluate", "{tmp}/r.tar", "--json", "{tmp}/no/such/dir/x.json"), "does not exist"),
    (("validate", "{tmp}/notatar.tar"), "not a tar"),
    (("teacher", "train", "--dataset", "kinetics"), "did you mean 'kinetics400'"),
])
def test_user_errors_are_one_line_with_exit_2(tmp_path, random_ipc1, args, message):
    import shutil
    shutil.copy(random_ipc1[1], tmp_path / "r.tar")
    (tmp_path / "notatar.tar").write_text("hello")
    result = CliRunner().invoke(main, [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output


def test_overwrite_guard_and_no_partial_file(tmp_path):
    out = tmp_path / "r.tar"
    out.write_bytes(b"precious")
    result = _run("run-baseline", "random", "--dataset", "synthetic", "--ipc", "1", "-o", out)
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert out.read_bytes() == b"precious"
    result = _run("run-baseline", "random", "--dataset", "synthetic", "--ipc", "1", "-o",
                  tmp_path / "missing-dir" / "r.tar")
    assert result.exit_code == 2
    assert not (tmp_path / "missing-dir").exists() or not any((tmp_path / "missing-dir").iterdir())
    result = _run("run-baseline", "random", "--dataset", "synthetic", "--ipc", "1", "-o", out,
                  "--overwrite")
    assert result.exit_code == 0 and out.read_bytes() != b"precious"


def test_missing_teacher_names_the_command(tmp_path, monkeypatch):
    import vdcbench.train.teacher as teacher
    monkeypatch.setattr(teacher, "teacher_dirs", lambda: [tmp_path / "nowhere"])
    result = CliRunner().invoke(main, ["run-baseline", "random", "--dataset", "synthetic",
                                       "--ipc", "1", "--label-strategy", "soft", "-o",
                                       str(tmp_path / "s.tar")])
    assert result.exit_code == 2
    assert "vdcbench teacher train --dataset synthetic --net minic3d" in result.output
    assert not (tmp_path / "s.tar").exists()


def test_methods_and_protocol_listings():
    assert "random" in _run("methods").output
    result = _run("protocol")
    assert result.exit_code == 0 and "ipc10-t8" in result.output and "ssv2" in result.output


def test_unwritable_json_is_one_line(tmp_path, random_ipc1, monkeypatch):
    import vdcbench.core.atomic_file as atomic_file

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x"))

    monkeypatch.setattr(atomic_file.tempfile, "mkstemp", refuse)
    result = CliRunner().invoke(main, ["evaluate", str(random_ipc1[1]), "--epochs", "1",
                                       "--seeds", "0", "--results-dir", str(tmp_path / "rec")])
    assert result.exit_code == 2 and "Permission denied" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow   # 42 s on a loaded core (3 Dec); CI runs it in its `pytest -m slow` step
def test_results_aggregates_records_over_seeds(tmp_path, random_ipc1):
    records = tmp_path / "records"
    assert _run("evaluate", random_ipc1[1], "--seeds", "0,1", "--epochs", "1",
                "--results-dir", records).exit_code == 0
    result = _run("results", records)
    assert result.exit_code == 0
    row = next(line for line in result.output.splitlines() if "random" in line)
    assert "not official" in row and "│ 2 " in row
    (tmp_path / "empty").mkdir()
    assert _run("results", tmp_path / "empty").exit_code == 2   # no records there


def test_declared_temporal_track_refuses_a_formation_that_cannot_form_it(tmp_path):
    # Evaluating it end to end (interpolate-linear by default): tests/test_temporal_tracks.py.
    archive = tmp_path / "t4.tar"
    result = _run("run-baseline", "random", "--dataset", "synthetic", "--ipc", "8", "--frames",
                  "4", "-o", archive)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["evaluate", str(archive), "--epochs", "1",
                                       "--formation", "segment"])
    assert result.exit_code == 2 and "segment needs a multiple of 8 frames" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.slow   # about a minute; CI runs it in its `pytest -m slow` step
def test_train_teacher_flag_trains_the_missing_teacher_then_condenses(tmp_path, monkeypatch):
    import dataclasses
    import vdcbench.train.teacher as teacher
    from vdcbench.protocol import Protocol

    monkeypatch.setattr(teacher, "teacher_dirs", lambda: [tmp_path / "teachers"])
    monkeypatch.setattr(teacher, "teachers_dir", lambda: tmp_path / "teachers")
    monkeypatch.setattr(teacher, "teacher_resume_dir", lambda: tmp_path / "teachers" / "resume")
    original, shortened = Protocol.teacher_recipe, {}

    def one_epoch(self, dataset, net):
        # The same object on every call: train_teacher saves only the protocol's own recipe.
        key = (dataset.name, net)
        if key not in shortened:
            shortened[key] = dataclasses.replace(original(self, dataset, net), epochs=1)
        return shortened[key]

    monkeypatch.setattr(Protocol, "teacher_recipe", one_epoch)
    archive = tmp_path / "h.tar"
    result = _run("run-baseline", "herding", "--dataset", "synthetic", "--ipc", "1",
                  "--train-teacher", "-o", archive)
    assert result.exit_code == 0, result.output
    assert "trained the minic3d teacher" in result.output and archive.is_file()
    assert len(list((tmp_path / "teachers").glob("synthetic-minic3d-*.safetensors"))) == 1
    # Found the second time: not trained again.
    again = _run("run-baseline", "herding", "--dataset", "synthetic", "--ipc", "1",
                 "--train-teacher", "-o", tmp_path / "h2.tar")
    assert again.exit_code == 0 and "trained the" not in again.output
