"""Data commands: ``prepare`` (decode a data set into its frame store) and ``data info``.

Attached to the main group by ``register(main)``; the same thin-shell rules as ``vdcbench.cli``:
parse, call one function, render with rich; a ``VdcError`` is one line and exit code 2.
"""

from __future__ import annotations

import sys
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


def _stage_bar(bar, description: str):
    """A progress callback whose task appears on its first call (a stage that may not run)."""
    task: list = []

    def update(done: int, total: int, what: str) -> None:
        if not task:
            task.append(bar.add_task(description, total=total, info=what))
        bar.update(task[0], completed=done, total=total, info=what)
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
# The layouts `prepare` reads (vdcbench.data.sources.SOURCES, kept in step by a test: importing
# the sources here would slow every command's start) and what each subcommand's page says.
_LAYOUTS = {
    "ucf101": "UCF101: UCF-101/<Class>/*.avi with ucfTrainTestlist/ (the protocol's split).",
    "hmdb51": "HMDB51: <class>/*.avi with the *_test_split<N>.txt files (option splits_dir).",
    "kinetics400": "Kinetics-400: videos and the annotation CSVs (option annotations).",
    "ssv2": "Something-Something v2: the .webm folder and the label JSONs (option labels_dir).",
    "miniucf": "miniUCF: the protocol's 50 UCF101 classes, from a UCF101 root.",
    "folder": "Your own collection: <root>/<class>/<video> (avi, mp4, mkv, webm, mov, mpg, mpeg).",
    "rawframes": ("mmaction frame folders with train/val lists (options train_list, val_list, "
                  "classes, frames_dir, dataset)."),
}
# The folder source's split defaults (vdcbench.data.sources.folder; a test keeps them equal).
_FOLDER_SEED = 0
_FOLDER_VAL_FRACTION = 0.3
_SHOWN_PAIRS = 5
_INTERRUPTED = ("the videos decoded so far are kept (none before decoding starts); rerun the "
                "same vdcbench prepare command to resume from them")


class _PrepareGroup(click.Group):
    """``prepare LAYOUT``: one subcommand, and one help page, per source layout; an unknown
    layout is one line naming the known ones."""

    def resolve_command(self, ctx, args):
        from vdcbench.core.errors import UnknownNameError
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            fail(str(UnknownNameError("source layout", args[0], self.commands)))
        return super().resolve_command(ctx, args)


@click.group("prepare", cls=_PrepareGroup)
def prepare_group() -> None:
    """Decode the videos of a data set under --root into a frame store at the protocol's
    resize, then check its split for near-duplicate footage across train and validation.
    `vdcbench prepare LAYOUT --help` shows a layout's options and defaults."""


def _print_short(short: tuple[tuple[str, int], ...], clip_frames: int) -> None:
    if not short:
        return
    lengths = [n for _, n in short]
    shown = ", ".join(f"{key} ({n} frame{'s' if n != 1 else ''})"
                      for key, n in short[:_SHOWN_PAIRS])
    more = f", and {len(short) - _SHOWN_PAIRS} more" if len(short) > _SHOWN_PAIRS else ""
    span = (f"{min(lengths)}" if min(lengths) == max(lengths)
            else f"{min(lengths)} to {max(lengths)}")
    out.print(f"  short: {len(short)} video{'s' if len(short) != 1 else ''} of {span} "
              f"frame{'s' if max(lengths) != 1 else ''}, fewer than the {clip_frames}-frame clip: "
              f"kept, and every clip of them repeats frames to make {clip_frames} (remove them "
              f"from the folder or the split file to leave them out): {shown}{more}")


def _print_leakage(report, layout: str | None) -> None:
    """The leakage check's result: one line when clean, else counts, the closest pairs, a hint."""
    from vdcbench.data.leakage import HASH_BITS, split_hint

    if report is None:
        out.print("  leakage check: not run on this store; run `vdcbench data check NAME`")
        return
    if report.clean:
        out.print(f"  leakage check: clean — no validation video within {report.threshold} of "
                  f"{HASH_BITS} bits of a training video ({report.train} x {report.val} pairs "
                  f"compared in {report.seconds:.1f} s)")
        return
    out.print(f"  [yellow]leakage check[/]: {report.val_flagged} of {report.val} validation "
              f"videos look like footage in training ({report.pair_count} pairs within "
              f"{report.threshold} of {HASH_BITS} bits, {report.seconds:.1f} s); a score on "
              "this split measures memory as well as condensation")
    for pair in report.pairs[:_SHOWN_PAIRS]:
        out.print(f"    {pair.val}  ~  {pair.train}  ({pair.distance} bits)")
    if report.pair_count > _SHOWN_PAIRS:
        out.print(f"    ... {report.pair_count - _SHOWN_PAIRS} more pairs (in the store's "
                  "leakage.json)")
    out.print(f"  {split_hint(layout)}")


def _prepare(layout: str, root: Path | None, workers: int, name: str | None,
             out_dir: Path | None, frame_format: str, verify: bool, overwrite: bool,
             options: dict) -> None:
    from vdcbench.data.frame_formats import check_frame_format
    from vdcbench.data.prepare import plan_prepare, run_prepare, store_target
    from vdcbench.data.store import find_store, open_store

    p = _protocol()
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
    plan = plan_prepare(p, layout, root, name=name, out=out_dir, options=options,
                        frame_format=frame_format, overwrite=overwrite)
    with progress_bar() as bar:
        task = bar.add_task(f"prepare {plan.target.name}", total=None, info="")
        report = run_prepare(plan, workers=workers, progress=_rate_bar(bar, task),
                             check_progress=_stage_bar(bar, "leakage check"))
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
    _print_short(report.short, plan.clip_frames)
    _print_leakage(report.leakage, (store.manifest.source or {}).get("layout"))
    if verify and not _print_verification(store):
        fail(f"store {store.path} failed verification")


def _common_options(fn):
    """The options every layout takes (applied below the layout's own)."""
    for option in reversed((
        click.option("--root", type=click.Path(path_type=Path), default=None,
                     help="The data set's folder, in this layout."),
        click.option("--workers", type=int, default=1, show_default=True,
                     help="Decoding processes."),
        click.option("--name", default=None,
                     help="Store name of a collection (default: the root's name)."),
        click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
                     help="Store directory (default: <cache>/stores/<name>)."),
        click.option("--format", "frame_format", default="raw", show_default=True,
                     metavar="raw|jpeg",
                     help="How the store keeps frames: raw uint8 (exact) or JPEG (lossy, "
                          "~1/10 size)."),
        click.option("--verify", is_flag=True,
                     help="Recheck counts and content hashes (of the existing store without "
                          "--root)."),
        click.option("--overwrite", is_flag=True,
                     help="Replace a store prepared from other videos."),
        click.option("--option", "extra", multiple=True, metavar="KEY=VALUE",
                     help="Another option of the layout (e.g. train_list=...), repeatable."),
    )):
        fn = option(fn)
    return fn


def _layout_command(layout: str, help_text: str) -> click.Command:
    @click.command(layout, help=help_text, context_settings={"max_content_width": 100})
    @_common_options
    @user_errors(interrupted=_INTERRUPTED)
    def command(root, workers, name, out_dir, frame_format, verify, overwrite, extra):
        _prepare(layout, root, workers, name, out_dir, frame_format, verify, overwrite,
                 _layout_options(None, None, None, None, None, extra))
    return command


_FOLDER_HELP = (
    "Decode your own collection, <root>/<class>/<video> (avi, mp4, mkv, webm, mov, mpg, mpeg; "
    "classes are the sorted folder names), into a frame store, then check the split for "
    "near-duplicate footage across train and validation.\n\n"
    f"The split is seeded unless --split-file names it: seed {_FOLDER_SEED}, a validation "
    f"fraction of {_FOLDER_VAL_FRACTION} per class, each video its own group (--group REGEX "
    "makes the part of the file names it matches the group: videos of one group, such as one "
    "source video or person, stay on one side). It is planned over the videos that decode, so "
    "a broken file moves no other. Example, KTH by person in 4-second clips:\n\n"
    "\b\n  vdcbench prepare folder --root kth --group 'person\\d+' --clip-seconds 4")


@click.command("folder", help=_FOLDER_HELP, context_settings={"max_content_width": 100})
@_common_options
@click.option("--group", default=None, metavar="REGEX", show_default="each video its own group",
              help="The part of a file name that keeps videos together in the split.")
@click.option("--clip-seconds", type=float, default=None, metavar="S",
              show_default="whole recordings", help="Cut recordings into S-second clips.")
@click.option("--split-file", type=click.Path(path_type=Path), default=None,
              help="Lines '<class>/<file> train|val' instead of a seeded split.")
@click.option("--val-fraction", type=float, default=None, show_default=str(_FOLDER_VAL_FRACTION),
              help="Validation share of each class (seeded split).")
@click.option("--seed", type=int, default=None, show_default=str(_FOLDER_SEED),
              help="Seed of the split.")
@user_errors(interrupted=_INTERRUPTED)
def prepare_folder_cmd(root: Path | None, workers: int, name: str | None, out_dir: Path | None,
                       frame_format: str, verify: bool, overwrite: bool, extra: tuple[str, ...],
                       group: str | None, clip_seconds: float | None, split_file: Path | None,
                       val_fraction: float | None, seed: int | None) -> None:
    _prepare("folder", root, workers, name, out_dir, frame_format, verify, overwrite,
             _layout_options(group, clip_seconds, split_file, val_fraction, seed, extra))


for _layout, _help in _LAYOUTS.items():
    if _layout == "folder":
        prepare_group.add_command(prepare_folder_cmd)
    else:
        prepare_group.add_command(_layout_command(
            _layout, f"{_help}\n\nDecode it into a frame store at the protocol's resize, then "
                     "check the split for near-duplicate footage across train and validation."))


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
    from vdcbench.data.leakage import stored_leakage
    from vdcbench.data.prepare import short_videos
    clip_frames = p.sampling.frames
    short = short_videos(store, clip_frames)
    if short:
        out.print(f"  short: {len(short)} videos have fewer than {clip_frames} frames (their "
                  f"clips repeat frames)")
    _print_leakage(stored_leakage(store), (store.manifest.source or {}).get("layout"))
    v = m.get("versions", {})
    out.print(f"  made by vdcbench {v.get('vdcbench')}, PyAV {v.get('pyav')}, torch "
              f"{v.get('torch')}" + (f", Pillow {v.get('pillow')} with {v.get('libjpeg')}"
                                     if store.frame_format == "jpeg" else ""))
    out.print(f"  hash (result records): {store.sha256}")


@data_group.command("check")
@click.argument("dataset")
@user_errors(interrupted="nothing was written; rerun vdcbench data check to check again")
def data_check_cmd(dataset: str) -> None:
    """Check the split of DATASET's store for near-duplicate footage across train and
    validation (a perceptual hash of 16 frames a video; `vdcbench data info` shows the result
    afterwards). Exits 1 when it finds pairs, so a script can stop there."""
    from vdcbench.data.datasets import resolve_dataset
    from vdcbench.data.leakage import check_leakage
    from vdcbench.data.store import open_store_for

    ds = resolve_dataset(_protocol(), dataset)
    if ds.generator is not None:
        raise VdcError(f"{ds.name!r} is generated, not prepared from footage: it has no store "
                       "to check")
    store = open_store_for(ds)
    with progress_bar() as bar:
        report = check_leakage(store, progress=_stage_bar(bar, f"check {store.name}"))
    out.print(f"[bold]{store.name}[/]: {report.train} train / {report.val} val videos")
    _print_leakage(report, (store.manifest.source or {}).get("layout"))
    if not report.clean:
        sys.exit(1)


def register(main_group: click.Group) -> None:
    """Attach the data commands to the ``vdcbench`` group."""
    for command in (prepare_group, data_group):
        main_group.add_command(command)
