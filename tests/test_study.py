"""``vdcbench study`` (issue 15 part B): the studies as data, their grids, which records are a
cell's, cost estimates, tables with the paper's figures, and a study stopped by SIGINT and
resumed."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from vdcbench.core.errors import VdcError

from process_fixtures import (copy_cache, finish, invoke, one_thread, shared_collection, start,
                              wait_for)

REPO = Path(__file__).resolve().parents[1]
RECORDS = REPO / "submissions" / "records"


# ------------------------------------------------------------------------------ the studies
def test_every_shipped_study_expands_on_synthetic_to_its_paper_grid():
    from vdcbench.study.cells import expand
    from vdcbench.study.spec import load_studies
    studies = load_studies()
    assert set(studies) == {"label-strategy", "cutmix", "loss", "temporal-compression",
                            "ipc-vs-frames", "sampling", "cross-arch", "condensation-nets"}
    sizes = {name: len(expand(study, "synthetic", videos_per_class=lambda: 80))
             for name, study in studies.items()}
    assert sizes == {"label-strategy": 10 * 3 * 3 * 3, "cutmix": 3 * 3 * 2 * 3,
                     "loss": 3 * 2 * 2 * 3, "temporal-compression": 5,
                     "ipc-vs-frames": 3 + 3,          # three seeds at IPC 1, one elsewhere
                     "sampling": 3 * 4 * 3, "cross-arch": 6 * 4 * 3,
                     "condensation-nets": 5 * 3}
    tracks = {c.track: c.formation for c in expand(studies["ipc-vs-frames"], "synthetic")}
    assert tracks == {"ipc8-t4": "interpolate-linear", "ipc4-t8": "none",
                      "ipc2-t16": "slide-window", "ipc1-t32": "slide-window"}
    compression = expand(studies["temporal-compression"], "synthetic", videos_per_class=lambda: 80)
    assert {c.track for c in compression} == {f"ipc80-t{t}" for t in (4, 8, 16, 24, 32)}


def test_cells_sharing_a_condensed_set_share_its_archive_and_settings_name_it():
    from vdcbench.study.cells import expand
    from vdcbench.study.spec import get_study
    cells = expand(get_study("cross-arch"), "synthetic")
    rded = {c.archive_name() for c in cells if c.method == "rded"}
    assert rded == {"rded-synthetic-ipc1-t8-multi-sl-s0.tar"}          # 4 nets x 3 seeds
    nets = {c.archive_name() for c in expand(get_study("condensation-nets"), "synthetic")}
    assert len(nets) == 5 and all(re.fullmatch(r"edc-set[0-9a-f]{8}-synthetic-ipc1-t8-multi-sl-s0"
                                               r"\.tar", n) for n in nets)
    sampling = {c.archive_name() for c in expand(get_study("sampling"), "synthetic")
                if c.method == "rded"}
    assert "rded-synthetic-ipc1-t16-hard-segment-s0.tar" in sampling
    assert "rded-synthetic-ipc1-t16-hard-slide-window-s0.tar" in sampling


def test_a_data_sets_method_settings_join_every_arm_and_the_arms_own_win():
    from vdcbench.study.cells import expand
    from vdcbench.study.spec import parse_studies
    studies = parse_studies({
        "format": "vdcbench-studies", "format_version": 1,
        "dataset_settings": {"synthetic": {"edc": {"preset": "cpu", "iterations": 7}}},
        "studies": {"x": {"arms": ["edc", "rded", {"method": "edc", "label": "edc-long",
                                                    "settings": {"iterations": 90}}],
                          "ipc": [1], "rows": ["method"], "columns": ["ipc"], "seeds": [0]}}})
    on_synthetic = {c.arm.label: c.arm.settings_dict() for c in expand(studies["x"], "synthetic")}
    assert on_synthetic == {"edc": {"preset": "cpu", "iterations": 7}, "rded": {},
                            "edc-long": {"preset": "cpu", "iterations": 90}}
    elsewhere = {c.arm.label: c.arm.settings_dict() for c in expand(studies["x"], "ucf101")}
    assert elsewhere == {"edc": {}, "rded": {}, "edc-long": {"iterations": 90}}
    # The shipped file runs every distillation method on `synthetic` with its cpu preset.
    from vdcbench.study.spec import get_study
    label = expand(get_study("label-strategy"), "synthetic")
    assert {c.method for c in label if c.arm.settings_dict().get("preset") == "cpu"} == {
        "dm", "mtt", "datm", "edc"}
    with pytest.raises(VdcError, match=r"\[dataset_settings\] synthetic.edc: must be a non-empty"):
        parse_studies({"format": "vdcbench-studies", "format_version": 1,
                       "dataset_settings": {"synthetic": {"edc": {}}},
                       "studies": {"x": {"arms": ["edc"], "ipc": [1], "rows": ["method"],
                                         "columns": ["ipc"]}}})


def test_a_bad_studies_file_and_unknown_names_are_one_line(tmp_path):
    result = invoke("study", "label-strategie", "--dataset", "synthetic", "--dry-run")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: unknown study 'label-strategie'; did you mean 'label-strategy'?"]
    bad = tmp_path / "studies.toml"
    bad.write_text('format = "vdcbench-studies"\nformat_version = 1\n'
                   '[studies.x]\narms = ["random"]\nipc = [1]\nrows = ["method"]\n'
                   'columns = ["ipc"]\nepochs = 3\n')
    result = invoke("study", "x", "--dataset", "synthetic", "--studies-file", bad, "--dry-run")
    assert result.exit_code == 2 and "unknown keys ['epochs']" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = invoke("study", "sampling", "--dataset", "synthetic", "--ipc", "5", "--dry-run")
    assert result.exit_code == 2 and "no such IPC (its IPCs: 1)" in result.output
    result = invoke("study", "cutmix", "--dataset", "synthetic", "--methods", "random",
                    "--dry-run")
    assert result.exit_code == 2 and "not in study 'cutmix' (its methods: edc†, datm, rded)" \
        in result.output


def test_every_paper_figure_lands_in_its_study_grid():
    """A figure whose ``at`` names no cell of its study would never be printed: each one must
    name an arm label, a shape label and values the study declares."""
    from vdcbench.study.paper import paper_figures
    from vdcbench.study.spec import load_studies
    studies, figures = load_studies(), paper_figures()
    for f in figures.figures:
        study = studies[f.study]
        declared = {"method": {a.label for a in study.arms}, "shape": {s.label for s in study.shapes},
                    "ipc": {str(s.ipc) for s in study.shapes}, "labels": set(study.labels),
                    "variant": set(study.variants), "net": set(study.nets)}
        for axis in study.rows + study.columns:
            assert f.axis(axis) in declared[axis], (f, axis)
    # Spot checks of the transcription against the paper's tables.
    def value(study, dataset, **at):
        (found,) = [f.value for f in figures.of(study, dataset)
                    if all(f.axis(k) == str(v) for k, v in at.items())]
        return found
    assert value("label-strategy", "ucf101", method="rded", ipc=1) == 17.7
    assert value("label-strategy", "kinetics400", method="datm", ipc=10) == 18.5
    assert value("cutmix", "ucf101", method="datm", labels="soft", variant="official") == 12.1
    assert value("loss", "ucf101", method="rded", labels="multi-sl", variant="kl") == 18.2
    assert value("ipc-vs-frames", "kinetics400", shape="[8, 4]") == 18.8
    assert value("sampling", "kinetics400", shape="segment", method="datm") == 7.3
    assert value("cross-arch", "ucf101", method="rded", net="slowonly_r18") == 21.1
    assert value("condensation-nets", "ucf101", method="MiniC3D + I3D + SlowOnly") == 12.4
    assert len(figures.figures) == 132 and figures.full_data_of("ucf101").value == 52.56


# ---------------------------------------------------------------------- records of a cell
def _committed_rded_ipc1_hard():
    from vdcbench.evaluation.records import load_records
    return [r for r in load_records(RECORDS / "synthetic" / "ipc1-t8")
            if r.method.name == "rded" and r.key.label_strategy == "hard"
            and r.key.net == "minic3d" and r.key.seed == 0]


def test_a_record_is_a_cells_only_when_every_field_that_sets_results_apart_agrees(protocol):
    from vdcbench.study.cells import StudyCell
    from vdcbench.study.matching import matches
    from vdcbench.study.spec import Arm, Shape
    (record,) = _committed_rded_ipc1_hard()
    cell = StudyCell("s", Arm("rded", "rded"), "synthetic", Shape(1, 8, "none", "IPC 1"), "hard",
                     "official", "minic3d", 0, 0)
    assert matches(record, cell, protocol, 300)
    assert not matches(record, cell, protocol, 2)                          # the schedule
    for changed in (dataclasses.replace(cell, variant="cutmix"),
                    dataclasses.replace(cell, seed=1), dataclasses.replace(cell, net="i3d_r18"),
                    dataclasses.replace(cell, condensation_seed=1),
                    dataclasses.replace(cell, labels="soft"),
                    dataclasses.replace(cell, shape=Shape(1, 8, "segment", "x")),
                    dataclasses.replace(cell, arm=Arm("rded", "w", (("min_scale", 1.0),)))):
        assert not matches(record, changed, protocol, 300), changed
    # A record scored through another formation is another cell, wherever it keeps it.
    formed = dataclasses.replace(record)
    object.__setattr__(formed, "formation", "slide-window")
    assert not matches(formed, cell, protocol, 300)
    # A default the method resolves when it runs (Forgetting's epochs = 0: the recipe's) matches
    # the value the record holds; a value the cell sets must be held.
    forgetting = dataclasses.replace(record, method=dataclasses.replace(
        record.method, name="forgetting", config={"augment": False, "epochs": 60}))
    assert matches(forgetting, dataclasses.replace(cell, arm=Arm("forgetting", "forgetting")),
                   protocol, 300)
    assert not matches(forgetting, dataclasses.replace(
        cell, arm=Arm("forgetting", "f", (("epochs", 10),))), protocol, 300)


def test_costs_come_from_measured_wall_times_and_say_when_none_is_known():
    from vdcbench.study.cells import StudyCell
    from vdcbench.study.cost import EvaluationRates
    from vdcbench.study.spec import Arm, Shape
    (record,) = _committed_rded_ipc1_hard()
    rates = EvaluationRates([record])
    cell = StudyCell("s", Arm("rded", "rded"), "synthetic", Shape(1, 8, "none", "IPC 1"), "hard",
                     "official", "minic3d", 0, 0)
    exact = rates.estimate(cell, 300)
    assert exact.seconds == pytest.approx(record.wall_seconds) and "measured" in exact.basis
    scaled = rates.estimate(dataclasses.replace(cell, shape=Shape(2, 16, "segment", "x")), 300)
    assert scaled.seconds == pytest.approx(4 * record.wall_seconds)
    assert scaled.basis == "scaled from ipc1-t8"
    unknown = rates.estimate(dataclasses.replace(cell, net="i3d_r18"), 300)
    assert unknown.seconds is None and "no rate known" in unknown.basis
    # A smoke run's rate (mostly its final validation) does not stand for the protocol's
    # schedule where a record of that schedule exists, and does for its own.
    smoke = dataclasses.replace(record, epochs=2, key=dataclasses.replace(record.key, epochs=2),
                                wall_seconds=30.0)
    both = EvaluationRates([record, smoke])
    assert both.estimate(cell, 300).seconds == pytest.approx(record.wall_seconds)
    assert both.estimate(cell, 2).seconds == pytest.approx(30.0)


# ------------------------------------------------------ Table 6 from the committed records
def _tracked_records(target: Path) -> Path:
    """The records git tracks (not ones a running job has just written), copied to ``target``."""
    listed = subprocess.run(["git", "ls-files", "submissions/records"], cwd=REPO,
                            capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the committed records are unknown")
    for name in listed.stdout.split():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target / name)
    return target / "submissions" / "records"


def _table(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def test_label_strategy_rebuilds_table_6_from_committed_records_without_running_a_cell(
        tmp_path, monkeypatch):
    from vdcbench.evaluation import api

    def refuse(*args, **kwargs):
        raise AssertionError("a cell ran")
    monkeypatch.setattr(api, "run_baseline", refuse)
    monkeypatch.setattr(api, "evaluate_cell", refuse)
    records = _tracked_records(tmp_path / "repo")
    monkeypatch.chdir(tmp_path)
    result = invoke("study", "label-strategy", "--dataset", "synthetic", "--results-dir", records,
                    "--tables-only", "--output-dir", tmp_path / "out")
    assert result.exit_code == 0, result.output
    made = (tmp_path / "out" / "label-strategy-synthetic.md").read_text()
    assert not (tmp_path / "out" / "archives").exists()
    # README's Table 6 is `vdcbench results --table methods --condensation-seed 0 --markdown`
    # over these records (the README may lag a record just committed, so it is not read here).
    # Every row, the distillation rows too: on `synthetic` the study runs those methods with
    # their `cpu` presets (studies.toml [dataset_settings]), the recipe of the committed records.
    # The results table groups its rows under selection and distillation headings, alphabetically;
    # the study keeps the paper's order: the same rows, another order.
    expected = invoke("results", records, "--table", "methods", "--condensation-seed", "0",
                      "--markdown")
    assert expected.exit_code == 0, expected.output
    expected_rows = [row for row in _table(expected.output) if not row.startswith("| **")]
    assert _table(made)[:3] == expected_rows[:3]
    assert sorted(_table(made)) == sorted(expected_rows)
    assert any(row.startswith("| edc | ") for row in _table(made))
    assert _table(made)[0].startswith("| synthetic, minic3d | IPC 1 hard | IPC 1 soft |")
    for suffix in ("-cells.json", "-table.json", ".svg", ".png"):
        assert (tmp_path / "out" / f"label-strategy-synthetic{suffix}").stat().st_size > 0
    cells = json.loads((tmp_path / "out" / "label-strategy-synthetic-cells.json").read_text())
    done = [c for c in cells["cells"] if c["status"] == "done"]
    assert done and all(c["records"] for c in done)


def test_paper_columns_stand_beside_ours_on_a_data_set_the_study_used(protocol):
    """Our UCF101 records do not exist here: a record relabelled as UCF101's stands in for one,
    to see the layout (a paper column after each of our columns that has figures)."""
    from vdcbench.study.cells import expand
    from vdcbench.study.matching import RecordIndex
    from vdcbench.study.paper import paper_figures
    from vdcbench.study.spec import get_study
    from vdcbench.study.tables import build_table
    (record,) = _committed_rded_ipc1_hard()
    study = get_study("cross-arch")
    cells = expand(study, "ucf101")
    index = RecordIndex([record])
    table = build_table(study, "ucf101", 1, cells,
                        lambda c: [record] if (c.method, c.net, c.seed) == ("rded", "minic3d", 0)
                        else [], paper_figures())
    lines = _table(table.markdown())
    assert lines[0] == ("| ucf101 | minic3d | minic3d (paper) | r2plus1d_r18 | r2plus1d_r18 (paper) "
                        "| i3d_r18 | i3d_r18 (paper) | slowonly_r18 | slowonly_r18 (paper) |")
    rows = {line.split(" | ")[0][2:]: line for line in lines[2:]}
    assert list(rows) == ["random", "herding-argmax", "rded", "edc", "datm",
                          "wall s / evaluation"]
    assert rows["rded"].startswith(f"| rded | {record.top1:.1f} (n 1) | 17.7 | – | 11.7 | – | 14.1")
    assert rows["random"].startswith("| random | – | 14.7 | – | 8.8 |")
    assert "Table 7" in table.caption() and index.all_records() == [record]


# ------------------------------------------------------------- SIGINT mid-cell, then resume
TINY = """format = "vdcbench-studies"
format_version = 1
[studies.tiny]
title = "tiny"
paper = "nothing"
arms = ["random"]
ipc = [1]
labels = ["hard"]
seeds = [0, 1, 2]
rows = ["method"]
columns = ["ipc", "labels"]
"""


def _study_args(studies: Path, results: Path, out: Path) -> list:
    return ["study", "tiny", "--studies-file", studies, "--dataset", "acts", "--epochs", "10",
            "--results-dir", results, "--records", results, "--output-dir", out]


def _record_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("seed*.json"))}


def _without_wall_row(markdown: str) -> list[str]:
    return [line for line in _table(markdown) if not line.startswith("| wall s")]


# Three CLI runs (one in process, two children importing torch): about a minute, like the other
# one-minute kill-and-resume tests in the slow set CI runs after the default suite.
@pytest.mark.slow
def test_a_study_stopped_by_sigint_mid_cell_resumes_without_redoing_finished_cells(
        tmp_path_factory, tmp_path, monkeypatch):
    """Three cells of one condensed set: the first finishes, SIGINT lands in the second after
    one of its checkpoints, the rerun keeps the first record's bytes, resumes the second and runs
    the third; the tables equal an unbroken run's (at one thread, bit for bit)."""
    base, _, _ = shared_collection(tmp_path_factory)
    studies = tmp_path / "tiny.toml"
    studies.write_text(TINY)
    monkeypatch.chdir(tmp_path)

    with one_thread():
        result = invoke(*_study_args(studies, tmp_path / "r1", tmp_path / "o1"),
                        env=copy_cache(base, tmp_path / "cache-unbroken"))
    assert result.exit_code == 0, result.output
    assert "3 cells: 0 done, 3 to run; 10-epoch schedule, records NOT official" in result.output
    assert len(_record_bytes(tmp_path / "r1")) == 3

    cache, results = copy_cache(base, tmp_path / "cache"), tmp_path / "r2"
    resume_dir = cache / "evaluation-resume"
    proc = start(_study_args(studies, results, tmp_path / "o2"), cache=cache, cwd=tmp_path)

    def second_cell_checkpointed() -> bool:
        records = list(results.rglob("seed*.json"))
        if len(records) != 1 or not resume_dir.is_dir():
            return proc.poll() is not None
        first = records[0].stat().st_mtime
        return any(p.stat().st_mtime > first for p in resume_dir.rglob("*") if p.is_file())

    wait_for(second_cell_checkpointed, timeout=600)
    proc.send_signal(signal.SIGINT)
    code, output = finish(proc, timeout=120)
    assert code == 130, output
    assert "interrupted; finished cells' records are kept" in output
    finished = _record_bytes(results)
    assert len(finished) == 1, output

    code, output = finish(start(_study_args(studies, results, tmp_path / "o2"), cache=cache,
                                cwd=tmp_path), timeout=600)
    assert code == 0, output
    assert "3 cells: 1 done, 2 to run" in output
    resumed = _record_bytes(results)
    assert len(resumed) == 3
    assert all(resumed[name] == data for name, data in finished.items())   # not redone

    unbroken_md = (tmp_path / "o1" / "tiny-acts.md").read_text()
    resumed_md = (tmp_path / "o2" / "tiny-acts.md").read_text()
    assert _without_wall_row(resumed_md) == _without_wall_row(unbroken_md)
    tables = [json.loads((tmp_path / o / "tiny-acts-table.json").read_text())
              for o in ("o1", "o2")]
    assert [c["values"] for c in tables[0]["cells"]] == [c["values"] for c in tables[1]["cells"]]
    assert tables[0]["cells"][0]["n"] == 3 and not tables[0]["official"]


# ------------------------------------------------------------------------------ the executor
def test_a_failing_cell_is_an_outcome_and_a_formation_is_never_dropped(tmp_path, monkeypatch):
    """A user error in one cell (here the evaluation's refusal) is that cell's one-line outcome
    and the next cell still runs; a cell with a formation is refused by an evaluation that
    takes none, rather than scored as ``none``."""
    from vdcbench.core.errors import NotBuiltError
    from vdcbench.evaluation import api
    from vdcbench.study.cells import commands, expand
    from vdcbench.study.executor import InProcessExecutor, StudyProgress, _formation_argument
    from vdcbench.study.spec import get_study

    made, scored = [], []

    def run_baseline(**kwargs):
        made.append(kwargs)
        Path(kwargs["output"]).write_bytes(b"archive")

    def evaluate_cell(archive, net, seed, *, formation=None, **kwargs):
        scored.append((Path(archive).name, formation, seed))
        raise NotBuiltError("evaluating 16-frame instances (temporal formations for track "
                            "ipc2-t16)")
    monkeypatch.setattr(api, "run_baseline", run_baseline)
    monkeypatch.setattr(api, "evaluate_cell", evaluate_cell)
    cells = [c for c in expand(get_study("ipc-vs-frames"), "synthetic") if c.ipc == 2]
    todo = commands(cells, tmp_path, tmp_path / "results", 2, "cpu")
    events = []

    class Events(StudyProgress):
        def cell_started(self, index, total, command):
            events.append(("started", index, total))

        def cell_finished(self, index, total, outcome):
            events.append(("finished", index, outcome.error is not None))

    outcomes = list(InProcessExecutor().run(todo, Events()))
    assert [o.record for o in outcomes] == [None]
    assert outcomes[0].error == ("evaluating 16-frame instances (temporal formations for track "
                                 "ipc2-t16) is declared by the protocol but not built in this "
                                 "vdcbench release")
    assert outcomes[0].condensed and made[0]["frames"] == 16 and made[0]["ipc"] == 2
    assert scored == [("rded-synthetic-ipc2-t16-hard-slide-window-s0.tar", "slide-window", 0)]
    assert events == [("started", 0, 1), ("finished", 0, True)]

    def no_formation(archive, net, seed, *, variant="official"):
        raise AssertionError("scored without its formation")
    with pytest.raises(Exception, match="evaluation reads no temporal formation yet"):
        _formation_argument(todo[0], no_formation)
    assert _formation_argument(commands([c for c in expand(get_study("ipc-vs-frames"),
                                                           "synthetic") if c.ipc == 4],
                                        tmp_path, tmp_path, None, "cpu")[0], no_formation) == {}
