"""Paper-style pivots of result records: pooling, ordering, n, wall time, and refusals."""

from __future__ import annotations

import hashlib
import statistics

import pytest
from click.testing import CliRunner

from vdcbench.cli import main
from vdcbench.core.errors import VdcError
from vdcbench.evaluation.records import EvalRecord, RecordKey
from vdcbench.evaluation.tables import PivotFilter, pivot


def _record(method: str, top1: float, *, seed: int = 0, track: str = "ipc1-t8",
            labels: str = "hard", net: str = "minic3d", archive: str = "a" * 64,
            condensation_seed: int = 0, wall: float = 100.0, variant: str = "official",
            dataset: str = "synthetic", config: dict | None = None,
            formation: str | None = None, kind: str = "selection") -> EvalRecord:
    # Archives are named by readable tags here; records on disk need a real hex sha256.
    key = RecordKey(archive_sha256=hashlib.sha256(archive.encode()).hexdigest(),
                    protocol_version=1, protocol_sha256="b" * 64,
                    dataset=dataset, dataset_sha256="d" * 64, track=track, label_strategy=labels,
                    variant=variant, net=net, teacher_sha256=None, seed=seed,
                    formation=formation)
    method_info = {"name": method, "kind": kind, "seed": condensation_seed}
    if config is not None:
        method_info["config"] = config
    return EvalRecord(key=key, method=method_info,
                      top1=top1, top5=90.0, reference_best_top1=None,
                      official=variant == "official", epochs=300, iterations=300, batch_size=10,
                      wall_seconds=wall, device="cpu", weights_sha256="e" * 64, final_loss=0.1,
                      ledger={}, versions={})


def _table6_records() -> list[EvalRecord]:
    return [
        # Random: two condensed sets at IPC 1 hard, pooled into one cell of n 4.
        _record("random", 10.0, seed=0, archive="r0" * 32), _record("random", 20.0, seed=1, archive="r0" * 32),
        _record("random", 30.0, seed=0, archive="r1" * 32, condensation_seed=1),
        _record("random", 40.0, seed=1, archive="r1" * 32, condensation_seed=1),
        _record("rded", 45.0, labels="multi-sl", archive="m" * 64, wall=300.0),
        _record("rded", 18.0, archive="h" * 64),
        _record("rded", 50.0, track="ipc10-t8", archive="x" * 64, wall=2000.0),
        _record("rded", 30.0, track="ipc5-t8", archive="y" * 64, wall=1000.0),
        _record("rded", 20.0, net="i3d_r18", archive="h" * 64, wall=150.0),
    ]


def test_methods_table_pools_condensed_sets_and_orders_ipc_numerically():
    table = pivot(_table6_records(), "methods", PivotFilter(net="minic3d"))
    assert table.rows == ("random", "rded")          # the floor first
    assert table.columns == ("IPC 1 hard", "IPC 1 multi-sl", "IPC 5 hard", "IPC 10 hard")
    random_cell = table.cells[("random", "IPC 1 hard")]
    assert random_cell.n == 4 and random_cell.archives == 2
    assert random_cell.mean == pytest.approx(25.0)
    assert random_cell.std == pytest.approx(statistics.stdev([10, 20, 30, 40]))
    assert random_cell.text() == f"25.0 ± {statistics.stdev([10, 20, 30, 40]):.1f} (n 4, 2 sets)"
    assert table.cells[("rded", "IPC 1 multi-sl")].text() == "45.0 (n 1)"
    assert ("random", "IPC 5 hard") not in table.cells
    assert table.column_wall_seconds("IPC 10 hard") == 2000.0
    assert table.column_wall_seconds("IPC 1 hard") == pytest.approx(100.0)


def test_distillation_rows_form_a_half_under_the_selection_half_each_under_a_heading():
    records = _table6_records() + [
        _record("edc", 40.0, labels="multi-sl", archive="e" * 64, kind="distillation"),
        _record("dm", 19.0, archive="d" * 64, kind="distillation")]
    table = pivot(records, "methods", PivotFilter(net="minic3d"))
    # Alphabetically dm and edc would sit above rded; the kinds keep the halves apart.
    assert table.rows == ("random", "rded", "dm", "edc")
    names = [name for name, _ in table.row_texts()]
    assert names == ["selection methods", "random", "rded", "distillation methods", "dm", "edc",
                     "wall s / evaluation"]
    heading_cells = dict(table.row_texts())["distillation methods"]
    assert heading_cells == [""] * len(table.columns)
    assert "| **distillation methods** |" in table.to_markdown("synthetic, minic3d")
    # One kind alone needs no heading.
    alone = pivot(_table6_records(), "methods", PivotFilter(net="minic3d"))
    assert [name for name, _ in alone.row_texts()] == ["random", "rded", "wall s / evaluation"]


def test_condensation_seed_filter_keeps_one_set_per_method():
    table = pivot(_table6_records(), "methods", PivotFilter(net="minic3d", condensation_seed=1))
    assert table.rows == ("random",)
    assert table.cells[("random", "IPC 1 hard")].mean == pytest.approx(35.0)


def test_nets_table_puts_minic3d_first_and_reports_each_columns_wall_time():
    table = pivot(_table6_records(), "nets", PivotFilter(track="ipc1-t8", label_strategy="hard"))
    assert table.columns == ("minic3d", "i3d_r18")
    assert table.rows == ("random, IPC 1 hard", "rded, IPC 1 hard")
    assert table.cells[("rded, IPC 1 hard", "i3d_r18")].mean == 20.0
    assert ("random, IPC 1 hard", "i3d_r18") not in table.cells
    assert table.column_wall_seconds("i3d_r18") == 150.0
    markdown = table.to_markdown("synthetic")
    assert markdown.splitlines()[0] == "| synthetic | minic3d | i3d_r18 |"
    assert "| random, IPC 1 hard | 25.0 ± 12.9 (n 4, 2 sets) | – |" in markdown
    assert markdown.splitlines()[-1] == "| wall s / evaluation | 100 | 150 |"


@pytest.mark.parametrize("kind, where, message", [
    ("methods", PivotFilter(), "needs one net"),                 # minic3d and i3d_r18 mixed
    ("nets", PivotFilter(), "needs one track"),                 # IPC 1, 5 and 10 mixed
    ("methods", PivotFilter(net="slowonly_r18"), "no official result records match net=slowonly_r18"),
    ("bogus", PivotFilter(), "unknown table"),
])
def test_a_table_that_would_mix_what_must_not_be_mixed_is_refused(kind, where, message):
    with pytest.raises(VdcError, match=message):
        pivot(_table6_records(), kind, where)


def test_two_data_sets_never_share_a_table():
    records = [_record("random", 10.0), _record("random", 12.0, dataset="ucf101")]
    with pytest.raises(VdcError, match="never share a table"):
        pivot(records, "methods", PivotFilter(net="minic3d"))


def test_unofficial_variants_stay_out_unless_asked_for():
    records = [_record("random", 10.0), _record("random", 90.0, variant="cutmix", seed=1)]
    table = pivot(records, "methods", PivotFilter(net="minic3d"))
    assert table.cells[("random", "IPC 1 hard")].top1 == (10.0,)


def test_cli_prints_the_markdown_methods_table_and_refuses_a_mixed_nets_table(tmp_path):
    for record in _table6_records():
        record.to_disk(tmp_path)
    runner = CliRunner()
    shown = runner.invoke(main, ["results", str(tmp_path), "--table", "methods", "--markdown"])
    assert shown.exit_code == 0, shown.output
    assert "| synthetic, minic3d | IPC 1 hard | IPC 1 multi-sl | IPC 5 hard | IPC 10 hard |" in shown.output
    refused = runner.invoke(main, ["results", str(tmp_path), "--table", "nets"])
    assert refused.exit_code == 2
    assert refused.output.strip().splitlines() == [
        "error: the nets table needs one track, the records have ipc1-t8, ipc10-t8, ipc5-t8; "
        "pick one with --track"]


def test_method_filter_keeps_the_named_rows_and_names_itself_when_nothing_matches():
    table = pivot(_table6_records(), "nets",
                  PivotFilter(track="ipc1-t8", label_strategy="hard", methods=("rded",)))
    assert table.rows == ("rded, IPC 1 hard",)
    with pytest.raises(VdcError, match="match methods=herding,kcenter"):
        pivot(_table6_records(), "nets", PivotFilter(methods=("herding", "kcenter")))


def test_full_data_row_comes_first_and_only_for_the_tables_columns():
    table = pivot(_table6_records(), "nets", PivotFilter(track="ipc1-t8", label_strategy="hard"))
    table = table.with_full_data({"minic3d": 75.7, "slowonly_r18": 60.0})   # not a column here
    lines = table.to_markdown("synthetic").splitlines()
    assert lines[2] == "| full train split (protocol teacher) | 75.7 (n 1) | – |"
    assert table.full_data == {"minic3d": 75.7}


def test_cli_methods_table_reads_the_shipped_teachers_full_data_row(tmp_path, protocol):
    import json

    from vdcbench.train.teacher import find_teacher
    sidecar = json.loads(find_teacher(protocol, "synthetic", "minic3d").with_suffix(".json").read_text())
    expected = f"{sidecar['val_top1']:.1f} (n 1)"
    for record in _table6_records():
        record.to_disk(tmp_path)
    shown = CliRunner().invoke(main, ["results", str(tmp_path), "--table", "methods", "--markdown"])
    assert shown.exit_code == 0, shown.output
    row = [l for l in shown.output.splitlines() if l.startswith("| full train split")]
    assert len(row) == 1 and row[0].count(expected) == 4      # one per column


def test_one_method_run_with_other_settings_gets_a_row_of_its_own():
    records = [
        # An older record without a config reads as the registered defaults (min_scale 0.08).
        _record("rded", 18.0, archive="c0" * 32),
        _record("rded", 22.0, archive="c1" * 32, condensation_seed=1,
                config={"mipc": 70, "num_crop": 5, "min_scale": 0.08}),
        _record("rded", 27.0, archive="w0" * 32, config={"mipc": 70, "num_crop": 5, "min_scale": 1.0}),
        _record("random", 15.0, archive="r" * 64, config={}),
        # A method not installed here: its settings are compared among its own records only.
        _record("elsewhere", 30.0, archive="e0" * 32, config={"steps": 10}),
        _record("elsewhere", 31.0, archive="e1" * 32, config={"steps": 20}),
    ]
    table = pivot(records, "methods", PivotFilter(net="minic3d"))
    assert table.rows == ("random", "elsewhere (steps=10)", "elsewhere (steps=20)",
                          "rded (min_scale=0.08)", "rded (min_scale=1.0)")
    defaults = table.cells[("rded (min_scale=0.08)", "IPC 1 hard")]
    assert defaults.n == 2 and defaults.archives == 2 and defaults.mean == pytest.approx(20.0)
    assert table.cells[("rded (min_scale=1.0)", "IPC 1 hard")].text() == "27.0 (n 1)"
    # One setting throughout: the row is just the method's name.
    alone = pivot(records[:2], "methods", PivotFilter(net="minic3d"))
    assert alone.rows == ("rded",) and alone.cells[("rded", "IPC 1 hard")].n == 2


def test_cli_pools_several_folders_and_counts_an_overlapping_record_once(tmp_path):
    main_records, ablations = tmp_path / "records", tmp_path / "ablations"
    _record("rded", 18.0, archive="c0" * 32, config={"min_scale": 0.08}).to_disk(main_records)
    _record("rded", 27.0, archive="w0" * 32, config={"min_scale": 1.0}).to_disk(ablations)
    runner = CliRunner()
    shown = runner.invoke(main, ["results", str(main_records), str(ablations), str(tmp_path),
                                 "--table", "methods", "--markdown"])
    assert shown.exit_code == 0, shown.output
    assert "| rded (min_scale=0.08) | 18.0 (n 1) |" in shown.output
    assert "| rded (min_scale=1.0) | 27.0 (n 1) |" in shown.output


def test_temporal_tracks_stay_out_of_table_6_and_name_frames_and_formation_when_asked_for():
    records = _table6_records() + [
        _record("rded", 29.0, track="ipc2-t16", archive="t1" * 32, formation="slide-window",
                config={"formation": "slide-window"}),
        _record("rded", 24.0, track="ipc2-t16", archive="t2" * 32, formation="segment",
                config={"formation": "segment"}),
        # Eight frames, yet a temporal track of the equal-frame grid, not an official one.
        _record("rded", 38.0, track="ipc4-t8", archive="t3" * 32),
    ]
    official = pivot(records, "methods",
                     PivotFilter(net="minic3d", tracks=("ipc1-t8", "ipc5-t8", "ipc10-t8")))
    assert official.columns == ("IPC 1 hard", "IPC 1 multi-sl", "IPC 5 hard", "IPC 10 hard")
    assert official.rows == ("random", "rded")
    temporal = pivot(records, "methods", PivotFilter(net="minic3d", track="ipc2-t16"))
    # Two formations of one track are two columns, and the formation is not a row setting.
    assert temporal.columns == ("IPC 2 × 16 frames hard (segment)",
                                "IPC 2 × 16 frames hard (slide-window)")
    assert temporal.rows == ("rded",)
    assert temporal.cells[("rded", "IPC 2 × 16 frames hard (slide-window)")].text() == "29.0 (n 1)"
