"""``vdcbench verify``: re-score an entry (or an archive and its records) and compare, and the
check CI runs on a pull request's new or changed entries (``--changed``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from vdcbench.cli.output import out, user_errors
from vdcbench.core.errors import VdcError

SUBMISSIONS = Path("submissions")
LEADERBOARD = Path("leaderboard")


def _int_list(text: str | None, what: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(dict.fromkeys(int(x) for x in text.split(",") if x.strip()))
    except ValueError:
        raise VdcError(f"{what} {text!r} must be a comma list of integers, e.g. 0,1") from None
    if not values or any(v < 0 for v in values):
        raise VdcError(f"{what} {text!r} must name at least one non-negative integer")
    return values


def _claim(target: str, root: Path, records: tuple[Path, ...], archive: Path | None):
    """An entry (its entry.json, its folder or its id) or an archive with --records."""
    from vdcbench.cli.leaderboard import _is_archive, _records_from
    from vdcbench.leaderboard.verify import claim_from_entry, claim_from_records

    path = Path(target)
    if _is_archive(path):
        if not records:
            raise VdcError(f"{target} is an archive: give its result records with --records")
        import hashlib
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        found = [r for r in _records_from(records) if r.key.archive_sha256 == sha]
        if not found:
            raise VdcError(f"no record under {', '.join(map(str, records))} scores {target} "
                           f"(sha256 {sha[:12]})")
        return claim_from_records(path, found)
    if records:
        raise VdcError("--records goes with an archive; an entry holds its own results")
    entry_path = find_entry(target, root)
    from vdcbench.leaderboard.entry import Entry
    from vdcbench.leaderboard.validate import check_entry
    entry = Entry.from_disk(entry_path)
    # The submissions folder an entry sits in (<root>/<dataset>/<id>/entry.json) is where its
    # archive path is relative to, and where a status is written back.
    root = entry_path.resolve().parents[2]
    check_entry(entry, entry_path, root, read_archives=archive is None)
    return claim_from_entry(entry, root, archive)


def find_entry(target: str, root: Path) -> Path:
    from vdcbench.leaderboard.entry import ENTRY_FILE
    from vdcbench.leaderboard.validate import entry_paths

    path = Path(target)
    if path.is_file():
        return path
    if path.is_dir() and (path / ENTRY_FILE).is_file():
        return path / ENTRY_FILE
    matches = [p for p in entry_paths(root) if p.parent.name == target]
    if not matches:
        raise VdcError(f"{target} is neither an entry (entry.json, its folder, or an entry id "
                       f"under {root}) nor an archive")
    return matches[0]


def seed_line(check) -> str:
    from vdcbench.leaderboard.verify import Outcome

    where = (f"threads {check.measured.torch_threads}, {check.measured.device}, "
             f"{check.wall_seconds:.0f} s")
    head = f"{check.net} seed {check.seed}: "
    if check.outcome is Outcome.IDENTICAL:
        return (head + f"[green]identical[/] (top-1 {check.claimed.top1:g}, weights "
                f"{check.claimed.weights_sha256[:12]}; {where})")
    moved = "; ".join(d.describe() for d in check.differences)
    if check.outcome is Outcome.WITHIN_TOLERANCE:
        return (head + f"[yellow]within tolerance[/] ±{check.tolerance:g} points, because "
                f"{'; '.join(check.reasons)}: {moved} ({where})")
    because = f" (conditions: {'; '.join(check.reasons)})" if check.reasons else ""
    notes = "".join(f"; {note}" for note in check.notes)
    return (head + "[red]different[/]: "
            + "; ".join(d.describe() for d in check.outside) + because + f" ({where}){notes}")


def summary_line(reports) -> str:
    from vdcbench.leaderboard.verify import Outcome

    checks = [c for r in reports for c in r.checks]
    parts = [f"{sum(c.outcome is o for c in checks)} {o.value}" for o in Outcome]
    ok = all(r.ok for r in reports)
    verdict = "[green]all match[/]" if ok else "[red]not all match[/]"
    return f"{verdict}: {len(checks)} seed(s) re-scored: {', '.join(parts)}"


@click.command("verify")
@click.argument("targets", nargs=-1)
@click.option("--submissions", "root", type=click.Path(file_okay=False, path_type=Path),
              default=SUBMISSIONS, show_default=True, help="Where entries are found.")
@click.option("--records", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Result records (files or folders) of an ARCHIVE target.")
@click.option("--archive", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="The archive of an entry that does not commit it (fetched "
                                 "from its URL; its sha256 must be the entry's).")
@click.option("--seeds", default=None, help="Only these evaluation seeds, e.g. 0,2 "
                                            "(default: all the claim holds).")
@click.option("--net", "nets", default=None, help="Only these nets, e.g. minic3d "
                                                  "(default: all the claim holds).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Torch threads (default: each seed's recorded count; another count can "
                   "only reproduce within the tolerance).")
@click.option("--tolerance", type=float, default=None,
              help="Top-1/top-5 points allowed when conditions differ from the claim's "
                   "(thread count, device, torch) [default: 2.0].")
@click.option("--cpu-tolerance", type=float, default=None,
              help="Top-1/top-5 points allowed when only the kind of CPU differs from the one "
                   "the claimed record names (its model or torch's CPU capability) "
                   "[default: 1.5].")
@click.option("--keep-records", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the re-scored records here (default: a scratch folder, removed).")
@click.option("--write-status", is_flag=True,
              help="When every seed matches, write the earned status (verified / reproduced) "
                   "into the entry.")
@click.option("--by", default=None, help="Who ran the verification (with --write-status).")
@click.option("--changed", "changed", type=click.Path(exists=True, dir_okay=False,
                                                      path_type=Path), default=None,
              help="CI: a file listing the paths a pull request changes (one a line); "
                   "validate and re-score every new or changed entry.")
@click.option("--sample", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="CI: the recorded sample (entry net seed, one a line) "
                                 "verified when no entry changed.")
@click.option("--budget", type=click.FloatRange(min=0), default=None,
              help="CI: seconds of re-scoring allowed, estimated from the recorded wall times "
                   "[default: 1800].")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CI: write what was checked (the seed sample included) as JSON here.")
@user_errors
def verify_cmd(targets: tuple[str, ...], root: Path, records: tuple[Path, ...],
               archive: Path | None, seeds: str | None, nets: str | None, device: str,
               threads: int | None, tolerance: float | None, cpu_tolerance: float | None,
               keep_records: Path | None,
               write_status: bool, by: str | None, changed: Path | None,
               sample: Path | None, budget: float | None, report: Path | None) -> None:
    """Re-score TARGETS (entries: entry.json, folder or id; or an archive with --records)
    from the archive at each seed's recorded thread count, and compare with the claimed
    results field by field. Exit 0 only when every seed is identical or within the tolerance
    (conditions that differ: another thread count, a GPU, another torch; another CPU, when the
    claimed record names its machine), which an entry's status records as verified or
    reproduced; 1 otherwise (a record that does not name its CPU and differs is different)."""
    from vdcbench.leaderboard.verify import (DEFAULT_CPU_TOLERANCE, DEFAULT_TOLERANCE,
                                             VerifyOptions)

    options = VerifyOptions(seeds=_int_list(seeds, "--seeds"),
                            nets=tuple(n for n in (nets or "").split(",") if n) or None,
                            device=device, threads=threads,
                            tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
                            cpu_tolerance=(DEFAULT_CPU_TOLERANCE if cpu_tolerance is None
                                           else cpu_tolerance),
                            keep_records=keep_records)
    if changed is not None:
        if targets:
            raise VdcError("--changed checks what a pull request changes; give no TARGETS")
        _ci(root, changed, sample, budget, report, options)
        return
    if not targets:
        raise VdcError("name an entry (its id, folder or entry.json) or an archive with "
                       "--records; or --changed FILE in CI")
    if write_status and not by:
        raise VdcError("--write-status needs --by NAME: who ran the verification")
    claims = [_claim(t, root, records, archive) for t in targets]
    if write_status and any(c.entry is None for c in claims):
        raise VdcError("--write-status writes into an entry; an archive with records has none")
    from vdcbench.leaderboard.verify import planned
    for claim in claims:          # what cannot be asked of a claim is refused before any work
        planned(claim, options)
    reports = [_run(claim, options) for claim in claims]
    out.print(summary_line(reports))
    if write_status and all(r.ok for r in reports):
        for r in reports:
            path = _write_status(r, by, device)
            out.print(f"wrote the {r.claim.entry.id} status into {path}")
    if not all(r.ok for r in reports):
        sys.exit(1)


def _run(claim, options):
    from vdcbench.cli.progress import RichProgress
    from vdcbench.leaderboard.verify import verify

    out.print(f"verify [bold]{claim.name}[/] ({claim.measurement.dataset} "
              f"{claim.measurement.track} {claim.measurement.label_strategy}, "
              f"{claim.measurement.epochs} epochs) from {claim.archive}")
    with RichProgress() as progress:
        return verify(claim, options, progress=progress,
                      on_check=lambda check: out.print("  " + seed_line(check)))


def _write_status(report, by: str, device: str) -> Path:
    import dataclasses

    from vdcbench.leaderboard.verification import status_problem
    from vdcbench.leaderboard.verify import earned_status, merged_checked

    entry = report.claim.entry
    earned = earned_status(report, by, device)
    previous = entry.verification
    if previous is not None and status_problem(entry, previous) is not None:
        previous = None
    updated = dataclasses.replace(entry, verification=merged_checked(previous, earned))
    return updated.to_disk(report.claim.root, replace=True)


def _ci(root: Path, changed: Path, sample: Path | None, budget: float | None,
        report: Path | None, options) -> None:
    from vdcbench.leaderboard.submission_check import (DEFAULT_BUDGET, check_submission,
                                                       read_changed)

    from vdcbench.cli.progress import RichProgress

    paths = read_changed(changed)
    with RichProgress() as progress:
        outcome = check_submission(
            root, paths, sample=sample, budget=DEFAULT_BUDGET if budget is None else budget,
            options=options, report=report, progress=progress,
            on_note=lambda text: out.print(text),
            on_claim=lambda claim, seeds: out.print(
                f"re-score [bold]{claim.name}[/]: "
                + ", ".join(f"{net} seed {seed}" for net, seed in seeds)),
            on_check=lambda check: out.print("  " + seed_line(check)))
    out.print(summary_line(outcome.reports) if outcome.reports
              else "no entry to re-score")
    if not outcome.ok:
        sys.exit(1)


def register(main_group: click.Group) -> None:
    main_group.add_command(verify_cmd)
