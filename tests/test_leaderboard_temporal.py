"""Temporal-track entries: submit takes official results of the equal-frame grid with their
formation and refuses study tracks and what is not an official measurement; the leaderboard ranks
them in tables of their own, a column per (track, formation); committed entries read and write
back unchanged. Hand-made records of tiny real archives, as in test_leaderboard (nothing is
trained)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from test_leaderboard import (FAKE_SHA, STUDY, copy_study, first_entry, one_error_line, run,
                              study, teachers)  # noqa: F401 (fixtures)
from vdcbench.archive import write_archive
from vdcbench.archive.condensed import CondensedSet, MethodInfo
from vdcbench.core.errors import VdcError
from vdcbench.data.splits import dataset_sha256
from vdcbench.evaluation.records import EvalRecord, RecordKey
from vdcbench.leaderboard.entry import Entry
from vdcbench.leaderboard.submit import submit
from vdcbench.leaderboard.validate import entry_paths, validate_entries

REPO = Path(__file__).resolve().parents[1]


def make_temporal_archive(protocol, path: Path, track: str, *, method="rded", seed=0,
                          formation: str | None = "slide-window") -> str:
    """A tiny real archive of ``track`` (ipcK-tT): K x 10 uint8 instances of T frames."""
    ipc, frames = (int(x) for x in track[3:].split("-t"))
    n = 10 * ipc
    g = torch.Generator().manual_seed(seed * 1000 + ipc * 10 + frames)
    i, c, t, h, w = torch.meshgrid(*(torch.arange(k) for k in (n, 3, frames, 56, 56)),
                                   indexing="ij")
    offset = torch.randint(0, 256, (n, 3, 1, 1, 1), generator=g)
    videos = ((w * 4 + h * 2 + t * 16 + offset) % 256).to(torch.uint8)
    config = {} if formation is None else {"formation": formation}
    cs = CondensedSet(videos=videos, labels=torch.arange(n, dtype=torch.int64) % 10,
                      dataset="synthetic", track=track,
                      method=MethodInfo(name=method, kind="selection", seed=seed, wall_seconds=2.5,
                                        device="cpu", config=config),
                      label_strategy="hard")
    return write_archive(cs, path, protocol=protocol)


def temporal_records(protocol, archive_sha: str, top1: dict[int, float], track: str,
                     formation: str | None, *, method="rded", variant="official", epochs=300,
                     net="minic3d") -> list[EvalRecord]:
    records = []
    for seed, value in sorted(top1.items()):
        key = RecordKey(archive_sha256=archive_sha, protocol_version=protocol.version,
                        protocol_sha256=protocol.sha256, dataset="synthetic",
                        dataset_sha256=dataset_sha256(protocol.dataset("synthetic")),
                        track=track, label_strategy="hard", variant=variant, net=net,
                        teacher_sha256=None, seed=seed, epochs=epochs, formation=formation)
        records.append(EvalRecord(
            key=key, method={"name": method, "kind": "selection", "seed": 0}, top1=value,
            top5=min(100.0, value + 40.0), reference_best_top1=value + 1.0,
            official=variant == "official" and epochs == 300, epochs=epochs, iterations=600,
            batch_size=20, wall_seconds=14.0, device="cpu", weights_sha256=FAKE_SHA,
            final_loss=0.3, ledger={}, versions={"vdcbench": "0.1.0", "torch": "2.9.0",
                                                 "python": "3.11.7", "pytorchvideo": "0.1.5"},
            torch_threads=1))
    return records


# (method, track, formation, top-1 per evaluation seed): RDED's ipc2-t16 archive formed two
# ways, Random's on the same track (the Δ reference), an ipc8-t4 cell, and an ipc4-t8 one: a
# temporal track of 8 frames, whose records (and entry) have no formation, as an 8-frame
# official track's.
TEMPORAL = [
    ("rded", "ipc2-t16", "slide-window", {0: 44.0, 1: 45.0, 2: 46.0}),
    ("rded", "ipc2-t16", "segment", {0: 39.0, 1: 40.0, 2: 41.0}),
    ("random", "ipc2-t16", "slide-window", {0: 38.0, 1: 37.0, 2: 39.0}),
    ("random", "ipc8-t4", "interpolate-linear", {0: 50.0, 1: 52.0, 2: 51.0}),
    ("random", "ipc4-t8", None, {0: 47.0, 1: 48.0, 2: 49.0}),
]


@pytest.fixture(scope="module")
def temporal(study, tmp_path_factory, protocol):  # noqa: F811 (the imported fixture)
    """The hand-made study of test_leaderboard with the temporal entries added."""
    root = tmp_path_factory.mktemp("temporal") / "submissions"
    shutil.copytree(study, root)
    for method, track, formation, top1 in TEMPORAL:
        archive = root / "archives" / f"{method}-synthetic-{track}-hard-s0.tar"
        sha = (make_temporal_archive(protocol, archive, track, method=method,
                                     formation=formation)
               if not archive.exists() else _sha(archive))
        records = temporal_records(protocol, sha, top1, track, formation, method=method)
        for r in records:
            r.to_disk(root / "records")
        submit(records, archive, root=root, authors=["T. Emporal"]).to_disk(root)
    return root


def _sha(path: Path) -> str:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------- submit
def test_submit_takes_a_temporal_track_with_its_formation(temporal):
    rded = [Entry.from_disk(p) for p in entry_paths(temporal)
            if p.parent.name.startswith("rded-ipc2-t16")]
    assert {e.formation for e in rded} == {"slide-window", "segment"}
    sha = rded[0].archive.sha256
    assert {e.id for e in rded} == {f"rded-ipc2-t16-hard-{sha[:12]}-slide-window",
                                    f"rded-ipc2-t16-hard-{sha[:12]}-segment"}
    for entry in rded:
        # One archive, two formations: two measurements, each official, each its own folder.
        assert entry.archive.sha256 == sha and entry.official and entry.frames == 16
        data = entry.to_dict()
        assert data["formation"] == entry.formation == entry.measurement.formation
        assert Entry.from_dict(data) == entry
        assert json.loads((temporal / entry.relative_path()).read_text()) == data
    # Validate accepts every entry, the two formations of one archive included.
    assert len(validate_entries(temporal)) == len(STUDY) + 1 + len(TEMPORAL)


def test_submit_refuses_study_tracks_and_what_is_not_official(tmp_path, protocol):
    t16 = tmp_path / "t16.tar"
    sha = make_temporal_archive(protocol, t16, "ipc2-t16")
    study_track = tmp_path / "study.tar"       # ipc1-t16: the sampling study's (Tables 5, 9)
    study_sha = make_temporal_archive(protocol, study_track, "ipc1-t16")
    t4 = tmp_path / "t4.tar"
    t4_sha = make_temporal_archive(protocol, t4, "ipc8-t4", formation="interpolate-linear")
    cases = [
        (study_track, temporal_records(protocol, study_sha, {0: 30.0}, "ipc1-t16",
                                       "slide-window"),
         "track ipc1-t16 is a study track (sampling"),
        (t16, temporal_records(protocol, sha, {0: 30.0}, "ipc2-t16", "slide-window", epochs=2),
         "shortened schedule (2 of 300 epochs)"),
        (t16, temporal_records(protocol, sha, {0: 30.0}, "ipc2-t16", "slide-window",
                               variant="cutmix"),
         "under study variant 'cutmix'"),
        (t4, temporal_records(protocol, t4_sha, {0: 30.0}, "ipc8-t4", "segment"),
         "segment needs a multiple of 8 frames"),
        (t16, temporal_records(protocol, sha, {0: 30.0, 1: 31.0}, "ipc2-t16", "slide-window")
         + temporal_records(protocol, sha, {2: 30.0}, "ipc2-t16", "segment"),
         "records differ in temporal formation"),
    ]
    for archive, records, message in cases:
        with pytest.raises(VdcError, match=re.escape(message)) as info:
            submit(records, archive)
        assert "\n" not in str(info.value)
    # A formation on an official 8-frame track has no column to go to (records made by hand:
    # an 8-frame archive formed through a 4-frame interpolation window).
    from test_leaderboard import make_archive, make_records
    t8 = tmp_path / "t8.tar"
    t8_sha = make_archive(protocol, t8)
    formed = [EvalRecord.from_dict({**r.to_dict(), "formation": "interpolate-linear-w4"})
              for r in make_records(protocol, t8_sha, {0: 30.0})]
    assert formed[0].key.formation == "interpolate-linear-w4"
    with pytest.raises(VdcError, match="track ipc1-t8 is not a temporal track"):
        submit(formed, t8)
    # The same records through the CLI: one line, exit 2.
    folder = tmp_path / "records"
    for r in cases[0][1]:
        r.to_disk(folder)
    one_error_line(run("submit", folder, "--archive", study_track, "--pick",
                       "--submissions", tmp_path), "is a study track")


def test_submit_command_picks_one_formation_of_an_archive(temporal, tmp_path):
    archive = temporal / "archives" / "rded-synthetic-ipc2-t16-hard-s0.tar"
    # Both formations' records score the archive: mixed unless one is picked.
    one_error_line(run("submit", temporal / "records", "--archive", archive, "--pick",
                       "--submissions", temporal, "--dry-run"),
                   "records differ in temporal formation")
    result = run("submit", temporal / "records", "--archive", archive, "--pick", "--formation",
                 "segment", "--submissions", temporal, "--author", "T. Emporal")
    assert result.exit_code == 0, result.output
    assert "formation segment" in result.output
    one_error_line(run("submit", temporal / "records", "--archive", archive, "--pick",
                       "--formation", "none", "--submissions", temporal),
                   "no record of temporal formation 'none'")
    result = run("leaderboard", "validate", "--submissions", temporal)
    assert result.exit_code == 0 and "slide-window" in result.output, result.output


@pytest.mark.parametrize("case, message", [
    ("drop-formation", "holds 16-frame instances"),
    ("formation-on-t8", "track ipc1-t8 is not a temporal track"),
    ("id", "should be"),
])
def test_validate_refuses_a_formation_edited_by_hand(temporal, tmp_path, case, message):
    root = copy_study(temporal, tmp_path)
    path = first_entry(root, r"rded-ipc2-t16-hard-[0-9a-f]{12}-segment")
    data = json.loads(path.read_text())
    if case == "drop-formation":
        data.pop("formation")
    elif case == "formation-on-t8":
        path = first_entry(root, "random-ipc1-t8-hard")
        data = {**json.loads(path.read_text()), "formation": "interpolate-linear-w4"}
    else:
        data["formation"] = "slide-window"          # the other entry's: its id says segment
    path.write_text(json.dumps(data))
    one_error_line(run("leaderboard", "validate", "--submissions", root), message)


# ------------------------------------------------------------------------------- tables
def test_temporal_entries_get_tables_of_their_own(temporal, study, teachers):  # noqa: F811
    from vdcbench.leaderboard.tables import build_tables, load_teacher_sidecars

    sidecars = load_teacher_sidecars(teachers)
    before = build_tables(validate_entries(study), sidecars)
    board = build_tables(validate_entries(temporal), sidecars)
    assert [t.section for t in board.tables] == ["official", "temporal"]
    official, grid = board.tables
    # The official table is exactly what it was without them: never mixed, never re-ranked.
    assert official == before.tables[0]
    assert [u.entry.variant for u in board.unranked] == ["cutmix"]
    labels = [(c.track, c.formation_name) for c in grid.columns]
    assert labels == [("ipc8-t4", "interpolate-linear"), ("ipc4-t8", "none"),
                      ("ipc2-t16", "slide-window"), ("ipc2-t16", "segment"),
                      ("ipc1-t32", "slide-window")]
    assert grid.slug != official.slug and "temporal tracks" in grid.title
    assert grid.full_data.value == 90.0
    cells = {(r.method, r.placeholder): r.cells for r in grid.rows}
    rded = cells[("rded", False)]
    assert set(rded) == {"ipc2-t16/slide-window", "ipc2-t16/segment"}
    window, segment = rded["ipc2-t16/slide-window"], rded["ipc2-t16/segment"]
    assert (window.formation, window.mean, window.n) == ("slide-window", 45.0, 3)
    assert (segment.formation, segment.mean) == ("segment", 40.0)
    assert window.best and segment.best     # each column is ranked on its own
    assert window.gain == pytest.approx(45.0 - 38.0)     # Random of the same column
    assert segment.gain is None                          # no Random formed by segment
    assert cells[("random", False)]["ipc8-t4/interpolate-linear"].best
    assert cells[("random", False)]["ipc4-t8"].mean == 48.0     # none: the track alone
    from vdcbench.leaderboard.render.text import column_label
    assert [column_label(grid, c) for c in grid.columns][2] == "[2, 16] slide-window"
    assert column_label(official, official.columns[0]) == "IPC 1"
    data = grid.to_dict()
    assert data["section"] == "temporal" and data["columns"][3]["formation"] == "segment"
    assert "formation" not in official.to_dict()["columns"][0]


def test_a_temporal_table_plots_a_dot_per_cell(temporal, teachers):  # noqa: F811
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from vdcbench.leaderboard.render.plots import draw_cells, table_plots
    from vdcbench.leaderboard.tables import build_tables, load_teacher_sidecars

    board = build_tables(validate_entries(temporal), load_teacher_sidecars(teachers))
    grid = next(t for t in board.tables if t.temporal)
    [plot] = table_plots(grid)              # no IPC line (two formations share IPC 2), no bytes
    assert plot.path == f"plots/{grid.slug}-cells.svg"
    figure = draw_cells(grid)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    (ax,) = figure.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    # Column by column, in the table's row order: Random before RDED on [2, 16] slide-window.
    assert [label.split(" · n=")[0] for label in labels] == [
        "[8, 4] interpolate-linear · random (hard)", "[4, 8] none · random (hard)",
        "[2, 16] slide-window · random (hard)",
        "[2, 16] slide-window · rded (hard)", "[2, 16] segment · rded (hard)"]
    low, high = ax.get_xlim()
    assert 0 <= low < 10 and 90 < high <= 100              # chance and full data in view
    # The title, over a figure whose labels take half its width, stays inside it.
    box, frame = figure._suptitle.get_window_extent(renderer), figure.bbox
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1


def test_build_readme_json_and_check(temporal, teachers, tmp_path):  # noqa: F811
    from vdcbench.leaderboard.build import build

    out = tmp_path / "lb"
    build(temporal, out, teachers_dir=teachers)
    readme = (out / "README.md").read_text()
    assert "## synthetic · minic3d · top-1 · protocol v1 · temporal tracks" in readme
    head = next(line for line in readme.splitlines() if line.startswith("| Kind")
                and "[2, 16]" in line)
    assert "[2, 16] slide-window (1.2 %)" in head and "[2, 16] segment" in head
    assert "IPC" not in head
    # Columns [8, 4] and [4, 8] empty, then the two formations of one archive, each best in its
    # column; Δ against Random formed the same way, none for segment (no such Random cell).
    assert ("| selection | hard | rded | – |  | – |  | **45.0 ± 1.0** (n=3, self-reported) | "
            "+7.0 | **40.0 ± 1.0** (n=3, self-reported) | – | – |  |") in readme
    assert "| ipc2-t16 (segment) |" in readme
    data = json.loads((out / "leaderboard.json").read_text())
    assert [t["section"] for t in data["tables"]] == ["official", "temporal"]
    assert any(p.endswith("-cells.svg") for paths in data["plots"].values() for p in paths)
    assert (out / "plots" / f"{data['tables'][1]['id']}-cells.svg").is_file()
    result = run("leaderboard", "build", "--check", "--submissions", temporal, "-o", out,
                 "--teachers", teachers)
    assert result.exit_code == 0 and "up to date" in result.output, result.output


def test_page_in_headless_chromium_shows_the_temporal_section(temporal, teachers,  # noqa: F811
                                                              tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from vdcbench.leaderboard.build import build

    build(temporal, tmp_path / "lb", teachers_dir=teachers)
    page = (tmp_path / "lb" / "index.html").resolve()
    dom = subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu",
                          "--no-first-run", "--disable-extensions",
                          "--disable-background-networking",
                          f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,2400",
                          "--virtual-time-budget=3000", "--dump-dom", f"{page.as_uri()}#selftest"],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    report = json.loads(html.unescape(
        dom.stdout.split('id="selftest"')[1].split(">", 1)[1].split("</pre>")[0]))
    boards = {b["section"]: b for b in report["boards"]}
    assert set(boards) == {"official", "temporal"} and len(report["boards"]) == 2
    grid = boards["temporal"]
    assert grid["visible"] and grid["rows"] == 3        # full data, Random and RDED (hard)
    assert "[2, 16] slide-window 1.2 %" in grid["headers"], grid["headers"]
    assert "[2, 16] segment 1.2 %" in grid["headers"]
    assert not any(h.startswith("IPC") for h in grid["headers"])
    assert any(h.startswith("IPC 1") for h in boards["official"]["headers"])
    assert report["entries"] == len(STUDY) + 1 + len(TEMPORAL)
    # Every table fits its box and the page the window, the temporal one included.
    layout = report["layout"]
    assert layout["page_scroll_width"] <= layout["page_width"], layout
    assert len(layout["tables"]) == 3
    for t in layout["tables"]:
        assert not t["overflows"], t
    statuses = report["statuses"]
    assert all(v["status"] == "self-reported" and v["visible"] for k, v in statuses.items()
               if "-ipc2-t16-" in k or "-ipc8-t4-" in k)


# ------------------------------------------------------------------------------- old entries
def test_committed_entries_read_and_write_back_byte_identical():
    """Every committed entry (all written before formations) loads, carries no formation and
    writes back byte for byte; its id is what submit would give it today."""
    from vdcbench.leaderboard.entry import entry_id
    from vdcbench.protocol import load_protocol

    paths = entry_paths(REPO / "submissions")
    assert len(paths) >= 40
    for path in paths:
        entry = Entry.from_disk(path)
        text = json.dumps(entry.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"
        if entry.formation is None:
            assert text == path.read_text(), path
            assert entry.id == entry_id(entry.method.name, entry.track, entry.label_strategy,
                                        entry.archive.sha256, entry.variant, entry.epochs,
                                        load_protocol(entry.protocol_version).trainer.epochs)
        else:
            assert text == path.read_text() and entry.id.endswith(f"-{entry.formation}"), path


def test_diff_tells_two_formations_of_one_archive_apart(temporal):
    from vdcbench.leaderboard.diff import diff

    window = first_entry(temporal, r"rded-ipc2-t16-hard-[0-9a-f]{12}-slide-window")
    segment = first_entry(temporal, r"rded-ipc2-t16-hard-[0-9a-f]{12}-segment")
    comparison = diff(window, segment)
    assert not comparison.comparable and comparison.blocking == ("temporal formation",)


def test_verify_repeats_the_entrys_formation(temporal, tmp_path):
    """verify's preflight builds the evaluation it would run: through the entry's formation, so a
    non-default one (segment on ipc2-t16) is repeated, not refused as another measurement; and
    each seed's source record is found under the formation's folder."""
    from vdcbench.archive import read_archive
    from vdcbench.leaderboard.verify import VerifyOptions, _preflight, claim_from_entry

    entry = Entry.from_disk(first_entry(temporal, r"rded-ipc2-t16-hard-[0-9a-f]{12}-segment"))
    claim = claim_from_entry(entry, temporal)
    assert sorted(claim.records) == [("minic3d", 0), ("minic3d", 1), ("minic3d", 2)]
    assert claim.records[("minic3d", 0)].key.formation == "segment"
    _preflight(claim, read_archive(claim.archive), "minic3d", VerifyOptions(), tmp_path)
