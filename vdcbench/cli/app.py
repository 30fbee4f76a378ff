"""The ``vdcbench`` command: a thin click shell that parses, calls one function, and renders.

Any ``VdcError`` becomes one line on stderr and exit code 2; nothing below this module prints.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.table import Table

from vdcbench.core.version import __version__
from vdcbench.cli.output import console, out, progress_bar, user_errors
from vdcbench.core.errors import VdcError
from vdcbench.evaluation.records import mean_std


def _protocol(version: int | None):
    from vdcbench.protocol import LATEST_VERSION, load_protocol
    return load_protocol(version or LATEST_VERSION)


def _default_results_dir() -> Path:
    from vdcbench.core.paths import results_dir
    return results_dir()


def _parse_seeds(text: str) -> tuple[int, ...]:
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vdcbench")
def main() -> None:
    """vdcbench: score condensed video data sets under one frozen protocol."""


# ----------------------------------------------------------------------------------- protocol
@main.command("protocol")
@click.option("--version", "version", type=int, default=None, help="Protocol version (latest).")
@user_errors
def protocol_cmd(version: int | None) -> None:
    """Show the protocol: version, hash, data sets and tracks."""
    p = _protocol(version)
    out.print(f"[bold]{p.name}[/] version {p.version}  sha256 {p.sha256}")
    table = Table("data set", "classes", "resize", "crop", "metrics", "base batch", "flip")
    for ds in p.datasets.values():
        table.add_row(ds.name, str(ds.num_classes or "user"), f"{ds.resize[0]}x{ds.resize[1]}",
                      str(ds.crop), ",".join(ds.metrics), str(ds.base_batch_size),
                      "yes" if ds.hflip else "no")
    out.print(table)
    out.print("official tracks: " + ", ".join(p.track_ids()))
    out.print("temporal tracks (declared): " + ", ".join(
        t for t in p.track_ids(include_temporal=True) if t not in p.track_ids()))


# ------------------------------------------------------------------------------------ methods
@main.command("methods")
@click.argument("name", required=False)
@user_errors
def methods_cmd(name: str | None) -> None:
    """List the registered condensation methods, or NAME's settings (its --set keys)."""
    from vdcbench.methods import available_methods, get_method
    if name is None:
        table = Table("method", "kind", "description")
        for method_name, cls in available_methods().items():
            table.add_row(method_name, cls.kind, cls.description)
        out.print(table)
        return
    from vdcbench.methods.settings import method_settings
    cls = get_method(name)
    out.print(f"{cls.name} ({cls.kind}): {cls.description}")
    settings = method_settings(cls.Config)
    if not settings:
        out.print("no settings (--set takes no keys)")
        return
    table = Table("--set key", "type", "default", "what it is")
    for setting in settings:
        table.add_row(setting.name, setting.type, repr(setting.default), setting.help)
    out.print(table)


# ----------------------------------------------------------------------------------- validate
@main.command("validate")
@click.argument("archive", type=click.Path(dir_okay=True, path_type=Path))
@user_errors
def validate_cmd(archive: Path) -> None:
    """Check an archive (schema, hashes, shapes, values, budget); print its storage ledger."""
    from vdcbench.archive import read_archive
    loaded = read_archive(archive)
    c = loaded.condensed
    out.print(f"[green]valid[/]: {archive}  sha256 {loaded.sha256}")
    out.print(f"  data set {c.dataset}, track {loaded.track.id}, labels {c.label_strategy}, "
              f"method {c.method.name} ({c.method.kind})")
    table = Table("storage ledger", "value", title=None)
    for name, value in loaded.ledger.rows():
        table.add_row(name, str(value))
    out.print(table)


# ------------------------------------------------------------------------------------ teacher
@main.group("teacher")
def teacher_group() -> None:
    """Protocol teachers (the full-data reference, soft labels, RDED's scorer)."""


@teacher_group.command("train")
@click.option("--dataset", required=True)
@click.option("--net", default="minic3d", show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--epochs", type=int, default=None,
              help="Shorten the recipe (smoke tests; the result is reported, not saved).")
@click.option("--shuffle-frames", is_flag=True,
              help="Control: permute every clip's frames (reported, not saved).")
@click.option("--videos-per-class", type=int, default=None,
              help="Train and validate on the first N videos of each class (smoke tests and "
                   "cost estimates; reported, not saved).")
@click.option("--tiny", is_flag=True,
              help="Smoke preset: --epochs 1 --videos-per-class 2 unless given.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
@click.option("--no-resume", is_flag=True,
              help="Start from epoch 0 even if a stopped run of the same training left a "
                   "checkpoint (kept per epoch in the cache).")
@user_errors
def teacher_train_cmd(dataset: str, net: str, device: str, epochs: int | None,
                      shuffle_frames: bool, videos_per_class: int | None, tiny: bool,
                      json_path: Path | None, no_resume: bool) -> None:
    """Train the protocol teacher of NET (any protocol net) on the full train split of DATASET."""
    from vdcbench.train.teacher import teacher_resume_store, train_teacher
    from vdcbench.data.datasets import resolve_dataset
    p = _protocol(None)
    ds = resolve_dataset(p, dataset)
    recipe = p.teacher_recipe(ds, net)
    if tiny:
        epochs = epochs or 1
        videos_per_class = videos_per_class or 2
    total = epochs or recipe.epochs
    with progress_bar() as bar:
        task = bar.add_task(f"teacher {net} on {dataset}", total=total, info="")
        sidecar, _ = train_teacher(
            p, ds, net, epochs=epochs, shuffle_frames=shuffle_frames, device=device,
            videos_per_class=videos_per_class,
            resume_store=None if no_resume else teacher_resume_store(),
            progress=lambda e, n, loss: bar.update(task, completed=e, info=f"loss {loss:.3f}"))
    saved = "sha256" in sidecar
    out.print(f"teacher {net} on {dataset}: validation top-1 {sidecar['val_top1']:.1f}% "
              f"({sidecar['epochs_run']} epochs of recipe {recipe.name}, "
              f"{sidecar['train_gflops'] / 1e3:.1f} TFLOP, {sidecar['wall_seconds']:.0f} s)"
              + ("" if saved else "  \\[not saved: not the protocol recipe]"))
    if json_path:
        from vdcbench.core.atomic_file import write_json_atomic
        write_json_atomic(json_path, sidecar)


# ------------------------------------------------------------------------------- run-baseline
@main.command("run-baseline")
@click.argument("name")
@click.option("--dataset", required=True)
@click.option("--ipc", type=int, required=True, help="Instances per class of the track.")
@click.option("--frames", type=int, default=None, help="Frames per instance (protocol: 8).")
@click.option("--label-strategy", default="hard", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Archive to write (default: NAME-DATASET-TRACK-LABELS-sSEED.tar).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output archive.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Method setting, repeatable.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--evaluate", "then_evaluate", is_flag=True, help="Score the archive straight away.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Evaluation seeds (with --evaluate).")
@click.option("--net", default="minic3d", show_default=True,
              help="Evaluation net(s) (with --evaluate): a name, a comma list, or all.")
@click.option("--results-dir", type=click.Path(path_type=Path), default=None,
              help="Where per-seed records go (with --evaluate; default: the vdcbench cache).")
@click.option("--train-teacher", is_flag=True,
              help="Train the data set's MiniC3D protocol teacher first if it is not there yet.")
@user_errors
def run_baseline_cmd(name: str, dataset: str, ipc: int, frames: int | None, label_strategy: str,
                     seed: int, output: Path | None, overwrite: bool, settings: tuple[str, ...],
                     device: str, then_evaluate: bool, seeds: str, net: str,
                     results_dir: Path | None, train_teacher: bool) -> None:
    """Condense DATASET with the method NAME and write a submission archive."""
    from vdcbench.archive import write_archive
    from vdcbench.methods import CondensationTask, get_method
    from vdcbench.core.artifacts import ArtifactStore

    from vdcbench.data.datasets import resolve_dataset
    p = _protocol(None)
    track = p.track(resolve_dataset(p, dataset), f"ipc{ipc}-t{frames or p.official_frames}")
    if track.dataset.generator is None:
        from vdcbench.data.store import open_store_for
        open_store_for(track.dataset)   # an unprepared data set fails before any progress bar
    p.label_strategy(label_strategy)
    overrides = {}
    for item in settings:
        if "=" not in item:
            raise VdcError(f"--set {item!r} must look like key=value")
        key, value = item.split("=", 1)
        overrides[key.strip()] = value.strip()
    cls = get_method(name)
    method = cls(cls.config_from_strings(overrides))
    output = output or Path(f"{name}-{dataset}-{track.id}-{label_strategy}-s{seed}.tar")
    if output.exists() and not overwrite:
        raise VdcError(f"{output} exists; pass --overwrite to replace it")
    eval_seeds = _parse_seeds(seeds)
    if not then_evaluate and (results_dir is not None or net != "minic3d"):
        raise VdcError("--net and --results-dir apply to the evaluation: add --evaluate")
    if then_evaluate:
        from vdcbench.evaluation.scoring import parse_nets
        parse_nets(p, net)      # an unknown net fails before the condensation, not after it
    if train_teacher:
        _ensure_teacher(p, track.dataset, "minic3d", device)
    from vdcbench.core.paths import method_artifacts_dir
    artifacts = ArtifactStore(method_artifacts_dir(name, dataset, seed))
    started = time.perf_counter()
    report = []          # the progress bar's update, once the bar exists
    task = CondensationTask(p, track, label_strategy, seed, artifacts, device,
                            progress=lambda d, t, w: report and report[0](d, t, w))
    if cls.kind == "selection":
        # A selection cannot keep more real videos than a class has: say so before any work.
        task.require_videos_per_class(track.ipc, f"{name} at IPC {track.ipc}")
    with progress_bar() as bar:
        task_id = bar.add_task(f"{name} on {dataset} {track.id}", total=None, info="")
        report.append(lambda d, t, w: bar.update(task_id, completed=d, total=t, info=w))
        condensed = method.condense(task)
    sha = write_archive(condensed, output, protocol=p, overwrite=overwrite)
    out.print(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB, sha256 {sha[:12]}) in "
              f"{time.perf_counter() - started:.1f} s")
    if then_evaluate:
        _evaluate(output, eval_seeds, net, "official", device, None, results_dir, None)


def _ensure_teacher(p, dataset, net: str, device: str) -> None:
    """Train and save the protocol teacher of ``net`` unless one is already found."""
    from vdcbench.train.teacher import find_teacher, teacher_resume_store, train_teacher
    if find_teacher(p, dataset.name, net) is not None:
        return
    recipe = p.teacher_recipe(dataset, net)
    with progress_bar() as bar:
        task = bar.add_task(f"teacher {net} on {dataset.name}", total=recipe.epochs, info="")
        sidecar, _ = train_teacher(p, dataset, net, recipe=recipe, device=device,
                                   resume_store=teacher_resume_store(),
                                   progress=lambda e, n, loss: bar.update(task, completed=e,
                                                                          info=f"loss {loss:.3f}"))
    out.print(f"trained the {net} teacher on {dataset.name}: validation top-1 "
              f"{sidecar['val_top1']:.1f}%")


# ------------------------------------------------------------------------------------ results
@main.command("results")
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
@click.option("--markdown", is_flag=True, help="Print the methods or nets table as Markdown.")
@user_errors
def results_cmd(folders: tuple[Path, ...], table_kind: str, dataset: str | None, methods: str | None,
                net: str | None, label_strategy: str | None, track: str | None,
                variant: str | None, condensation_seed: int | None, markdown: bool) -> None:
    """Aggregate the result records under FOLDERS: mean ± std over seeds per cell."""
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
    where = PivotFilter(dataset=dataset, methods=chosen, net=net,
                        label_strategy=label_strategy, track=track,
                        variant=variant, condensation_seed=condensation_seed,
                        official_only=variant in (None, "official"))
    table = pivot(records, table_kind, where)
    nets = {c: net for c in table.columns} if table_kind == "methods" else {c: c for c in table.columns}
    table = table.with_full_data(_teacher_top1(table.protocol_version, table.dataset, nets))
    corner = f"{table.dataset}, {net}" if table_kind == "methods" else table.dataset
    if markdown:
        out.print(table.to_markdown(corner), markup=False, highlight=False, soft_wrap=True)
        return
    view = Table(corner, *table.columns,
                 caption="top-1 % (final epoch), mean ± std over n records; "
                         "'sets': condensed sets pooled")
    for name, texts in table.row_texts():
        view.add_row(name, *texts)
    out.print(view)


def _teacher_top1(version: int, dataset: str, nets: dict[str, str]) -> dict[str, float]:
    """Validation top-1 of each column's protocol teacher, where one is trained (else absent)."""
    from vdcbench.protocol import load_protocol
    from vdcbench.train.teacher import find_teacher, teacher_sidecar
    protocol = load_protocol(version)
    found = {}
    for column, net in nets.items():
        path = find_teacher(protocol, dataset, net)
        if path is not None:
            found[column] = float(teacher_sidecar(path)["val_top1"])
    return found


def _print_cells(records) -> None:
    from vdcbench.evaluation.records import aggregate
    cells = aggregate(records)
    table = Table("data set", "track", "method", "archive", "net", "labels", "variant",
                  "top-1 %", "n", "ref. best top-1 %", "train TFLOP", "wall s")
    for c in cells:
        k = c.key
        ref = "-" if c.reference_best_top1_mean is None else f"{c.reference_best_top1_mean:.1f}"
        variant = k.variant if c.official else f"{k.variant} (not official)"
        table.add_row(k.dataset, k.track, c.method, k.archive_sha256[:8], k.net, k.label_strategy,
                      variant, mean_std(c.top1_mean, c.top1_std, c.n), str(c.n), ref,
                      _tflop(c.train_gflops), f"{c.wall_seconds:.0f}")
    out.print(table)


# ----------------------------------------------------------------------------------- evaluate
@main.command("evaluate")
@click.argument("archive", type=click.Path(dir_okay=True, path_type=Path))
@click.option("--seeds", default="0,1,2", show_default=True, help="Evaluation seeds, e.g. 0,1,2 or 0-4.")
@click.option("--net", default="minic3d", show_default=True,
              help="An evaluation net, a comma list (minic3d,i3d_r18), or all: one record per "
                   "(net, seed) and a cross-architecture table.")
@click.option("--variant", default="official", show_default=True,
              help="official | cutmix | kl (only official is ranked).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="Also write the records and their summary to this file.")
@click.option("--results-dir", type=click.Path(path_type=Path), default=None,
              help="Where per-seed records go (default: the vdcbench cache).")
@click.option("--epochs", type=int, default=None, hidden=True,
              help="Shortened schedule for smoke tests; records are marked not official.")
@user_errors
def evaluate_cmd(archive: Path, seeds: str, net: str, variant: str, device: str,
                 json_path: Path | None, results_dir: Path | None, epochs: int | None) -> None:
    """Train the evaluation net on ARCHIVE per seed under the protocol and score it."""
    _evaluate(archive, _parse_seeds(seeds), net, variant, device, json_path, results_dir, epochs)


def _evaluate(archive: Path, seeds: tuple[int, ...], net: str, variant: str, device: str,
              json_path: Path | None, results_dir: Path | None, epochs: int | None) -> None:
    """Score ARCHIVE on each net ``net`` names (one, a comma list, or ``all``) in turn."""
    from vdcbench.archive import read_archive
    from vdcbench.evaluation.scoring import EvalSettings, Evaluation, parse_nets, summarize
    from vdcbench.core.atomic_file import write_json_atomic

    if json_path is not None and json_path.parent and not json_path.parent.exists():
        raise VdcError(f"cannot write --json {json_path}: directory {json_path.parent} does not exist")
    loaded = read_archive(archive)
    p = _protocol(loaded.manifest["protocol"]["version"])
    nets = parse_nets(p, net)
    several = len(nets) > 1
    results_dir = results_dir or _default_results_dir()
    # Every net is set up (its teacher loaded, for multi-sl) before any trains: a missing teacher
    # fails now, not after hours spent on the nets before it.
    evaluations = [Evaluation(p, loaded, EvalSettings(seeds=seeds, net=name, variant=variant,
                                                      device=device, epochs=epochs), results_dir)
                   for name in nets]
    by_net: dict[str, list] = {}
    with progress_bar() as bar:
        for evaluation in evaluations:
            prefix = f"{evaluation.settings.net} " if several else ""
            records = by_net[evaluation.settings.net] = []
            for seed in seeds:
                cached = evaluation.existing(seed)
                if cached is not None:
                    console.print(f"{prefix}seed {seed}: reusing record ({cached.top1:.1f}% top-1)")
                    records.append(cached)
                    continue
                task = bar.add_task(f"{prefix}seed {seed}", total=evaluation.config.epochs, info="")
                records.append(evaluation.run_seed(
                    seed, lambda s, e, n, loss, task=task: bar.update(task, completed=e,
                                                                      info=f"loss {loss:.3f}")))
    table = Table(*(("net",) if several else ()), "seed", "top-1 %", "top-5 %",
                  "reference best top-1 %", "iterations", "train TFLOP", "wall s")
    for name, records in by_net.items():
        for r in records:
            ref = "-" if r.reference_best_top1 is None else f"{r.reference_best_top1:.1f}"
            table.add_row(*((name,) if several else ()), str(r.key.seed), f"{r.top1:.2f}",
                          f"{r.top5:.2f}", ref, str(r.iterations), _tflop(r.train_gflops),
                          f"{r.wall_seconds:.0f}")
    out.print(table)
    c = loaded.condensed
    what = f"{c.method.name} {loaded.track.dataset.name} {loaded.track.id} {c.label_strategy}"
    summaries = {name: summarize(records) for name, records in by_net.items()}
    for name, records in by_net.items():
        summary = summaries[name]
        label = ("official" if all(r.official for r in records)
                 else "NOT official (shortened schedule or variant)")
        top1 = mean_std(summary["top1_mean"], summary["top1_std"], summary["n"], digits=2)
        out.print(f"{what} on {name}: top-1 {top1} (n={summary['n']})  \\[{label}]")
    if several:
        cross = Table("net", "top-1 %", "n", "train TFLOP", "wall s",
                      title=f"{what}: cross-architecture (final-epoch top-1, mean ± std)")
        for name, records in by_net.items():
            summary = summaries[name]
            compute = [r.train_gflops for r in records]
            cross.add_row(name, mean_std(summary["top1_mean"], summary["top1_std"], summary["n"], 2),
                          str(summary["n"]), _tflop(None if None in compute else sum(compute)),
                          f"{sum(r.wall_seconds for r in records):.0f}")
        out.print(cross)
    out.print(f"records: {results_dir}")
    if json_path is not None:
        # "summary" stays the single net's (the format before --net lists); "by_net" always.
        body = {"by_net": summaries, "records": [r.to_dict() for rs in by_net.values() for r in rs]}
        if not several:
            body["summary"] = summaries[nets[0]]
        write_json_atomic(json_path, body)


def _tflop(gflops: float | None) -> str:
    """Training compute for a table; records written before compute was kept show "-"."""
    return "-" if gflops is None else f"{gflops / 1e3:.2f}"


# Leaderboard commands (submit, leaderboard build/validate, diff, show) live in their own module.
from vdcbench.cli.leaderboard import register  # noqa: E402  (needs main, out and user_errors)

register(main)

from vdcbench.cli.nets import register as register_nets  # noqa: E402

register_nets(main)

from vdcbench.cli.importing import register as register_import  # noqa: E402

register_import(main)

from vdcbench.cli.data import register as register_data  # noqa: E402

register_data(main)

if __name__ == "__main__":
    main()
