"""The leaderboard: entries, submit and validate refusals, the tie rule, tables, the build, diff
and show — all on hand-made records of tiny real archives (nothing is trained)."""

from __future__ import annotations

import base64
import dataclasses
import html
import itertools
import json
import os
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner

from vdcbench.archive import write_archive
from vdcbench.archive.condensed import CondensedSet, MethodInfo
from vdcbench.data.splits import dataset_sha256
from vdcbench.core.errors import VdcError
from vdcbench.leaderboard.entry import Entry
from vdcbench.leaderboard.submit import submit
from vdcbench.leaderboard.validate import entry_paths, validate_entries
from vdcbench.leaderboard.ties import compare, sign_flip_p_value
from vdcbench.evaluation.records import EvalRecord, RecordKey

FAKE_SHA = "cd" * 32


# ------------------------------------------------------------------------------- fixtures
def make_archive(protocol, path: Path, *, method="random", kind="selection", ipc=1, labels="hard",
                 seed=0) -> str:
    """A tiny real archive for synthetic: ipc x 10 uint8 clips 3x8x56x56, deterministic."""
    n = 10 * ipc
    g = torch.Generator().manual_seed(seed * 1000 + ipc * 10 + len(method))
    # Smooth moving ramps (small PNGs in the gallery), different per instance and method.
    i, c, t, h, w = torch.meshgrid(*(torch.arange(k) for k in (n, 3, 8, 56, 56)), indexing="ij")
    offset = torch.randint(0, 256, (n, 3, 1, 1, 1), generator=g)
    videos = ((w * 4 + h * 2 + t * 16 + offset) % 256).to(torch.uint8)
    soft = torch.softmax(torch.randn(n, 10, generator=g), dim=1) if labels == "soft" else None
    cs = CondensedSet(videos=videos, labels=torch.arange(n, dtype=torch.int64) % 10,
                      dataset="synthetic", track=f"ipc{ipc}-t8",
                      method=MethodInfo(name=method, kind=kind, seed=seed, wall_seconds=1.5,
                                        device="cpu"),
                      soft_labels=soft, label_strategy=labels)
    return write_archive(cs, path, protocol=protocol)


def make_records(protocol, archive_sha: str, top1: dict[int, float], *, method="random",
                 kind="selection", ipc=1, labels="hard", variant="official", net="minic3d",
                 epochs=300, teacher=None) -> list[EvalRecord]:
    ds = protocol.dataset("synthetic")
    records = []
    for seed, value in sorted(top1.items()):
        key = RecordKey(archive_sha256=archive_sha, protocol_version=protocol.version,
                        protocol_sha256=protocol.sha256, dataset="synthetic",
                        dataset_sha256=dataset_sha256(ds), track=f"ipc{ipc}-t8",
                        label_strategy=labels, variant=variant, net=net, teacher_sha256=teacher,
                        seed=seed)
        records.append(EvalRecord(
            key=key, method={"name": method, "kind": kind, "seed": 0}, top1=value,
            top5=min(100.0, value + 40.0), reference_best_top1=value + 1.0,
            official=variant == "official" and epochs == 300, epochs=epochs, iterations=600,
            batch_size=10 * ipc, wall_seconds=12.5, device="cpu", weights_sha256=FAKE_SHA,
            final_loss=0.25, ledger={}, versions={"vdcbench": "0.1.0", "torch": "2.9.0",
                                                   "python": "3.11.7",
                                                   "pytorchvideo": "0.1.5"},
            torch_threads=None if method == "dm" else 2))
    return records


# The hand-made study: (method, kind, ipc, labels, top-1 per evaluation seed).
STUDY = [
    ("random", "selection", 1, "hard", {0: 30.0, 1: 32.0, 2: 31.0}),
    ("herding", "selection", 1, "hard", {0: 35.0, 1: 36.0, 2: 34.0}),
    ("rded", "selection", 1, "hard", {0: 34.5, 1: 37.0, 2: 33.0}),     # ties with herding
    ("dm", "distillation", 1, "hard", {0: 28.0, 1: 29.0, 2: 27.5}),
    ("random", "selection", 5, "hard", {0: 50.0, 1: 52.0, 2: 51.0}),
    ("herding", "selection", 5, "hard", {0: 49.0, 1: 50.0, 2: 50.0}),
    ("rded", "selection", 1, "soft", {0: 40.0, 1: 41.0, 2: 42.0}),     # no Random soft entry
]


@pytest.fixture(scope="module")
def teachers(tmp_path_factory, protocol):
    folder = tmp_path_factory.mktemp("teachers")
    sidecar = {"kind": "vdcbench-teacher", "net": "minic3d", "dataset": "synthetic",
               "dataset_sha256": dataset_sha256(protocol.dataset("synthetic")),
               "protocol": {"version": protocol.version, "sha256": protocol.sha256},
               "epochs_run": 60, "shuffle_frames": False, "val_top1": 90.0, "val_top5": 100.0,
               "sha256": "ef" * 32}
    (folder / f"synthetic-minic3d-p{protocol.short_hash}.json").write_text(json.dumps(sidecar))
    return folder


@pytest.fixture(scope="module")
def study(tmp_path_factory, protocol):
    """A submissions/ tree: archives, records and entries of the hand-made study."""
    root = tmp_path_factory.mktemp("study") / "submissions"
    (root / "archives").mkdir(parents=True)
    shas = {}
    for method, kind, ipc, labels, top1 in STUDY:
        archive = root / "archives" / f"{method}-synthetic-ipc{ipc}-{labels}-s0.tar"
        sha = shas[archive.name] = make_archive(protocol, archive, method=method, kind=kind,
                                                ipc=ipc, labels=labels)
        records = make_records(protocol, sha, top1, method=method, kind=kind, ipc=ipc,
                               labels=labels)
        for r in records:
            r.to_disk(root / "records")
        submit(records, archive, root=root, authors=["A. Tester"]).to_disk(root)
    # A study variant of the IPC 1 Random archive: listed, never ranked.
    name = "random-synthetic-ipc1-hard-s0.tar"
    cut = make_records(protocol, shas[name], {0: 29.0, 1: 30.0}, variant="cutmix")
    submit(cut, root / "archives" / name, root=root).to_disk(root)
    return root


def copy_study(study: Path, tmp_path: Path) -> Path:
    target = tmp_path / "submissions"
    shutil.copytree(study, target)
    return target


def first_entry(root: Path, pattern: str) -> Path:
    """The first entry whose id starts with a match of ``pattern`` (ids embed archive hashes, which move with
    the protocol hash written into every manifest)."""
    return next(p for p in entry_paths(root) if re.match(pattern, p.parent.name))


# ------------------------------------------------------------------------------- entries
def test_entries_round_trip(study):
    paths = entry_paths(study)
    assert len(paths) == len(STUDY) + 1
    for path in paths:
        entry = Entry.from_disk(path)
        assert Entry.from_dict(entry.to_dict()) == entry
        assert json.loads(path.read_text()) == entry.to_dict()
        assert path.relative_to(study) == entry.relative_path()
    entry = Entry.from_disk(first_entry(study, "herding-ipc1-t8"))
    assert entry.method.kind == "selection" and entry.method.authors == ("A. Tester",)
    assert entry.archive.path == "archives/herding-synthetic-ipc1-hard-s0.tar"
    assert entry.official and entry.epochs == 300 and entry.ipc == 1
    assert entry.net("minic3d").metric("top1") == {0: 35.0, 1: 36.0, 2: 34.0}
    assert entry.ledger["instances"] == 10 and entry.condensation_wall_seconds == 1.5
    assert entry.net("minic3d").seeds[0].versions["pytorchvideo"] == "0.1.5"
    assert entry.net("minic3d").seeds[0].torch_threads == 2      # carried from each record
    older = Entry.from_disk(first_entry(study, "dm-ipc1-t8"))    # records without the count
    assert older.net("minic3d").seeds[0].torch_threads is None
    assert "torch_threads" not in older.to_dict()["results"][0]["seeds"][0]
    assert len(validate_entries(study)) == len(paths)


def test_submit_refuses_mixed_records(tmp_path, protocol):
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    sha_a = make_archive(protocol, a)
    sha_b = make_archive(protocol, b, seed=1)
    good = make_records(protocol, sha_a, {0: 30.0, 1: 31.0})
    cases = [
        (good + make_records(protocol, sha_b, {2: 30.0}), "records differ in archive"),
        (good + make_records(protocol, sha_a, {2: 1.0}, variant="cutmix"),
         "records differ in evaluation variant"),
        (good + make_records(protocol, sha_a, {2: 1.0}, labels="soft"),
         "records differ in label strategy"),
        (good + make_records(protocol, sha_a, {2: 1.0}, ipc=5), "records differ in track"),
        (good + make_records(protocol, sha_a, {2: 1.0}, teacher="ab" * 32),
         "records differ in teacher"),
        (good + make_records(protocol, sha_a, {2: 1.0}, epochs=2), "differ in schedule"),
        (good + make_records(protocol, sha_a, {1: 1.0}), "two records for net minic3d seed 1"),
        (make_records(protocol, sha_b, {0: 1.0}), "has sha256"),
        ([], "no result records"),
    ]
    other_protocol = [EvalRecord.from_dict({**r.to_dict(), "key": {
        **r.to_dict()["key"], "protocol_sha256": "00" * 32}}) for r in good[:1]]
    cases.append((good + other_protocol, "records differ in protocol hash"))
    cases.append((other_protocol, "is not the hash of protocol v1"))
    other_data = [EvalRecord.from_dict({**r.to_dict(), "key": {
        **r.to_dict()["key"], "dataset_sha256": "00" * 32}}) for r in good]
    cases.append((other_data, "data-set store hash"))
    # A teacher profile other than the protocol's: another measurement, never mixed, and not
    # ranked by the leaderboard at all (an entry has no place for it).
    profile = "cpu@" + "ab" * 32
    cpu = [dataclasses.replace(r, key=dataclasses.replace(r.key, teacher_profile=profile))
           for r in good]
    cases.append((good + cpu[:1], "records differ in teacher profile"))
    cases.append((cpu, r"teacher of profile cpu@abababababab, not the protocol teacher"))
    for records, message in cases:
        with pytest.raises(VdcError, match=message) as info:
            submit(records, a)
        assert "\n" not in str(info.value)
    entry = submit(good, a, root=tmp_path, archive_url="https://example.org/a.tar")
    assert entry.archive.path == "a.tar" and entry.archive.url == "https://example.org/a.tar"
    assert entry.id == f"random-ipc1-t8-hard-{sha_a[:12]}"
    short = submit(make_records(protocol, sha_a, {0: 3.0}, epochs=2), a)
    assert not short.official and short.id.endswith("-e2")


def test_entry_summary_must_match_its_seeds(study, tmp_path):
    root = copy_study(study, tmp_path)
    path = first_entry(root, "herding-ipc1-t8")
    data = json.loads(path.read_text())
    data["results"][0]["seeds"][1]["top1"] = 99.0
    path.write_text(json.dumps(data))
    with pytest.raises(VdcError, match="top1_mean is .* but its seeds give"):
        validate_entries(root)


# ------------------------------------------------------------------------------- ties
def test_tie_rule_sign_rule_below_six_seeds():
    random = {0: 30.0, 1: 32.0, 2: 31.0}
    assert not compare({0: 35.0, 1: 36.0, 2: 34.0}, random).tied           # all +
    result = compare({0: 35.0, 1: 36.0, 2: 34.0}, random)
    assert result.rule == "sign" and result.direction == 1 and result.a_better
    assert compare({0: 34.5, 1: 37.0, 2: 33.0}, {0: 35.0, 1: 36.0, 2: 34.0}).tied  # -, +, -
    assert compare({0: 31.0, 1: 33.0, 2: 31.0}, random).tied                # a zero difference
    assert not compare({0: 29.0, 1: 31.5, 2: 30.9}, random).tied            # all -, tiny
    assert compare({0: 29.0, 1: 31.5, 2: 30.9}, random).direction == -1
    # Only the paired seeds count; one pair is no evidence.
    assert compare({0: 99.0, 5: 1.0}, {0: 1.0, 6: 99.0}).rule == "too-few-pairs"
    assert compare({0: 99.0}, {0: 1.0}).tied
    assert compare({0: 31.0, 1: 33.0, 7: 0.0}, {0: 30.0, 1: 32.0, 8: 90.0}).rule == "sign"


def test_tie_rule_exact_permutation_test_from_six_seeds():
    # Six differences of one sign: p = 2/64 < 5 %, separated.
    base = {s: 50.0 for s in range(6)}
    up = {s: 50.0 + 0.1 * (s + 1) for s in range(6)}
    result = compare(up, base)
    assert result.rule == "permutation" and result.p_value == Fraction(2, 64) and not result.tied
    # One small negative difference among six: the sign rule would tie, the test separates.
    # d = 5, 4, 3, 2, 1, -0.5: sum 14.5; sums >= 14.5 in |.|: only all-plus and the flip of
    # -0.5 (15.5) and their mirrors: 4/64 = 6.25 % -> tied; with -0.25 the same count.
    mixed = {0: 55.0, 1: 54.0, 2: 53.0, 3: 52.0, 4: 51.0, 5: 49.5}
    assert compare(mixed, base).p_value == Fraction(4, 64) and compare(mixed, base).tied
    # Seven pairs, one negative: d = 7..2 and -1 -> sum 26; |sum| >= 26 reached by all-plus
    # (26), flipping -1 (28), flipping -1 and 2 (24, no)... counted exactly: 4/128.
    base7 = {s: 50.0 for s in range(7)}
    seven = {0: 57.0, 1: 56.0, 2: 55.0, 3: 54.0, 4: 53.0, 5: 52.0, 6: 49.0}
    result = compare(seven, base7)
    assert result.p_value == Fraction(4, 128) and not result.tied and result.a_better
    # Exact arithmetic: values whose float differences round differently still count exactly.
    assert sign_flip_p_value([Fraction(1), Fraction(-1)]) == Fraction(1)
    assert sign_flip_p_value([Fraction(1, 10)] * 6) == Fraction(2, 64)
    assert compare({s: 0.3 for s in range(6)}, {s: 0.1 + 0.2 for s in range(6)}).p_value \
        == sign_flip_p_value([Fraction(0.3) - Fraction(0.1 + 0.2)] * 6)
    # Identical cells always tie.
    assert compare(base, base).tied and compare(base, base).direction == 0


# ------------------------------------------------------------------------------- tables
def test_tables_in_table6_shape(study, teachers):
    from vdcbench.leaderboard.tables import build_tables, load_teacher_sidecars

    board = build_tables(validate_entries(study), load_teacher_sidecars(teachers))
    assert len(board.tables) == 1
    table = board.tables[0]
    assert (table.dataset, table.net, table.metric) == ("synthetic", "minic3d", "top1")
    assert [c.ipc for c in table.columns] == [1, 5, 10]
    assert table.columns[0].ratio == pytest.approx(10 * 8 / (800 * 32))
    assert table.full_data.value == 90.0
    rows = [(r.kind, r.label_strategy, r.method, r.placeholder) for r in table.rows]
    assert rows == [("selection", "hard", "random", False), ("selection", "hard", "herding", False),
                    ("selection", "hard", "rded", False), ("selection", "soft", "random", True),
                    ("selection", "soft", "rded", False), ("distillation", "hard", "dm", False)]
    cell = {(r.method, r.label_strategy): r.cells for r in table.rows}
    herding, rded = cell[("herding", "hard")]["ipc1-t8"], cell[("rded", "hard")]["ipc1-t8"]
    assert herding.gain == pytest.approx(4.0) and rded.gain == pytest.approx(34.833333 - 31.0)
    assert cell[("rded", "soft")]["ipc1-t8"].best              # the best overall at IPC 1
    assert cell[("rded", "soft")]["ipc1-t8"].gain is None      # no Random soft cell
    assert not herding.tied_with_best                          # all three seeds below rded soft
    assert cell[("dm", "hard")]["ipc1-t8"].best_in_kind        # underlined: best distillation
    assert cell[("random", "hard")]["ipc5-t8"].best
    assert not cell[("herding", "hard")]["ipc5-t8"].tied_with_best   # -1, -2, -1: separated
    assert herding.by_seed == {0: 35.0, 1: 36.0, 2: 34.0} and herding.n == 3
    assert [u.entry.variant for u in board.unranked] == ["cutmix"]


def test_ties_are_marked_against_the_column_best(study, tmp_path):
    from vdcbench.leaderboard.tables import build_tables

    root = copy_study(study, tmp_path)
    shutil.rmtree(first_entry(root, "rded-ipc1-t8-soft").parent)
    table = build_tables(validate_entries(root)).tables[0]
    cells = {(r.method, r.label_strategy): r.cells for r in table.rows}
    assert cells[("herding", "hard")]["ipc1-t8"].best
    assert cells[("rded", "hard")]["ipc1-t8"].tied_with_best   # -0.5, +1, -1 against herding
    assert not cells[("random", "hard")]["ipc1-t8"].tied_with_best
    assert table.full_data is None                             # no teacher sidecars given
    assert not any(r.placeholder for r in table.rows)


# ------------------------------------------------------------------------------- the CLI
def cli():
    from vdcbench.cli.leaderboard import register
    group = click.Group("vdcbench")
    register(group)
    return group


def run(*args):
    return CliRunner().invoke(cli(), [str(a) for a in args])


def one_error_line(result, message: str, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    assert message in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_submit_command_writes_an_entry(study, tmp_path, protocol):
    root = tmp_path / "submissions"
    archive = root / "archives" / "r.tar"
    archive.parent.mkdir(parents=True)
    sha = make_archive(protocol, archive, seed=7)
    for r in make_records(protocol, sha, {0: 20.0, 1: 21.0, 2: 22.0}):
        r.to_disk(tmp_path / "records")
    result = run("submit", tmp_path / "records", "--archive", archive, "--submissions", root,
                 "--author", "B. Author", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output and not entry_paths(root)
    result = run("submit", tmp_path / "records", "--archive", archive, "--submissions", root,
                 "--author", "B. Author")
    assert result.exit_code == 0, result.output
    [path] = entry_paths(root)
    entry = Entry.from_disk(path)
    assert entry.method.authors == ("B. Author",) and entry.archive.path == "archives/r.tar"
    assert run("leaderboard", "validate", "--submissions", root).exit_code == 0
    # Mixed records from the command line: one line, exit 2.
    other = make_records(protocol, sha, {3: 1.0}, variant="kl")
    other[0].to_disk(tmp_path / "records")
    one_error_line(run("submit", tmp_path / "records", "--archive", archive, "--submissions",
                       root), "records differ in evaluation variant")
    result = run("submit", tmp_path / "records", "--archive", archive, "--submissions", root,
                 "--author", "B. Author", "--variant", "official")
    assert result.exit_code == 0, result.output         # the same entry again: nothing changes
    one_error_line(run("submit", tmp_path / "records", "--archive", archive, "--submissions",
                       root, "--variant", "official"), "exists with other content")
    # --pick: from a folder of many archives' records, those that score the archive.
    herding = study / "archives" / "herding-synthetic-ipc1-hard-s0.tar"
    result = run("submit", study / "records", "--archive", herding, "--pick", "--dry-run",
                 "--submissions", study)
    assert result.exit_code == 0 and "herding-ipc1-t8-hard-" in result.output, result.output
    one_error_line(run("submit", study / "records", "--archive", herding, "--submissions",
                       study), "records differ in")
    one_error_line(run("submit", tmp_path / "records", "--archive", herding, "--pick"),
                   "no record in")


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


@pytest.mark.parametrize("case, message", [
    ("schema", "breaks entry.schema.json at results/0/seeds/0/top1"),
    ("schema-missing", "breaks entry.schema.json at (top level): 'ledger' is a required"),
    ("schema-ledger-extra", "breaks entry.schema.json at ledger: Additional properties"),
    ("protocol-hash", "is not the hash of protocol v1"),
    ("protocol-version", "unknown protocol version 7"),
    ("archive-hash", "not the sha256 the entry's results were measured on"),
    ("archive-missing", "is missing"),
    ("archive-escape", "leaves the submissions folder"),
    ("location", "belongs at synthetic/"),
    ("summary", "but its seeds give"),
    ("official", "claims official results with variant cutmix"),
    ("not-json", "not JSON"),
])
def test_validate_refuses_with_one_line_and_exit_2(study, tmp_path, protocol, case, message):
    root = copy_study(study, tmp_path)
    path = first_entry(root, "random-ipc1-t8-hard")
    cutmix = first_entry(root, r"random-ipc1-t8-hard-[0-9a-f]{12}-cutmix")
    if case == "schema":
        _edit(path, lambda d: d["results"][0]["seeds"][0].update(top1="high"))
    elif case == "schema-missing":
        _edit(path, lambda d: d.pop("ledger"))
    elif case == "schema-ledger-extra":
        _edit(path, lambda d: d["ledger"].update(compressed_bytes=1))
    elif case == "protocol-hash":
        _edit(path, lambda d: d["protocol"].update(sha256="0" * 64))
    elif case == "protocol-version":
        _edit(path, lambda d: d["protocol"].update(version=7))
    elif case == "archive-hash":
        # Another valid archive put in its place: the results were not measured on it.
        make_archive(protocol, root / "archives" / "other.tar", seed=9)
        (root / "archives" / "other.tar").replace(root / "archives" /
                                                  "random-synthetic-ipc1-hard-s0.tar")
    elif case == "archive-missing":
        (root / "archives" / "random-synthetic-ipc1-hard-s0.tar").unlink()
    elif case == "archive-escape":
        _edit(path, lambda d: d["archive"].update(path="../../etc/passwd"))
    elif case == "location":
        path.parent.rename(path.parent.with_name("elsewhere"))
    elif case == "summary":
        _edit(path, lambda d: d["results"][0].update(top1_mean=99.0))
    elif case == "official":
        _edit(cutmix, lambda d: d.update(official=True))
    elif case == "not-json":
        path.write_text("{")
    result = run("leaderboard", "validate", "--submissions", root)
    one_error_line(result, message)
    # The build refuses the same way: it never renders an invalid entry.
    one_error_line(run("leaderboard", "build", "--submissions", root, "-o", tmp_path / "lb"),
                   message)


# ------------------------------------------------------------------------------- the build
def test_build_is_byte_identical_and_check_detects_staleness(study, teachers, tmp_path):
    from vdcbench.leaderboard.build import build

    out_a, out_b = tmp_path / "a", tmp_path / "b"
    written = build(study, out_a, teachers_dir=teachers)
    assert {p.relative_to(out_a).as_posix() for p in written} >= {
        "README.md", "leaderboard.json", "index.html"}
    # A second build from a copy, elsewhere: the same bytes, file for file.
    copy = copy_study(study, tmp_path / "copy")
    build(copy, out_b, teachers_dir=teachers)
    files_a = sorted(p.relative_to(out_a) for p in out_a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(out_b) for p in out_b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 3 + 2 + 7    # 2 plots, 7 archives in gallery
    for rel in files_a:
        assert (out_a / rel).read_bytes() == (out_b / rel).read_bytes(), rel
    assert build(study, out_a, teachers_dir=teachers) == []            # nothing changed
    assert build(study, out_a, check=True, teachers_dir=teachers) == []
    svg = next((out_a / "plots").glob("*-ipc.svg")).read_text()
    assert "<dc:date>" not in svg
    result = run("leaderboard", "build", "--check", "--submissions", study, "-o", out_a,
                 "--teachers", teachers)
    assert result.exit_code == 0 and "up to date" in result.output

    # Edit one number of an entry (and its summary, so the entry stays valid): stale.
    path = first_entry(copy, "herding-ipc1-t8")

    def bump(d):
        d["results"][0]["seeds"][0]["top1"] = 38.0
        d["results"][0]["top1_mean"] = 36.0
        d["results"][0]["top1_std"] = 2.0
    _edit(path, bump)
    stale = build(copy, out_b, check=True, teachers_dir=teachers)
    assert {p.name for p in stale} >= {"README.md", "leaderboard.json", "index.html"}
    result = run("leaderboard", "build", "--check", "--submissions", copy, "-o", out_b,
                 "--teachers", teachers)
    assert result.exit_code == 1 and "is stale" in result.output
    # A leftover generated file is stale too, and the build removes it.
    (out_a / "plots" / "old.svg").write_text("<svg/>")
    assert build(study, out_a, check=True, teachers_dir=teachers) == [out_a / "plots" / "old.svg"]
    build(study, out_a, teachers_dir=teachers)
    assert not (out_a / "plots" / "old.svg").exists()


def test_readme_and_page_content(study, teachers, tmp_path):
    from html.parser import HTMLParser

    from vdcbench.leaderboard.build import build

    build(study, tmp_path, teachers_dir=teachers)
    readme = (tmp_path / "README.md").read_text()
    assert "| selection | hard | random | 31.0 ± 1.0 (n=3, self-reported) | ref. |" in readme
    assert "| selection | soft | rded | **41.0 ± 1.0** (n=3, self-reported) | – |" in readme
    # Beside each entry's numbers, who vouches for them.
    assert ("| minic3d 31.0 ± 1.0 (n=3) | self-reported by A. Tester (cpu, torch threads 2, "
            "torch 2.9.0) |") in readme
    assert "| selection | soft | random (no entry) |" in readme
    assert "| full data | – | full data (protocol teacher) | 90.0 (n=1) |" in readme
    assert "IPC 1 (0.31 %)" in readme and "study variant 'cutmix'" in readme
    data = json.loads((tmp_path / "leaderboard.json").read_text())
    assert data["format"] == "vdcbench-leaderboard" and len(data["entries"]) == len(STUDY) + 1
    page = (tmp_path / "index.html").read_text()

    class Resources(HTMLParser):
        def __init__(self):
            super().__init__()
            self.urls, self.csp = [], None

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            for name in ("src", "href", "action", "data", "poster"):
                if attrs.get(name) is not None:
                    self.urls.append(attrs[name])
            if attrs.get("http-equiv") == "Content-Security-Policy":
                self.csp = attrs["content"]

    parser = Resources()
    parser.feed(page)
    assert parser.csp and "default-src 'none'" in parser.csp
    # Data URIs, and fragments into the page itself (an entry's link to its archive's picture).
    assert parser.urls and all(u.startswith(("data:", "#")) for u in parser.urls), parser.urls
    ids = set(re.findall(r' id="([^"]+)"', page))
    assert all(u[1:] in ids for u in parser.urls if u.startswith("#"))
    assert "@import" not in page and "url(" not in page.split("<script>")[0]
    for entry in validate_entries(study):
        assert f'id="entry-{entry.id}"' in page
    assert 'id="filter-labels"' in page and 'id="filter-net"' in page
    assert 'id="filter-status"' in page and page.count('<td class="status"') == len(STUDY) + 1
    assert all(s["status"] == "self-reported" and s["by"] in ("A. Tester", "unnamed submitter")
               for s in data["statuses"].values())


def _table(study, teachers, net="minic3d"):
    from vdcbench.leaderboard.tables import build_tables
    board = build_tables(validate_entries(study), _sidecars(teachers))
    return next(t for t in board.tables if t.net == net)


def _sidecars(folder):
    from vdcbench.leaderboard.tables import load_teacher_sidecars
    return load_teacher_sidecars(folder)


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_plots_keep_legends_off_the_axes_and_draw_only_what_shows_something(study, teachers):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from vdcbench.leaderboard.render.plots import draw_bytes, draw_dots, draw_ipc, table_plots

    table = _table(study, teachers)
    plots = table_plots(table)
    assert [p.path.rsplit("-", 1)[1] for p in plots] == ["ipc.svg", "bytes.svg"]
    for draw in (draw_ipc, draw_bytes):
        figure = draw(table)
        canvas = FigureCanvasAgg(figure)
        canvas.draw()                               # lays the figure out, as saving does
        renderer = canvas.get_renderer()
        (ax,) = figure.axes
        (legend,) = figure.legends
        labels = [t.get_text() for t in legend.get_texts()]
        assert "chance" in labels and "full data" in labels and "rded (soft)" in labels
        # Below the axes: no legend box over any line, whatever the data.
        assert not _overlap(legend.get_window_extent(renderer), ax.get_window_extent(renderer))
        low, high = ax.get_ylim()
        assert 0 <= low <= 10 and 90 <= high <= 100      # chance (10 %) and full data (90 %)

    # The same table with results on IPC 1 only: no line through one IPC, no bytes axis
    # stretched over label bytes, but a dot per row on an accuracy axis that makes sense.
    ipc1 = table.columns[0]
    single = dataclasses.replace(table, rows=tuple(
        dataclasses.replace(r, cells={t: c for t, c in r.cells.items() if t == ipc1.track})
        for r in table.rows))
    plots = table_plots(single)
    assert [p.path.rsplit("-", 1)[1] for p in plots] == ["ipc1.svg"]
    assert "the only IPC with results" in plots[0].caption
    figure = draw_dots(single, ipc1)
    (ax,) = figure.axes
    low, high = ax.get_xlim()
    means = [r.cells[ipc1.track].mean for r in single.rows if r.cells]
    assert 0 <= low < 10 < min(means) and max(means) < 90 < high <= 100
    assert len(ax.get_yticklabels()) == len(means)
    # A table without results has no plot at all.
    empty = dataclasses.replace(table, rows=tuple(dataclasses.replace(r, cells={})
                                                  for r in table.rows))
    assert table_plots(empty) == ()


def test_nets_come_in_the_protocols_order(study, teachers, tmp_path, protocol):
    from vdcbench.leaderboard.build import render
    from vdcbench.leaderboard.render.text import entry_figures
    from vdcbench.leaderboard.tables import build_tables

    root = copy_study(study, tmp_path)
    # The Random IPC 1 entry, measured on i3d_r18 as well (a net that sorts before minic3d).
    archive = root / "archives" / "random-synthetic-ipc1-hard-s0.tar"
    sha = next(e for e in validate_entries(root) if e.method.name == "random" and e.ipc == 1
               and e.variant == "official").archive.sha256
    records = (make_records(protocol, sha, {0: 30.0, 1: 32.0, 2: 31.0})
               + make_records(protocol, sha, {0: 20.0, 1: 21.0}, net="i3d_r18"))
    for path in entry_paths(root):
        if path.parent.name.startswith("random-ipc1-t8-hard-") and "cutmix" not in path.parent.name:
            path.unlink()
    submit(records, archive, root=root).to_disk(root)
    assert sorted(["minic3d", "i3d_r18"]) == ["i3d_r18", "minic3d"]
    board = build_tables(validate_entries(root), _sidecars(teachers))
    assert [t.net for t in board.tables] == ["minic3d", "i3d_r18"]
    entry = next(e for e in board.entries if len(e.nets) == 2)
    assert entry.nets == ("i3d_r18", "minic3d")                  # stored by name
    assert entry_figures(entry).startswith("minic3d 31.0 ± 1.0 (n=3); i3d_r18 ")
    files = render(root, teachers)
    page = files["index.html"].decode()
    assert page.index('<option value="minic3d">') < page.index('<option value="i3d_r18">')
    assert page.index('data-net="minic3d"') < page.index('data-net="i3d_r18"')
    readme = files["README.md"].decode()
    assert readme.index("## synthetic · minic3d") < readme.index("## synthetic · i3d_r18")


def test_gallery_pictures_are_per_archive(study, tmp_path, protocol):
    import io

    from PIL import Image

    from vdcbench.archive import read_archive
    from vdcbench.leaderboard.render.gallery import gallery_images

    entries = validate_entries(study)
    images = gallery_images(study, entries)
    by_archive = {image.first.archive.sha256: image for image in images}
    assert len(images) == len({e.archive.sha256 for e in entries}) == 7
    # One picture per archive, and no two alike, though two archives hold the same clips.
    assert len({image.png for image in images}) == 7
    hard, soft = (read_archive(study / "archives" / f"rded-synthetic-ipc1-{labels}-s0.tar")
                  for labels in ("hard", "soft"))
    assert torch.equal(hard.condensed.videos, soft.condensed.videos)
    assert hard.sha256 != soft.sha256
    assert by_archive[hard.sha256].png != by_archive[soft.sha256].png
    # Entries on one archive share its picture (the Random IPC 1 set and its cutmix variant).
    shared = [image for image in images if len(image.entries) > 1]
    assert len(shared) == 1 and {e.variant for e in shared[0].entries} == {"official", "cutmix"}
    # Every clip is drawn: the IPC 5 sheet holds five clips of 3 frames of 24 px in a row, the
    # IPC 1 sheet has no room for them; and a sheet stays light (a 256-colour palette).
    sizes = {}
    for image in images:
        picture = Image.open(io.BytesIO(image.png))
        assert picture.format == "PNG" and picture.mode == "P" and len(image.png) < 100_000
        sizes[(image.first.method.name, image.first.ipc, image.first.label_strategy)] = \
            picture.size
    assert sizes[("random", 5, "hard")][0] >= 5 * 3 * 24 > sizes[("random", 1, "hard")][0]
    assert sizes[("random", 5, "hard")][1] == sizes[("random", 1, "hard")][1]    # 10 classes
    # Deterministic: the same archives give the same bytes.
    assert [i.png for i in gallery_images(study, entries)] == [i.png for i in images]


def test_page_in_headless_chromium(study, teachers, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); the page's "
                    "static checks run in test_readme_and_page_content")
    from vdcbench.leaderboard.build import build

    # Two entries earn statuses (herding: verified; RDED hard: reproduced), the rest stay
    # self-reported: the page shows each beside the entry's numbers and filters on it.
    study = copy_study(study, tmp_path)
    statuses = {"herding-ipc1-t8-hard": "verified", "rded-ipc1-t8-hard": "reproduced"}
    for prefix, status in statuses.items():
        _give_status(first_entry(study, prefix), status)
    build(study, tmp_path / "lb", teachers_dir=teachers)
    page = (tmp_path / "lb" / "index.html").resolve()
    # The screenshot is the test's artefact: kept where VDCBENCH_TEST_ARTEFACTS says (CI).
    artefacts = Path(os.environ.get("VDCBENCH_TEST_ARTEFACTS") or tmp_path / "artefacts")
    artefacts.mkdir(parents=True, exist_ok=True)
    common = [browser, "--headless=new", "--no-sandbox", "--disable-gpu",
              "--no-first-run", "--disable-extensions", "--disable-background-networking",
              f"--user-data-dir={tmp_path / 'profile'}"]
    # A 1,400 px window: the width the page must fit without hiding a column.
    dom = subprocess.run(common + ["--window-size=1400,2400", "--virtual-time-budget=3000",
                                   "--dump-dom", f"{page.as_uri()}#selftest"],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-ready="1"' in dom.stdout
    report = json.loads(html.unescape(
        dom.stdout.split('id="selftest"')[1].split(">", 1)[1].split("</pre>")[0]))
    assert report["sorted_desc"] and report["sorted_asc"]
    assert report["entries"] == len(STUDY) + 1 and report["images"] == 2 + 7
    assert all(f["only_matching"] and f["visible"] > 0 for f in report["filters"].values())

    # Every entry shows its status on screen, and the status filter keeps exactly its entries.
    shown = report["statuses"]
    assert len(shown) == len(STUDY) + 1 and all(s and s["visible"] for s in shown.values())
    expected = {entry_id: next((s for p, s in statuses.items() if entry_id.startswith(p)),
                               "self-reported") for entry_id in shown}
    assert {k: v["status"] for k, v in shown.items()} == expected
    herding = next(v for k, v in shown.items() if k.startswith("herding-ipc1-t8-hard"))
    assert herding["text"].startswith("verified") and "minic3d s0" in herding["text"]
    rded = next(v for k, v in shown.items() if k.startswith("rded-ipc1-t8-hard"))
    assert "another thread count (1 here, 2 claimed)" in rded["text"]
    filters = report["status_filters"]
    assert set(filters) == {"verified", "reproduced", "self-reported"}
    for status, seen in filters.items():
        assert seen["entries"] == sorted(k for k, v in expected.items() if v == status), status
        assert seen["lit_cells"] > 0 and seen["cells_hold_it"], (status, seen)

    # No table sticks out of the box it scrolls in, and the page is no wider than the window.
    layout = report["layout"]
    assert layout["window_width"] == 1400, layout
    assert layout["page_scroll_width"] <= layout["page_width"], layout
    tables = {t["section"]: t for t in layout["tables"]}
    assert "entries" in tables and len(tables) == 2, tables          # the board and the entries
    for name, t in tables.items():
        assert not t["overflows"] and t["table_width"] <= t["box_width"], (name, t)

    # The gallery: a decoded picture per archive, and entries on different archives never share
    # one (the study has two archives holding the same clips: RDED IPC 1 hard and soft).
    gallery = report["gallery"]
    figures = gallery["figures"]
    assert len(figures) == 7 and all(f["width"] > 0 and f["height"] > 0 for f in figures)
    assert len({f["archive"] for f in figures}) == len({f["source"] for f in figures}) == 7
    entries = gallery["entries"]
    assert len(entries) == len(STUDY) + 1 and all(e["source"] for e in entries.values())
    for (a, x), (b, y) in itertools.combinations(sorted(entries.items()), 2):
        assert (x["source"] == y["source"]) == (x["archive"] == y["archive"]), (a, b)
    # The same, byte for byte, from the sources in the page.
    pictures = {}
    for archive, source in re.findall(r'<figure id="archive-[0-9a-f]+"[^>]*'
                                      r'data-archive="([0-9a-f]{64})"><img [^>]*src="([^"]+)"',
                                      dom.stdout):
        pictures[archive] = base64.b64decode(source.split(",", 1)[1])
    assert len(pictures) == 7 and len(set(pictures.values())) == 7

    shot = subprocess.run(common + ["--window-size=1400,2400",
                                    f"--screenshot={artefacts / 'leaderboard-page.png'}",
                                    page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and (artefacts / "leaderboard-page.png").is_file()


def _give_status(path: Path, status: str) -> None:
    """Write a (valid) verified or reproduced status into the entry at ``path``."""
    from vdcbench.leaderboard.verification import CheckedSeed, Status, Verification

    entry = Entry.from_disk(path)
    seed = entry.net("minic3d").seeds[0]
    reproduced = status == "reproduced"
    dataclasses.replace(entry, verification=Verification(
        status=Status(status), archive_sha256=entry.archive.sha256, by="CI",
        where="cpu, torch threads 1, torch 2.9.0, test CPU",
        reason="another thread count (1 here, 2 claimed)" if reproduced else None,
        tolerance=2.0 if reproduced else None,
        checked=(CheckedSeed("minic3d", seed.seed, seed.weights_sha256, seed.top1,
                             0.5 if reproduced else 0.0),), vdcbench="0.1.0")
    ).to_disk(path.parents[2], replace=True)


# ------------------------------------------------------------------------------- diff
def test_diff_explains_field_by_field(study, tmp_path, protocol):
    from vdcbench.leaderboard.diff import diff

    random1 = first_entry(study, r"random-ipc1-t8-hard-[0-9a-f]{12}$")
    herding1 = first_entry(study, "herding-ipc1-t8")
    random5 = first_entry(study, "random-ipc5-t8")
    cutmix = first_entry(study, r"random-ipc1-t8-hard-[0-9a-f]{12}-cutmix")
    same = diff(random1, herding1)
    assert same.comparable
    status = {f.field: f.status for f in same.fields}
    assert status["protocol hash"] == "same" and status["archive"] == "note"
    assert status["seeds (minic3d)"] == "same" and status["method"] == "note"
    assert status["torch threads"] == "same" and status["method settings"] == "note"
    # The dm records carry no thread count: comparable, but not bit for bit.
    threads = {f.field: f for f in diff(random1, first_entry(study, "dm-ipc1-t8")).fields}
    assert threads["torch threads"].status == "note" and threads["torch threads"].b == "unknown"
    assert not diff(random1, random5).comparable and diff(random1, random5).blocking == ("track",)
    assert diff(random1, cutmix).blocking == ("evaluation variant",)
    # A record against an entry: the record's seed pairs with one of the entry's.
    record = next((study / "records").rglob("seed1.json"))
    mixed = diff(record, random1)
    assert mixed.a.kind == "result record" and mixed.b.kind == "entry"
    result = run("diff", random1, random5)
    assert result.exit_code == 0, result.output
    assert "not comparable: track differs" in " ".join(result.output.split())
    assert run("diff", random1, random5, "--strict").exit_code == 1
    assert "comparable" in run("diff", random1, herding1).output
    (tmp_path / "x.json").write_text('{"hello": 1}')
    one_error_line(run("diff", tmp_path / "x.json", random1), "not a result record, an entry")
    one_error_line(run("diff", tmp_path / "missing.json", random1), "cannot read")


# ------------------------------------------------------------------------------- show
def test_show_draws_a_grid_per_class_and_gifs(study, tmp_path):
    from PIL import Image

    archive = study / "archives" / "random-synthetic-ipc5-hard-s0.tar"
    result = run("show", archive, "-o", tmp_path / "grid.png", "--gif-dir", tmp_path / "gifs")
    assert result.exit_code == 0, result.output
    grid = Image.open(tmp_path / "grid.png")
    assert grid.format == "PNG" and grid.height > 5 * 10 * 56 and grid.width > 8 * 56
    gifs = sorted((tmp_path / "gifs").glob("*.gif"))
    assert len(gifs) == 10 and gifs[0].name == "000-pan-up.gif"
    animation = Image.open(gifs[0])
    assert animation.n_frames == 8 and animation.width >= 5 * 56
    first = (tmp_path / "grid.png").read_bytes()
    assert run("show", archive, "-o", tmp_path / "grid.png").exit_code == 0
    assert (tmp_path / "grid.png").read_bytes() == first                   # deterministic
    one_error_line(run("show", tmp_path / "nope.tar"), "no such file")
    one_error_line(run("show", archive, "-o", tmp_path / "grid.jpg"), "name the output *.png")
