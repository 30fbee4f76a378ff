"""Leaderboard commands: ``submit``, ``leaderboard build|validate``, ``diff`` and ``show``.

Attached to the main group by ``register(main)``; the same thin-shell rules as ``vdcbench.cli``:
parse, call one function, render with rich; a ``VdcError`` is one line and exit code 2.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import click
from rich.table import Table

from vdcbench.cli.output import out, user_errors
from vdcbench.core.errors import VdcError
from vdcbench.core.json_values import parse_json_strict

SUBMISSIONS = Path("submissions")
LEADERBOARD = Path("leaderboard")


def _records_from(paths: tuple[Path, ...]):
    """Result records from files (a record, or an ``evaluate --json`` summary) and folders."""
    from vdcbench.evaluation.records import EvalRecord, load_records

    records = []
    for path in paths:
        if path.is_dir():
            found = load_records(path)
            if not found:
                raise VdcError(f"no result records (seed*.json) under {path}")
            records += found
            continue
        try:
            data = parse_json_strict(path.read_bytes())
        except OSError as exc:
            raise VdcError(f"cannot read {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise VdcError(f"{path}: not JSON ({exc})") from None
        try:
            if isinstance(data, dict) and isinstance(data.get("records"), list):
                records += [EvalRecord.from_dict(r) for r in data["records"]]
            else:
                records.append(EvalRecord.from_dict(data))
        except (TypeError, KeyError, AttributeError) as exc:
            raise VdcError(f"{path}: not a result record ({exc})") from None
    return records


# ------------------------------------------------------------------------------------ submit
@click.command("submit")
@click.argument("results", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--archive", "archive", required=True, type=click.Path(path_type=Path),
              help="The archive the records score.")
@click.option("--submissions", "root", type=click.Path(file_okay=False, path_type=Path),
              default=SUBMISSIONS, show_default=True, help="Where entries are written.")
@click.option("--author", "authors", multiple=True, help="Author, repeatable.")
@click.option("--method-url", default=None, help="Where the method is described.")
@click.option("--archive-url", default=None,
              help="Where to download the archive when it is not committed.")
@click.option("--pick", is_flag=True,
              help="Keep only the records that score ARCHIVE (e.g. RESULTS = a whole records "
                   "folder); the rest are ignored, not refused.")
@click.option("--variant", default=None,
              help="Keep only the records of this evaluation variant.")
@click.option("--formation", default=None,
              help="Keep only the records of this temporal formation (none for records without "
                   "one): one archive of a temporal track formed two ways is two entries.")
@click.option("--replace", is_flag=True, help="Overwrite an existing entry with other content.")
@click.option("--dry-run", is_flag=True, help="Check and show the entry; write nothing.")
@user_errors
def submit_cmd(results: tuple[Path, ...], archive: Path, root: Path, authors: tuple[str, ...],
               method_url: str | None, archive_url: str | None, pick: bool,
               variant: str | None, formation: str | None, replace: bool, dry_run: bool) -> None:
    """Turn the result records RESULTS (files or folders) of ARCHIVE into a leaderboard entry.

    The records must agree on protocol hash, archive, data set, track, label strategy,
    evaluation variant, teacher, schedule and temporal formation; anything else is refused.
    Records with a formation are taken from a temporal track of the protocol's equal-frame grid
    under the official variant and schedule only, and records of a study track never."""
    from vdcbench.leaderboard.submit import submit

    records = _records_from(results)
    if pick:
        try:
            sha = hashlib.sha256(archive.read_bytes()).hexdigest()
        except OSError as exc:
            raise VdcError(f"cannot read archive {archive}: {exc.strerror or exc}") from None
        records = [r for r in records if r.key.archive_sha256 == sha]
        if not records:
            raise VdcError(f"no record in {', '.join(map(str, results))} scores {archive} "
                           f"(sha256 {sha[:12]})")
    if variant is not None:
        records = [r for r in records if r.key.variant == variant]
        if not records:
            raise VdcError(f"no record of evaluation variant {variant!r}")
    if formation is not None:
        records = [r for r in records if r.key.formation_name == formation.strip()]
        if not records:
            raise VdcError(f"no record of temporal formation {formation!r}")
    entry = submit(records, archive, authors=authors, method_url=method_url,
                   archive_url=archive_url, root=root)
    from vdcbench.cli.evaluate import top5_column
    top5, why = top5_column(entry.protocol_version, entry.dataset)
    table = Table("net", "seeds", "top-1 %", *(("top-5 %",) if top5 else ()), caption=why)
    for r in entry.results:
        table.add_row(r.net, ", ".join(str(x.seed) for x in r.seeds), r.spread("top1").format(2),
                      *((r.spread("top5").format(2),) if top5 else ()))
    out.print(f"entry [bold]{entry.id}[/]: {entry.method.name} ({entry.method.kind}) "
              f"{entry.dataset} {entry.track} {entry.label_strategy}, variant {entry.variant}"
              + ("" if entry.formation is None else f", formation {entry.formation}")
              # Escaped: rich would take the bracketed note for markup and drop it.
              + ("" if entry.official else "  \\[not official: never ranked]"))
    out.print(table)
    if entry.archive.path is None and entry.archive.url is None:
        out.print("note: the archive is neither under the submissions folder nor given a "
                  "--archive-url; readers cannot fetch it")
    if dry_run:
        out.print("dry run: nothing written")
        return
    path = entry.to_disk(root, replace=replace)
    out.print(f"wrote {path}")


# ------------------------------------------------------------------------------- leaderboard
@click.group("leaderboard")
def leaderboard_group() -> None:
    """The leaderboard: check entries, regenerate leaderboard/ from submissions/."""


@leaderboard_group.command("build")
@click.option("--submissions", "root", type=click.Path(file_okay=False, path_type=Path),
              default=SUBMISSIONS, show_default=True)
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              default=LEADERBOARD, show_default=True)
@click.option("--teachers", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Teacher sidecars for the full-data rows (default: the shipped teachers).")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 when a generated file is stale.")
@user_errors
def build_cmd(root: Path, output: Path, teachers: Path | None, check: bool) -> None:
    """Regenerate OUTPUT (README.md, leaderboard.json, index.html, plots, gallery)."""
    from vdcbench.leaderboard.build import build

    changed = build(root, output, check=check, teachers_dir=teachers)
    if check:
        if changed:
            for path in changed:
                click.echo(f"stale: {path}", err=True)
            click.echo(f"error: {output} is stale ({len(changed)} file(s)); run "
                       f"`vdcbench leaderboard build`", err=True)
            sys.exit(1)
        out.print(f"{output} is up to date")
        return
    out.print(f"{output}: {len(changed)} file(s) written or removed" if changed
              else f"{output} is up to date")
    for path in changed:
        out.print(f"  {path}")


@leaderboard_group.command("validate")
@click.option("--submissions", "root", type=click.Path(file_okay=False, path_type=Path),
              default=SUBMISSIONS, show_default=True)
@user_errors
def validate_cmd(root: Path) -> None:
    """Check every entry against its schema, the protocol and its archive (when at hand)."""
    from vdcbench.leaderboard.validate import validate_entries

    entries = validate_entries(root)
    table = Table("entry", "data set", "track", "formation", "labels", "variant", "nets",
                  "archive")
    for e in entries:
        table.add_row(e.id, e.dataset, e.track, e.formation_name, e.label_strategy, e.variant,
                      ", ".join(e.nets),
                      e.archive.path or ("url" if e.archive.url else "not at hand"))
    out.print(table)
    out.print(f"[green]valid[/]: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} "
              f"under {root}")


# -------------------------------------------------------------------------------------- diff
WHAT_DIFF_TAKES = ("diff compares two archives, or two results (result records, "
                   "`evaluate --json` summaries, entries)")


def _is_archive(path: Path) -> bool:
    """A tar (plain or gzip) by its bytes, not its name; a missing path is left to the reader."""
    import tarfile
    try:
        return path.is_file() and tarfile.is_tarfile(path)
    except OSError:
        return False


@click.command("diff")
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True,
              help="Exit 1 when the two are not comparable (archives: not in one leaderboard "
                   "cell).")
@user_errors
def diff_cmd(a: Path, b: Path, strict: bool) -> None:
    """Explain, field by field, whether results or entries A and B are comparable; or compare
    two archives A and B (manifests and the hashes of their members)."""
    archives = (_is_archive(a), _is_archive(b))
    if all(archives):
        _diff_archives(a, b, strict)
        return
    if any(archives):
        which, other = (a, b) if archives[0] else (b, a)
        raise VdcError(f"{WHAT_DIFF_TAKES}: {which} is an archive and {other} is not")
    from vdcbench.leaderboard.diff import BLOCKING, NOTE, diff

    comparison = diff(a, b)
    table = Table("field", f"A ({comparison.a.kind})", f"B ({comparison.b.kind})", "", "note")
    style = {BLOCKING: "[red]differs[/]", NOTE: "[yellow]differs[/]"}
    for f in comparison.fields:
        table.add_row(f.field, f.a, f.b, style.get(f.status, "[green]same[/]"), f.note)
    out.print(table)
    if comparison.comparable:
        out.print("[green]comparable[/]")
    else:
        verb = "differs" if len(comparison.blocking) == 1 else "differ"
        out.print(f"[red]not comparable[/]: {', '.join(comparison.blocking)} {verb}")
        if strict:
            sys.exit(1)


def _diff_archives(a: Path, b: Path, strict: bool) -> None:
    from vdcbench.archive.compare import compare_archives

    comparison = compare_archives(a, b)
    table = Table("field", "A (archive)", "B (archive)", "")
    for f in comparison.fields:
        status = ("[green]same[/]" if f.same else "[red]differs[/]" if f.blocking
                  else "[yellow]differs[/]")
        table.add_row(f.field, f.a, f.b, status)
    out.print(table)
    if comparison.identical_files:
        out.print("[green]identical[/]: the same archive file")
    elif comparison.same_content:
        out.print("[green]the same condensed set[/]: every member holds the same bytes "
                  "(the archive files differ)")
    else:
        differing = [n for n in comparison.member_names
                     if not next(f for f in comparison.fields if f.field == n).same]
        out.print(f"different condensed sets: {', '.join(differing)} differ")
    if comparison.same_cell:
        out.print("[green]comparable[/]: same protocol, data set, track and label strategy")
    else:
        verb = "differs" if len(comparison.blocking) == 1 else "differ"
        out.print(f"[red]not comparable[/]: {', '.join(comparison.blocking)} {verb}")
        if strict:
            sys.exit(1)


# -------------------------------------------------------------------------------------- show
@click.command("show")
@click.argument("archive", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG to write (default: ARCHIVE's name with -grid.png, here).")
@click.option("--per-class", type=click.IntRange(min=1), default=None,
              help="At most this many instances per class.")
@click.option("--max-classes", type=click.IntRange(min=1), default=None)
@click.option("--tile", type=click.IntRange(min=8), default=None,
              help="Shrink frames to at most this many pixels.")
@click.option("--gif-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write an animated GIF per class here.")
@user_errors
def show_cmd(archive: Path, output: Path | None, per_class: int | None, max_classes: int | None,
             tile: int | None, gif_dir: Path | None) -> None:
    """Draw ARCHIVE's condensed set: a frame grid per class (and GIFs with --gif-dir)."""
    from vdcbench.leaderboard.gallery import show

    result = show(archive, output, per_class=per_class, max_classes=max_classes, tile=tile,
                  gif_dir=gif_dir)
    out.print(f"wrote {result.png} ({result.classes} classes, {result.instances} instances)")
    if result.gifs:
        out.print(f"wrote {len(result.gifs)} GIFs to {gif_dir}")


def register(main_group: click.Group) -> None:
    """Attach the leaderboard commands to the ``vdcbench`` group (``verify`` among them: it
    checks entries, and lives in its own module)."""
    from vdcbench.cli.verify import verify_cmd

    for command in (submit_cmd, leaderboard_group, diff_cmd, show_cmd, verify_cmd):
        main_group.add_command(command)
