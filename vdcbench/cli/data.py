"""Data commands: ``prepare`` (decode a data set into its frame store) and ``data info``.

Attached to the main group by ``register(main)``; the same thin-shell rules as ``vdcbench.cli``:
parse, call one function, render with rich; a ``VdcError`` is one line and exit code 2.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.table import Table

from vdcbench.cli.output import console, fail, out, progress_bar, user_errors
from vdcbench.core.errors import VdcError

_SHOWN_FAILURES = 20


def _protocol():
    from vdcbench.protocol import LATEST_VERSION, load_protocol
    return load_protocol(LATEST_VERSION)


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def _layout_options(group, clip_seconds, split_file, val_fraction, seed, extra) -> dict:
    options = {"group": group, "clip_seconds": clip_seconds,
               "split_file": str(split_file) if split_file is not None else None,
               "val_fraction": val_fraction, "seed": seed}
    for item in extra:
        if "=" not in item:
            raise VdcError(f"--option {item!r} must look like key=value")
        key, value = item.split("=", 1)
        options[key.strip().replace("-", "_")] = value.strip()
    return {k: v for k, v in options.items() if v is not None}


def _rate_bar(bar, task):
    """A progress callback showing videos per second (the bar's own columns give the ETA)."""
    started = time.perf_counter()
    first: list[int] = []

    def update(done: int, total: int, what: str) -> None:
        if not first:
            first.append(done)   # resumed parts are not counted in the rate
        elapsed = time.perf_counter() - started
        rate = (done - first[0]) / elapsed if elapsed > 0 else 0.0
        info = f"{rate:.1f} videos/s" + (f"  {what}" if what else "")
        bar.update(task, completed=done, total=total, info=info)
    return update


def _print_verification(store) -> bool:
    from vdcbench.data.store import verify_store
    with progress_bar() as bar:
        task = bar.add_task("verify", total=len(store.index), info="")
        result = verify_store(store, lambda d, t: bar.update(task, completed=d, total=t))
    if result.ok:
        out.print(f"[green]verified[/]: {result.videos} videos, {result.frames} frames, every "
                  f"content hash matches (store sha256 {store.sha256})")
        return True
    for problem in result.problems[:_SHOWN_FAILURES]:
        console.print(f"  {problem}")
    return False


# ----------------------------------------------------------------------------------- prepare
@click.command("prepare")
@click.argument("layout")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="The data set's folder, in its official layout.")
@click.option("--workers", type=int, default=1, show_default=True, help="Decoding processes.")
@click.option("--name", default=None, help="Store name of a collection (default: the root's name).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Store directory (default: <cache>/stores/<name>).")
@click.option("--format", "frame_format", default="raw", show_default=True, metavar="raw|jpeg",
              help="How the store keeps frames: raw uint8 (exact) or JPEG (lossy, ~1/10 size).")
@click.option("--verify", is_flag=True,
              help="Recheck counts and content hashes (of the existing store without --root).")
@click.option("--overwrite", is_flag=True, help="Replace a store prepared from other videos.")
@click.option("--group", default=None, metavar="REGEX",
              help="folder: the part of a file name that keeps videos together in the split.")
@click.option("--clip-seconds", type=float, default=None, metavar="S",
              help="folder: cut recordings into S-second clips.")
@click.option("--split-file", type=click.Path(path_type=Path), default=None,
              help="folder: lines '<class>/<file> train|val' instead of a seeded split.")
@click.option("--val-fraction", type=float, default=None, help="folder: validation share.")
@click.option("--seed", type=int, default=None, help="folder: seed of the split.")
@click.option("--option", "extra", multiple=True, metavar="KEY=VALUE",
              help="Another option of the layout (e.g. train_list=...), repeatable.")
@user_errors
def prepare_cmd(layout: str, root: Path | None, workers: int, name: str | None,
                out_dir: Path | None, frame_format: str, verify: bool, overwrite: bool,
                group: str | None, clip_seconds: float | None, split_file: Path | None,
                val_fraction: float | None, seed: int | None, extra: tuple[str, ...]) -> None:
    """Decode the videos of LAYOUT (ucf101, hmdb51, kinetics400, ssv2, miniucf, folder,
    rawframes) under --root into a frame store at the protocol's resize."""
    from vdcbench.data.frame_formats import check_frame_format
    from vdcbench.data.prepare import plan_prepare, run_prepare, store_target
    from vdcbench.data.sources import source_names
    from vdcbench.data.store import find_store, open_store
    from vdcbench.core.errors import UnknownNameError

    p = _protocol()
    if layout not in source_names():
        raise UnknownNameError("source layout", layout, source_names())
    check_frame_format(frame_format)
    if root is None:
        if not verify:
            raise VdcError("--root is required (or --verify alone, to check a prepared store)")
        dataset = "folder" if layout in ("folder", "rawframes") else layout
        target = store_target(p, dataset, root=None, name=name, out=out_dir)
        path = out_dir or find_store(target.name)
        if path is None:
            raise VdcError(f"no prepared store named {target.name!r}; prepare it with --root")
        if not _print_verification(open_store(path)):
            fail(f"store {path} failed verification")
        return
    if workers < 1:
        raise VdcError(f"--workers must be at least 1, not {workers}")
    options = _layout_options(group, clip_seconds, split_file, val_fraction, seed, extra)
    plan = plan_prepare(p, layout, root, name=name, out=out_dir, options=options,
                        frame_format=frame_format, overwrite=overwrite)
    try:
        with progress_bar() as bar:
            task = bar.add_task(f"prepare {plan.target.name}", total=None, info="")
            report = run_prepare(plan, workers=workers, progress=_rate_bar(bar, task))
    except KeyboardInterrupt:
        fail("interrupted; the videos decoded so far are kept and a rerun resumes from them", 130)
    store = report.store
    m = store.manifest.to_dict()
    if report.already_prepared:
        out.print(f"{store.name}: already prepared at {store.path} (sha256 {store.sha256}); "
                  "nothing to do")
    else:
        out.print(f"prepared {store.name} ({store.dataset}): {len(store.index)} videos "
                  f"({m['videos']['train']} train / {m['videos']['val']} val), "
                  f"{m['total_frames']:,} {store.frame_format} frames at "
                  f"{store.resize[0]}x{store.resize[1]}, "
                  f"{_megabytes(store.size_bytes())} in {report.seconds:.1f} s "
                  f"({report.decoded} decoded, {report.resumed} resumed)")
        out.print(f"  store {store.path}  sha256 {store.sha256}")
    if report.failed or report.missing:
        out.print(f"  skipped: {len(report.failed)} failed to decode, {len(report.missing)} "
                  "missing on disk (listed in the store's manifest.json)")
        table = Table("video", "reason")
        shown = list(report.failed[:_SHOWN_FAILURES])
        shown += list(report.missing[:max(0, _SHOWN_FAILURES - len(shown))])
        for key, reason in shown:
            table.add_row(key, reason)
        out.print(table)
    if verify and not _print_verification(store):
        fail(f"store {store.path} failed verification")


# -------------------------------------------------------------------------------- data info
@click.group("data")
def data_group() -> None:
    """Prepared data sets (frame stores)."""


@data_group.command("info")
@click.argument("dataset")
@user_errors
def data_info_cmd(dataset: str) -> None:
    """Classes, videos per split, frames, store size and hash of DATASET."""
    from vdcbench.data.datasets import resolve_dataset
    from vdcbench.data.splits import dataset_sha256
    from vdcbench.data.store import open_store_for

    p = _protocol()
    ds = resolve_dataset(p, dataset)
    if ds.generator is not None:
        g = ds.generator
        out.print(f"[bold]{ds.name}[/]: generated (generator v{g.version}, seed {g.seed}), "
                  f"{ds.num_classes} classes at {g.height}x{g.width}")
        out.print(f"  videos: {ds.num_classes * g.train_per_class} train / "
                  f"{ds.num_classes * g.val_per_class} val, {g.frames} frames each")
        out.print(f"  hash (result records): {dataset_sha256(ds)}")
        return
    store = open_store_for(ds)
    m = store.manifest.to_dict()
    table = Table("label", "class", "train", "val")
    for label, name in enumerate(store.classes):
        rows = store.index.labels == label
        train = sum(1 for r, s in zip(rows, store.index.splits) if r and s == "train")
        val = sum(1 for r, s in zip(rows, store.index.splits) if r and s == "val")
        table.add_row(str(label), name, str(train), str(val))
    out.print(f"[bold]{store.name}[/] ({store.dataset}): {len(store.classes)} classes, "
              f"{m['videos']['train']} train / {m['videos']['val']} val videos, "
              f"{m['total_frames']:,} frames at {store.resize[0]}x{store.resize[1]}")
    out.print(table)
    out.print(f"  split: {m.get('split', {}).get('description') or 'as listed'}")
    size, frames = store.size_bytes(), max(1, int(m["total_frames"]))
    settings = m.get("jpeg")
    kind = store.frame_format + (f" (quality {settings['quality']}, {settings['subsampling']})"
                                 if settings else "")
    out.print(f"  store: {store.path}, {kind} frames, {_megabytes(size)} on disk "
              f"({size / frames:,.0f} bytes a frame)")
    out.print(f"  skipped when prepared: {len(m.get('failed', []))} failed, "
              f"{len(m.get('missing', []))} missing")
    v = m.get("versions", {})
    out.print(f"  made by vdcbench {v.get('vdcbench')}, PyAV {v.get('pyav')}, torch "
              f"{v.get('torch')}" + (f", Pillow {v.get('pillow')} with {v.get('libjpeg')}"
                                     if store.frame_format == "jpeg" else ""))
    out.print(f"  hash (result records): {store.sha256}")


def register(main_group: click.Group) -> None:
    """Attach the data commands to the ``vdcbench`` group."""
    for command in (prepare_cmd, data_group):
        main_group.add_command(command)
