"""vdcbench verify and the verification status: the comparison field by field, statuses that
follow their archive and seeds, and CI's refusal of each wrong submission (one line, exit 2).

Nothing here trains: re-scoring for real is tests/test_contributor_path.py's (slow), on a
scratch copy of the repository."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from vdcbench.archive import write_archive
from vdcbench.archive.condensed import CondensedSet, MethodInfo
from vdcbench.cli import main
from vdcbench.core.errors import VdcError
from vdcbench.data.splits import dataset_sha256
from vdcbench.evaluation.records import EvalRecord, RecordKey
from vdcbench.leaderboard.entry import Entry, SeedResult
from vdcbench.leaderboard.submit import submit
from vdcbench.leaderboard.validate import entry_paths, validate_entries
from vdcbench.leaderboard.verification import (LEGACY_BY, CheckedSeed, Status, Verification,
                                               check_status, status_of, status_problem)
from vdcbench.leaderboard.verify import Outcome, compare_seed, earned_status, VerifyReport, Claim

WEIGHTS = "ab" * 32


def make_archive(protocol, path: Path, *, seed=0, weights=(), data=(), config=None) -> str:
    g = torch.Generator().manual_seed(seed)
    videos = torch.randint(0, 256, (10, 3, 8, 56, 56), generator=g, dtype=torch.uint8)
    cs = CondensedSet(videos=videos, labels=torch.arange(10, dtype=torch.int64),
                      dataset="synthetic", track="ipc1-t8",
                      method=MethodInfo(name="mine", kind="selection", seed=seed,
                                        wall_seconds=1.0, device="cpu", config=config or {}),
                      label_strategy="hard", external_weights=tuple(weights),
                      external_data=tuple(data))
    return write_archive(cs, path, protocol=protocol)


def make_records(protocol, sha: str, top1: dict[int, float], *, epochs=300, threads=1):
    ds = protocol.dataset("synthetic")
    return [EvalRecord(
        key=RecordKey(archive_sha256=sha, protocol_version=protocol.version,
                      protocol_sha256=protocol.sha256, dataset="synthetic",
                      dataset_sha256=dataset_sha256(ds), track="ipc1-t8", label_strategy="hard",
                      variant="official", net="minic3d", teacher_sha256=None, seed=seed),
        method={"name": "mine", "kind": "selection", "seed": 0}, top1=value, top5=value + 40,
        reference_best_top1=value + 1, official=epochs == 300, epochs=epochs, iterations=300,
        batch_size=10, wall_seconds=100.0 + seed, device="cpu", weights_sha256=WEIGHTS,
        final_loss=0.5, ledger={}, versions={"vdcbench": "0.1.0", "torch": torch.__version__,
                                             "python": "3.11.7"},
        torch_threads=threads) for seed, value in sorted(top1.items())]


@pytest.fixture()
def repo(tmp_path, protocol):
    """A repository's submissions/ (one entry, its archive and records) and its leaderboard/."""
    root = tmp_path / "submissions"
    archive = root / "archives" / "mine.tar"
    archive.parent.mkdir(parents=True)
    sha = make_archive(protocol, archive)
    records = make_records(protocol, sha, {0: 30.0, 1: 32.0})
    for r in records:
        r.to_disk(root / "records")
    submit(records, archive, root=root, authors=["C. Contributor"]).to_disk(root)
    return root


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_error_line(result, message):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0], result.output


def ci_refusal(result, message):
    """CI's output: notes on what changed, then the refusal, one line, last; exit 2."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == [lines[-1]], result.output
    assert message in lines[-1], result.output


def edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


# ------------------------------------------------------------------------------ comparison
def _pair(protocol, **changes):
    [record] = make_records(protocol, "ef" * 32, {0: 30.0})
    claimed = SeedResult.from_record(record)
    return claimed, dataclasses.replace(record, **changes)


def test_compare_identical_tolerated_and_different(protocol):
    claimed, same = _pair(protocol)
    check = compare_seed("minic3d", claimed, same, tolerance=2.0)
    assert check.outcome is Outcome.IDENTICAL and not check.differences and not check.reasons

    # Same conditions, another top-1: different, naming the field and by how much.
    claimed, moved = _pair(protocol, top1=30.0 + 1 / 3)
    check = compare_seed("minic3d", claimed, moved, tolerance=2.0)
    assert check.outcome is Outcome.DIFFERENT
    assert [d.field for d in check.outside] == ["top1"]
    assert check.outside[0].describe() == "top1 30.0 -> 30.333333333333332 (+0.333333)"

    # Another thread count: within the tolerance, with the reason; the weights may differ.
    claimed, other = _pair(protocol, top1=31.0, weights_sha256="00" * 32, final_loss=0.4,
                           torch_threads=2)
    check = compare_seed("minic3d", claimed, other, tolerance=2.0)
    assert check.outcome is Outcome.WITHIN_TOLERANCE
    assert check.reasons == ("another thread count (2 here, 1 claimed)",)
    assert {d.field for d in check.differences} == {"top1", "weights_sha256", "final_loss"}
    # ... beyond it, different, naming only what is outside.
    check = compare_seed("minic3d", claimed, other, tolerance=0.5)
    assert check.outcome is Outcome.DIFFERENT and [d.field for d in check.outside] == ["top1"]
    # A schedule that differs is never tolerated.
    claimed, short = _pair(protocol, iterations=299, torch_threads=2)
    check = compare_seed("minic3d", claimed, short, tolerance=2.0)
    assert check.outcome is Outcome.DIFFERENT and [d.field for d in check.outside] == ["iterations"]
    # A GPU is a reason too.
    claimed, gpu = _pair(protocol, device="cuda:0", top1=29.0)
    check = compare_seed("minic3d", claimed, gpu, tolerance=2.0)
    assert check.outcome is Outcome.WITHIN_TOLERANCE
    assert check.reasons == ("another device (cuda:0 here, cpu claimed)",)


def _report(entry: Entry, root: Path, **changes) -> VerifyReport:
    from vdcbench.protocol import load_protocol

    checks = []
    for results in entry.results:
        for seed in results.seeds:
            [record] = make_records(load_protocol(entry.protocol_version), entry.archive.sha256,
                                    {seed.seed: seed.top1})
            checks.append(compare_seed(results.net, seed,
                                       dataclasses.replace(record, **changes), 2.0))
    claim = Claim(name=entry.id, measurement=entry.measurement, results=entry.results,
                  archive=root / entry.archive.path, entry=entry)
    return VerifyReport(claim=claim, checks=tuple(checks))


# ------------------------------------------------------------------------------ statuses
def test_submit_writes_self_reported_and_a_status_follows_its_archive(repo, protocol):
    [path] = entry_paths(repo)
    entry = Entry.from_disk(path)
    status = status_of(entry)
    assert status.status is Status.SELF_REPORTED and status.by == "C. Contributor"
    assert status.where == f"cpu, torch threads 1, torch {torch.__version__}"
    assert json.loads(path.read_text())["verification"]["status"] == "self-reported"

    # An entry from before statuses reads as self-reported by this repository's runs.
    legacy = dataclasses.replace(entry, verification=None)
    assert "verification" not in legacy.to_dict()
    assert status_of(legacy).by == LEGACY_BY and status_of(legacy).status is Status.SELF_REPORTED

    # A passing re-scoring earns verified (bit for bit) or reproduced (with the reason).
    verified = earned_status(_report(entry, repo), "CI", "cpu")
    assert verified.status is Status.VERIFIED and verified.reason is None
    assert [(c.net, c.seed, c.top1_delta) for c in verified.checked] == [
        ("minic3d", 0, 0.0), ("minic3d", 1, 0.0)]
    reproduced = earned_status(_report(entry, repo, torch_threads=2, weights_sha256="0" * 64),
                               "CI", "cpu")
    assert reproduced.status is Status.REPRODUCED and reproduced.tolerance == 2.0
    assert reproduced.reason == "another thread count (2 here, 1 claimed)"
    with pytest.raises(VdcError, match="did not pass"):
        earned_status(_report(entry, repo, top1=99.0), "CI", "cpu")

    good = dataclasses.replace(entry, verification=verified)
    assert status_problem(good, verified) is None
    good.to_disk(repo, replace=True)
    assert validate_entries(repo)[0].verification.status is Status.VERIFIED
    # Another archive voids it ...
    swapped = dataclasses.replace(verified, archive_sha256="12" * 32)
    assert "earned on archive 121212121212" in status_problem(entry, swapped)
    # ... and so does a seed changed since.
    changed = dataclasses.replace(verified, checked=(dataclasses.replace(
        verified.checked[0], weights_sha256="34" * 32),))
    assert "minic3d seed 0 changed since it was verified" in status_problem(entry, changed)
    with pytest.raises(VdcError, match="run `vdcbench verify .* --write-status` again"):
        check_status(dataclasses.replace(entry, verification=changed), "entry")

    # A resubmission keeps an earned status that still describes it; new results do not.
    records = make_records(protocol, entry.archive.sha256, {0: 30.0, 1: 32.0})
    again = submit(records, repo / "archives" / "mine.tar", root=repo,
                   authors=["C. Contributor"])
    assert again.verification == verified
    records = make_records(protocol, entry.archive.sha256, {0: 31.0, 1: 32.0})
    fresh = submit(records, repo / "archives" / "mine.tar", root=repo,
                   authors=["C. Contributor"])
    assert fresh.verification.status is Status.SELF_REPORTED


def test_a_status_that_lies_is_refused_by_validate(repo):
    [path] = entry_paths(repo)
    edit(path, lambda d: d["verification"].update(
        status="verified", checked=[{"net": "minic3d", "seed": 0, "weights_sha256": WEIGHTS,
                                     "top1": 30.0, "top1_delta": 0.5}]))
    one_error_line(run("leaderboard", "validate", "--submissions", repo),
                   "a verified status with minic3d seed 0 off by +0.5")
    edit(path, lambda d: d["verification"].update(checked=[]))
    one_error_line(run("leaderboard", "validate", "--submissions", repo),
                   "a verified status lists no re-scored seed")


# ------------------------------------------------------------------------------ refusals
def _changed(root: Path, *paths: str) -> Path:
    listing = root.parent / "changed.txt"
    listing.write_text("".join(f"{p}\n" for p in paths))
    return listing


@pytest.mark.parametrize("case, message", [
    ("protocol-version", "unknown protocol version 9"),
    ("protocol-hash", "is not the hash of protocol v1"),
    ("store-generated", "is not the synthetic store of protocol v1"),
    ("store-prepared", "is not a store CI knows (submissions/stores.json lists none)"),
    ("archive-swapped", "not the sha256 the entry's results were measured on"),
    ("record-edited", "minic3d seed 1: top1 is 32.0 in the entry but 35.5 in its record"),
    ("record-missing", "no result record for minic3d seed 1"),
    ("shortened-official", "claims official results with variant official and 2 epochs"),
    ("weights-undeclared", "its method setting weights='https://example.org/r18.pth' names "
                           "external weights but the entry declares none"),
    ("weights-not-in-archive", "says external weights 'ImageNet R18' but its archive says 'none'"),
    ("leaderboard-by-hand", "leaderboard/README.md is not what `vdcbench leaderboard build` "
                            "makes of the submissions"),
    ("leaderboard-stale", "leaderboard/ is stale"),
])
def test_ci_refuses_each_wrong_submission_in_one_line(repo, protocol, case, message):
    from vdcbench.leaderboard.build import build

    [path] = entry_paths(repo)
    rel = path.relative_to(repo.parent).as_posix()
    changed = [rel]
    board = repo.parent / "leaderboard"
    build(repo, board)
    if case == "protocol-version":
        edit(path, lambda d: d["protocol"].update(version=9))
    elif case == "protocol-hash":
        edit(path, lambda d: d["protocol"].update(sha256="0" * 64))
    elif case == "store-generated":
        edit(path, lambda d: d["dataset"].update(sha256="5" * 64))
    elif case == "store-prepared":
        # An entry on UCF101 (its archive downloaded from a URL): CI cannot know the store.
        def ucf(d):
            d["dataset"] = {"name": "ucf101", "sha256": "6" * 64}
            d["archive"].update(path=None, url="https://example.org/mine.tar")
            d["verification"]["archive_sha256"] = d["archive"]["sha256"]
        edit(path, ucf)
        target = repo / "ucf101" / path.parent.name
        target.parent.mkdir()
        path.parent.rename(target)
        changed = [(target / "entry.json").relative_to(repo.parent).as_posix()]
    elif case == "archive-swapped":
        make_archive(protocol, repo / "other.tar", seed=5)
        (repo / "other.tar").replace(repo / "archives" / "mine.tar")
        changed = ["submissions/archives/mine.tar"]
    elif case == "record-edited":
        [record] = (repo / "records").rglob("seed1.json")
        edit(record, lambda d: d.update(top1=35.5))
        changed = [record.relative_to(repo.parent).as_posix()]
    elif case == "record-missing":
        next((repo / "records").rglob("seed1.json")).unlink()
    elif case == "shortened-official":
        def short(d):
            d["epochs"] = 2
            d["id"] += "-e2"
        edit(path, short)
        path.parent.rename(path.parent.with_name(path.parent.name + "-e2"))
        changed = [rel.replace("/entry.json", "-e2/entry.json")]
    elif case == "weights-undeclared":
        edit(path, lambda d: d["method"]["config"].update(weights="https://example.org/r18.pth"))
    elif case == "weights-not-in-archive":
        edit(path, lambda d: d.update(external_weights=["ImageNet R18"]))
    elif case == "leaderboard-by-hand":
        readme = board / "README.md"
        readme.write_text(readme.read_text() + "\n| a row | typed by hand |\n")
        changed.append("leaderboard/README.md")
    elif case == "leaderboard-stale":
        (board / "README.md").write_text("# old\n")
    result = run("verify", "--changed", _changed(repo, *changed), "--submissions", repo)
    ci_refusal(result, message)


def test_ci_samples_seeds_within_its_budget_and_records_the_sample(repo, protocol, tmp_path,
                                                                    monkeypatch):
    """The plan: the seeds a status claims first, then a keyed draw while the recorded wall
    times fit the budget, at least one seed per entry; the sample lands in the report. The
    re-scoring is replaced by a stand-in returning each claimed seed's own figures, so this
    test checks the planning and the report (the slow contributor-path test re-scores)."""
    from vdcbench.leaderboard import submission_check
    from vdcbench.leaderboard.build import build

    asked = []

    def stand_in(claim, options, progress=None, on_check=None):
        checks = []
        for results in claim.results:
            for seed in results.seeds:
                if seed.seed in options.seeds and results.net in options.nets:
                    [record] = make_records(protocol, claim.measurement.archive_sha256,
                                            {seed.seed: seed.top1})
                    checks.append(compare_seed(results.net, seed, dataclasses.replace(
                        record, wall_seconds=seed.wall_seconds), 2.0))
                    asked.append(seed.seed)
        return VerifyReport(claim=claim, checks=tuple(checks))

    monkeypatch.setattr(submission_check, "verify", stand_in)
    [path] = entry_paths(repo)
    build(repo, repo.parent / "leaderboard")
    listing = _changed(repo, path.relative_to(repo.parent).as_posix())
    report = tmp_path / "report.json"
    # Seeds were recorded at 100 s and 101 s: a budget of 150 s re-scores one of them.
    result = run("verify", "--changed", listing, "--submissions", repo, "--budget", 150,
                 "--report", report)
    assert result.exit_code == 0, result.output
    assert "budget 150 s: re-scoring 1 of 2 seeds" in result.output
    data = json.loads(report.read_text())
    assert data["source"] == "changed entries" and data["ok"] is True
    assert len(data["checks"]) == 1 and data["checks"][0]["outcome"] == "identical"
    first = asked[:]
    # The draw is keyed: the same again, and another key may draw another seed.
    asked.clear()
    assert run("verify", "--changed", listing, "--submissions", repo, "--budget", 150)\
        .exit_code == 0
    assert asked == first
    asked.clear()
    assert run("verify", "--changed", listing, "--submissions", repo, "--budget", 500)\
        .exit_code == 0
    assert sorted(asked) == [0, 1]
    # A status's checked seeds come first, whatever the draw.
    entry = Entry.from_disk(path)
    other = 1 - first[0]
    seed = next(s for s in entry.net("minic3d").seeds if s.seed == other)
    dataclasses.replace(entry, verification=Verification(
        status=Status.VERIFIED, archive_sha256=entry.archive.sha256, by="X", where="cpu",
        checked=(CheckedSeed("minic3d", other, seed.weights_sha256, seed.top1, 0.0),),
        vdcbench="0")).to_disk(repo, replace=True)
    build(repo, repo.parent / "leaderboard")
    asked.clear()
    assert run("verify", "--changed", listing, "--submissions", repo, "--budget", 150)\
        .exit_code == 0, "status"
    assert asked == [other]


def test_nothing_changed_verifies_the_recorded_sample(repo, tmp_path, monkeypatch):
    from vdcbench.leaderboard import submission_check

    seen = []

    def stand_in(claim, options, **_):
        seen.append((claim.name, options.nets, options.seeds))
        return VerifyReport(claim=claim, checks=())

    monkeypatch.setattr(submission_check, "verify", stand_in)
    [path] = entry_paths(repo)
    sample = tmp_path / "sample"
    sample.write_text(f"# a comment\n{path.parent.name} minic3d 1\n")
    empty = _changed(repo)
    result = run("verify", "--changed", empty, "--submissions", repo, "--sample", sample)
    assert "re-scoring the recorded sample" in result.output
    assert seen == [(path.parent.name, ("minic3d",), (1,))]
    sample.write_text(f"{path.parent.name} minic3d 7\n")
    ci_refusal(run("verify", "--changed", empty, "--submissions", repo, "--sample", sample),
                   "holds no minic3d seed 7")
    sample.write_text("nonsense\n")
    ci_refusal(run("verify", "--changed", empty, "--submissions", repo, "--sample", sample),
                   "expected 'ENTRY-ID NET SEED'")


def test_verify_refuses_bad_requests_in_one_line(repo, tmp_path):
    [path] = entry_paths(repo)
    entry_id = path.parent.name
    one_error_line(run("verify", "--submissions", repo), "name an entry")
    one_error_line(run("verify", "nowhere", "--submissions", repo), "is neither an entry")
    one_error_line(run("verify", entry_id, "--submissions", repo, "--seeds", "7"),
                   "holds no seed 7 for net minic3d")
    one_error_line(run("verify", entry_id, "--submissions", repo, "--seeds", "a"),
                   "must be a comma list of integers")
    one_error_line(run("verify", entry_id, "--submissions", repo, "--net", "i3d_r18"),
                   "has no results for net 'i3d_r18'")
    one_error_line(run("verify", entry_id, "--submissions", repo, "--write-status"),
                   "--write-status needs --by NAME")
    archive = repo / "archives" / "mine.tar"
    one_error_line(run("verify", archive), "give its result records with --records")
    other = tmp_path / "elsewhere"
    other.mkdir()
    one_error_line(run("verify", archive, "--records", other), "no result records")
    # The store here is not the claim's: refused before anything trains.
    edit(path, lambda d: d["dataset"].update(sha256="5" * 64))
    one_error_line(run("verify", entry_id, "--submissions", repo),
                   "is not the synthetic store")
