"""``evaluate``: score an archive over nets and seeds; ``results``: aggregate stored records."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from typing import TYPE_CHECKING

import click
from rich.table import Table

from vdcbench.cli.output import out, user_errors
from vdcbench.cli.progress import RichProgress
from vdcbench.core.errors import VdcError
from vdcbench.core.stats import format_mean_std

if TYPE_CHECKING:
    from vdcbench.evaluation.report import EvaluationReport

# What a Ctrl-C during an evaluation leaves (records per seed; a seed in training keeps its last
# finished epoch in the cache's evaluation-resume folder).
RESUME_HINT = ("finished seeds are kept, and the same command resumes (a seed in training from "
               "its last finished epoch)")


def parse_seeds(text: str) -> tuple[int, ...]:
    """``0,1,2`` or ``0-4`` (or a mix) as distinct non-negative seeds, in order."""
    try:
        seeds = []
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                lo, hi = part.split("-", 1)
                seeds.extend(range(int(lo), int(hi) + 1))
            elif part.strip():
                seeds.append(int(part))
    except ValueError:
        raise VdcError(f"--seeds {text!r} is not a list like 0,1,2 or 0-2") from None
    if not seeds or any(s < 0 for s in seeds):
        raise VdcError(f"--seeds {text!r} must name at least one non-negative seed")
    return tuple(dict.fromkeys(seeds))


def tflop(gflops: float | None) -> str:
    """Training compute for a table; records written before compute was kept say "unknown"."""
    return "unknown" if gflops is None else f"{gflops / 1e3:.2f}"


def threads(counts: tuple[int | None, ...]) -> str:
    """Torch thread counts for a table; a record written before they were kept says "unknown"
    (it may have run with any count, so none is implied)."""
    return ", ".join("unknown" if c is None else str(c) for c in counts) or "unknown"


@click.command("evaluate")
@click.argument("archive", type=click.Path(dir_okay=True, path_type=Path))
@click.option("--seeds", default="0,1,2", show_default=True, help="Evaluation seeds, e.g. 0,1,2 or 0-4.")
@click.option("--net", default="minic3d", show_default=True,
              help="An evaluation net, a comma list (minic3d,i3d_r18), all (the evaluation nets) "
                   "or every (every protocol net): one record per (net, seed) and a "
                   "cross-architecture table.")
@click.option("--variant", default="official", show_default=True,
              help="official | cutmix | kl (only official is ranked).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="Also write the records and their summary to this file.")
@click.option("--results-dir", type=click.Path(path_type=Path), default=None,
              help="Where per-seed records go (default: the vdcbench cache).")
@click.option("--epochs", type=int, default=None,
              help="Train for this many epochs instead of the protocol's, for a smoke test; "
                   "the records are marked not official and never ranked.")
@click.option("--teacher-profile", "teacher_profile_name", default=None, metavar="PROFILE",
              help="Whose teacher gives multi-sl labels: 'protocol' or a declared profile "
                   "('cpu'). Default: the archive's (the profile its method condensed with, "
                   "else the protocol teacher). Records made with it say so.")
@click.option("--formation", default=None, metavar="FORMATION",
              help="How a temporal track's T-frame instances become 8-frame clips: segment, "
                   "slide-window, interpolate-duplicate, interpolate-linear, or an interpolation "
                   "of a sliding window (interpolate-linear-w4). Default: the archive's (its "
                   "method's formation), else none at 8 frames, slide-window above, "
                   "interpolate-linear below. Part of each record's key and path.")
@user_errors(interrupted=RESUME_HINT)
def evaluate_cmd(archive: Path, seeds: str, net: str, variant: str, device: str,
                 json_path: Path | None, results_dir: Path | None, epochs: int | None,
                 teacher_profile_name: str | None, formation: str | None) -> None:
    """Train the evaluation net on ARCHIVE per seed under the protocol and score it."""
    check_archive_path(archive)
    check_nets(net)
    check_teacher_profile(teacher_profile_name)
    chosen = parse_seeds(seeds)
    # Under torchrun every process runs this command: one data-parallel evaluation (rank 0
    # prints, writes records and --json).
    from vdcbench.train.distributed import process_group
    with process_group(device) as world:
        if not world.is_writer:
            from vdcbench.cli.teacher import quiet_consoles
            quiet_consoles()
        evaluate_and_render(archive, chosen, net, variant, world.device(device), json_path,
                            results_dir, epochs, teacher_profile_name, formation)


def check_nets(text: str) -> None:
    """``--net`` is refused before torch is imported when no protocol version knows a net it
    names (the archive, read later, pins the version the library checks it against)."""
    from vdcbench.evaluation.net_choice import parse_nets
    from vdcbench.protocol import load_protocol
    from vdcbench.protocol.spec import available_versions
    refusal = None
    for version in sorted(available_versions(), reverse=True):
        try:
            parse_nets(load_protocol(version), text)
            return
        except VdcError as exc:
            refusal = refusal or exc      # the latest version's words
    if refusal is not None:
        raise refusal


def check_teacher_profile(name: str | None) -> None:
    """An unknown profile name is one line before torch is imported (the protocol version the
    archive pins is checked by the library)."""
    if name is not None:
        from vdcbench.protocol import teacher_profile
        teacher_profile(name)


def check_archive_path(archive: Path) -> None:
    """The archive reader's refusals of a path that is missing or not a file, made before the
    library (and torch, seconds on a CPU) is imported: the commonest mistake answers at once."""
    if not archive.exists():
        raise VdcError(f"archive {archive}: no such file")
    if archive.is_dir():
        raise VdcError(f"archive {archive}: is a directory, not an archive file")


def check_json_path(json_path: Path | None) -> None:
    if json_path is not None and json_path.parent and not json_path.parent.exists():
        raise VdcError(f"cannot write --json {json_path}: directory {json_path.parent} does not exist")


def evaluate_and_render(archive: Path, seeds: tuple[int, ...], net: str, variant: str,
                        device: str, json_path: Path | None, results_dir: Path | None,
                        epochs: int | None, teacher_profile: str | None = None,
                        formation: str | None = None) -> None:
    """Score ARCHIVE on each net ``net`` names, print the tables, write ``--json``."""
    check_json_path(json_path)
    from vdcbench.core.atomic_file import write_json_atomic
    from vdcbench.evaluation.api import evaluate_archive
    from vdcbench.evaluation.progress import SILENT
    from vdcbench.train.distributed import current_world

    writer = current_world().is_writer      # rank 0 of a torchrun launch draws and writes
    with RichProgress() if writer else nullcontext(SILENT) as progress:
        report = evaluate_archive(archive, nets=net, seeds=seeds, variant=variant, device=device,
                                  results_dir=results_dir, epochs=epochs,
                                  teacher_profile=teacher_profile, formation=formation,
                                  progress=progress)
    if not writer:
        return
    render_report(report)
    if json_path is not None:
        write_json_atomic(json_path, report.to_dict())


def dataset_classes(protocol_version: int, dataset: str) -> int | None:
    """How many classes ``dataset`` has (a collection: its store's), None when unknown here."""
    from vdcbench.data.datasets import resolve_dataset
    from vdcbench.protocol import load_protocol
    try:
        return resolve_dataset(load_protocol(protocol_version), dataset).num_classes or None
    except VdcError:
        return None


def top5_column(protocol_version: int, dataset: str) -> tuple[bool, str | None]:
    """Whether tables of ``dataset`` print a top-5 column (see ``top5_is_informative``), and the
    caption that says why when they do not."""
    from vdcbench.evaluation.report import top5_is_informative
    classes = dataset_classes(protocol_version, dataset)
    if classes is None or top5_is_informative(classes):
        return True, None
    return False, f"no top-5: with {classes} classes it is 100 % by construction"


def render_report(report: EvaluationReport) -> None:
    """The per-seed table, a summary line per net, and the cross-architecture table."""
    several = len(report.nets) > 1
    top5, why = top5_column(report.archive.protocol_version, report.archive.dataset)
    table = Table(*(("net",) if several else ()), "seed", "top-1 %",
                  *(("top-5 %",) if top5 else ()), "reference best top-1 %", "iterations",
                  "train TFLOP", "threads", "wall s", caption=why)
    for result in report.nets:
        for r in result.records:
            ref = "-" if r.reference_best_top1 is None else f"{r.reference_best_top1:.1f}"
            table.add_row(*((result.net,) if several else ()), str(r.key.seed), f"{r.top1:.2f}",
                          *((f"{r.top5:.2f}",) if top5 else ()), ref, str(r.iterations),
                          tflop(r.train_gflops), threads((r.torch_threads,)),
                          f"{r.wall_seconds:.0f}")
    out.print(table)
    what = report.archive.describe()
    for result in report.nets:
        label = "official" if result.official else "NOT official (shortened schedule or variant)"
        out.print(f"{what} on {result.net}: top-1 {result.top1.format(2)} (n={result.n})  "
                  f"\\[{label}]")
    if several:
        cross = Table("net", "top-1 %", "n", "train TFLOP", "wall s",
                      title=f"{what}: cross-architecture (final-epoch top-1, mean ± std)")
        for result in report.nets:
            cross.add_row(result.net, result.top1.format(2), str(result.n),
                          tflop(result.train_gflops), f"{result.wall_seconds:.0f}")
        out.print(cross)
    out.print(f"records: {report.results_dir}")


@click.command("results")
@click.argument("folders", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--table", "table_kind", type=click.Choice(["cells", "methods", "nets"]),
              default="cells", show_default=True,
              help="cells: one row per archive × net × labels; methods: methods × (IPC, labels), "
                   "as the study's Table 6; nets: methods × evaluation nets, as its Table 7.")
@click.option("--dataset", default=None, help="Only this data set (a table holds one).")
@click.option("--method", "methods", default=None, help="Only these methods (a comma list).")
@click.option("--net", default=None,
              help="Only this evaluation net (the methods table defaults to minic3d).")
@click.option("--labels", "label_strategy", default=None, help="Only this label strategy.")
@click.option("--track", default=None, help="Only this track, e.g. ipc1-t8.")
@click.option("--variant", default=None, help="Only this evaluation variant.")
@click.option("--condensation-seed", type=int, default=None,
              help="Only condensed sets made with this seed (one set per method).")
@click.option("--teacher-profile", "teacher_profile_name", default=None, metavar="PROFILE",
              help="Only records made with this profile's teacher ('protocol', 'cpu'; records "
                   "that used no teacher join any): a table holds one profile.")
@click.option("--markdown", is_flag=True, help="Print the methods or nets table as Markdown.")
@user_errors
def results_cmd(folders: tuple[Path, ...], table_kind: str, dataset: str | None, methods: str | None,
                net: str | None, label_strategy: str | None, track: str | None,
                variant: str | None, condensation_seed: int | None,
                teacher_profile_name: str | None, markdown: bool) -> None:
    """Aggregate the result records under FOLDERS: mean ± std over seeds per cell."""
    check_teacher_profile(teacher_profile_name)
    from vdcbench.evaluation.records import load_records
    # Keyed, so folders that overlap (submissions and submissions/records) count a record once.
    by_key = {record.key: record for folder in folders for record in load_records(folder)}
    records = list(by_key.values())
    if not records:
        raise VdcError(f"no result records under {', '.join(map(str, folders))}")
    if table_kind == "cells":
        _print_cells(records)
        return
    from vdcbench.evaluation.tables import PivotFilter, pivot
    if table_kind == "methods" and net is None:
        net = "minic3d"
    chosen = None if methods is None else tuple(m.strip() for m in methods.split(",") if m.strip())
    from vdcbench.protocol import LATEST_VERSION, PROTOCOL_PROFILE, load_protocol
    # The study's Table 6 compares the official tracks; a temporal track is asked for by --track.
    official_tracks = (tuple(load_protocol(LATEST_VERSION).track_ids())
                       if table_kind == "methods" and track is None else None)
    where = PivotFilter(dataset=dataset, methods=chosen, net=net, tracks=official_tracks,
                        label_strategy=label_strategy, track=track,
                        variant=variant, condensation_seed=condensation_seed,
                        official_only=variant in (None, "official"),
                        teacher_profile=teacher_profile_name)
    table = pivot(records, table_kind, where)
    nets = {c: net for c in table.columns} if table_kind == "methods" else {c: c for c in table.columns}
    profile = table.teacher_profile or PROTOCOL_PROFILE
    table = table.with_full_data(_teacher_top1(table.protocol_version, table.dataset, nets,
                                               profile))
    corner = f"{table.dataset}, {net}" if table_kind == "methods" else table.dataset
    # A profile's table is another measurement than the protocol's: its title and its full-data
    # row say whose teacher it rests on.
    title = None if profile == PROTOCOL_PROFILE else f"teacher profile {profile}"
    full_data = (table.FULL_DATA_ROW if profile == PROTOCOL_PROFILE
                 else f"full train split ({profile}-profile teacher)")
    if markdown:
        text = table.to_markdown(corner).replace(f"| {table.FULL_DATA_ROW} |", f"| {full_data} |")
        out.print((f"{title}\n\n" if title else "") + text, markup=False, highlight=False,
                  soft_wrap=True)
        return
    view = Table(corner, *table.columns, title=title,
                 caption="top-1 % (final epoch), mean ± std over n records; "
                         "'sets': condensed sets pooled")
    for name, texts in table.row_texts():
        view.add_row(full_data if name == table.FULL_DATA_ROW else name, *texts)
    out.print(view)


def _teacher_top1(version: int, dataset: str, nets: dict[str, str],
                  profile_name: str = "protocol") -> dict[str, float]:
    """Validation top-1 of each column's teacher of the table's profile, where one is trained
    (else absent)."""
    from vdcbench.protocol import load_protocol, teacher_profile
    from vdcbench.train.teacher import find_teacher, teacher_sidecar
    protocol = load_protocol(version)
    profile = teacher_profile(profile_name, protocol)
    found = {}
    for column, net in nets.items():
        path = find_teacher(protocol, dataset, net, profile)
        if path is not None:
            found[column] = float(teacher_sidecar(path).val_top1)
    return found


def _print_cells(records) -> None:
    from vdcbench.evaluation.records import aggregate
    cells = aggregate(records)
    table = Table("data set", "track", "method", "archive", "net", "labels", "variant",
                  "top-1 %", "n", "ref. best top-1 %", "train TFLOP", "threads", "wall s")
    for c in cells:
        k = c.key
        ref = "-" if c.reference_best_top1_mean is None else f"{c.reference_best_top1_mean:.1f}"
        variant = k.variant if c.official else f"{k.variant} (not official, {k.epochs} epochs)"
        track = k.track if k.formation is None else f"{k.track} ({k.formation})"
        table.add_row(k.dataset, track, c.method, k.archive_sha256[:8], k.net, k.label_strategy,
                      variant, format_mean_std(c.top1_mean, c.top1_std, c.n), str(c.n), ref,
                      tflop(c.train_gflops), threads(c.torch_threads), f"{c.wall_seconds:.0f}")
    out.print(table)
