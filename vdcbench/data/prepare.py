"""``prepare``: decode what a source listing names into a frame store, in parallel and resumably.

Each decoded video is first written as its own part in the store's frame format
(``<store>/parts/<key hash>.npy`` for raw, ``.jpg.bin`` for jpeg — encoded in the worker, so the
encoding runs in parallel too — plus a ``.json`` written after it), each by temp file and rename,
so an interrupted prepare resumes by skipping the videos whose parts exist. Videos are decoded in
worker processes (spawned, so no worker inherits the parent's torch or FFmpeg threads), one
source file per task: the clips a source cuts out of one recording come from one decoding pass.
A video that fails to decode is reported with its reason and skipped, never fatal. When every
video has been tried, the finalize step concatenates the parts in key order into the store
(``vdcbench.data.store.write_store``) and removes them.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vdcbench.core.atomic_file import write_atomic, write_text_atomic
from vdcbench.data.decode import DecodedVideo, DecodeError, decode_entries
from vdcbench.data.frame_formats import JPEG, RAW, check_frame_format, frames_sha256, jpeg_sha256
from vdcbench.data.jpeg import EncodedFrames, encode_frames
from vdcbench.data.leakage import LeakageReport, check_leakage, stored_leakage
from vdcbench.data.listing import SourceListing, VideoEntry
from vdcbench.data.store import MANIFEST_FILE, Store, StoredVideo, open_store, write_store
from vdcbench.core.errors import VdcError
from vdcbench.core.json_values import dumps_strict, parse_json_strict
from vdcbench.core.locks import exclusive
from vdcbench.protocol import canonical_sha256

PARTS_DIR = "parts"
PLAN_FILE = "plan.json"
PART_VERSION = 1
PART_SUFFIX = {RAW: ".npy", JPEG: ".jpg.bin"}

Progress = Callable[[int, int, str], None]   # (videos done, videos in all, what)


@dataclass(frozen=True)
class PrepareReport:
    """What a prepare did: the store, and how many videos it decoded, reused or had to skip."""

    store: Store
    decoded: int                               # decoded in this run
    resumed: int                               # parts left by an interrupted run
    failed: tuple[tuple[str, str], ...]        # (key, reason)
    missing: tuple[tuple[str, str], ...]       # named by the annotations, absent on disk
    seconds: float
    already_prepared: bool = False
    # Stored videos with fewer frames than the protocol's clip, (key, frames): every clip of one
    # repeats frames (vdcbench.data.sampling.clip_indices).
    short: tuple[tuple[str, int], ...] = ()
    leakage: LeakageReport | None = None      # the check of its train / val split


def listing_sha256(listing: SourceListing, dataset: str, resize: tuple[int, int]) -> str:
    """What a store is prepared from: the listed videos and how they were cut, not where the
    root lies, so moving the data set does not make a complete store stale."""
    return canonical_sha256({
        "dataset": dataset, "classes": list(listing.classes), "resize": list(resize),
        "entries": [[e.key, e.label, e.split, e.kind, e.start_seconds, e.end_seconds]
                    for e in sorted(listing.entries, key=lambda e: e.key)],
    })


def _part_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _write_part(parts: Path, entry: VideoEntry, video: DecodedVideo, frame_format: str) -> dict:
    name = _part_name(entry.key)
    meta = {"key": entry.key, "length": int(len(video.frames)), "fps": video.fps,
            "shape": list(video.frames.shape)}
    path = parts / f"{name}{PART_SUFFIX[frame_format]}"
    if frame_format == JPEG:
        encoded = encode_frames(video.frames)
        meta.update(sizes=encoded.sizes.tolist(), sha256=jpeg_sha256(encoded.sizes, encoded.data))
        write_atomic(path, lambda fh: fh.write(encoded.data))
    else:
        meta["sha256"] = frames_sha256(video.frames)
        write_atomic(path, lambda fh: np.save(fh, video.frames, allow_pickle=False))
    # The metadata goes last: a part counts as done only once both files exist.
    write_text_atomic(parts / f"{name}.json", dumps_strict(meta))
    return meta


def _read_part_meta(parts: Path, key: str, frame_format: str) -> dict | None:
    name = _part_name(key)
    try:
        # A part whose metadata is not strict JSON (NaN, 1e400) is decoded again, not trusted.
        meta = parse_json_strict((parts / f"{name}.json").read_bytes())
    except (OSError, ValueError):
        return None
    if (not isinstance(meta, dict) or meta.get("key") != key
            or not (parts / f"{name}{PART_SUFFIX[frame_format]}").is_file()):
        return None
    return meta


def _read_part(parts: Path, meta: dict, frame_format: str) -> np.ndarray | EncodedFrames:
    """What the part of ``meta`` stores, as ``write_store`` takes it for ``frame_format``."""
    path = parts / f"{_part_name(meta['key'])}{PART_SUFFIX[frame_format]}"
    if frame_format == JPEG:
        return EncodedFrames(sizes=np.asarray(meta["sizes"], dtype=np.int64),
                             data=path.read_bytes())
    return np.load(path, allow_pickle=False)


def decode_group(entries: Sequence[VideoEntry], resize: tuple[int, int], parts: Path,
                 frame_format: str = RAW) -> list[tuple[str, dict | None, str | None]]:
    """Decode the entries of one source file and write their parts: (key, meta, failure)."""
    try:
        results = decode_entries(entries, resize)
    except (MemoryError, ValueError, RuntimeError) as exc:   # one bad file never stops a prepare
        results = [DecodeError(f"{type(exc).__name__}: {exc}")] * len(entries)
    out = []
    for entry, result in zip(entries, results):
        if isinstance(result, DecodeError):
            out.append((entry.key, None, str(result)))
        else:
            out.append((entry.key, _write_part(parts, entry, result, frame_format), None))
    return out


def _init_worker() -> None:
    # One torch thread per worker: the workers are the parallelism (FFmpeg still threads).
    import torch
    torch.set_num_threads(1)


def _groups(entries: Sequence[VideoEntry]) -> list[list[VideoEntry]]:
    """Entries grouped by the file they come from, in key order of each group's first entry."""
    groups: dict[Path, list[VideoEntry]] = {}
    for entry in sorted(entries, key=lambda e: e.key):
        groups.setdefault(entry.path, []).append(entry)
    return list(groups.values())


def _open_parts(directory: Path, resize: tuple[int, int], frame_format: str) -> Path:
    """The parts folder, emptied when it was left by a prepare at another resize or format."""
    parts = directory / PARTS_DIR
    plan = {"part_version": PART_VERSION, "resize": list(resize)}
    # Raw parts keep the plan of releases before formats, so their interrupted prepares resume.
    if frame_format != RAW:
        plan["frame_format"] = frame_format
    plan_path = parts / PLAN_FILE
    if parts.is_dir():
        try:
            same = parse_json_strict(plan_path.read_bytes()) == plan
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    for stale in parts.glob(".*.tmp"):   # half-written files of an interrupted run
        stale.unlink(missing_ok=True)
    if not plan_path.is_file():
        write_text_atomic(plan_path, dumps_strict(plan))
    return parts


def check_output_dir(directory: Path) -> None:
    """Refuse (one line) an output directory that cannot be created, read or written."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise VdcError(f"output {directory} exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VdcError(f"cannot create the output directory {directory}: "
                       f"{exc.strerror or exc}") from None
    if not os.access(directory, os.R_OK | os.W_OK | os.X_OK):
        raise VdcError(f"the output directory {directory} is not readable and writable")
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".write-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise VdcError(f"cannot write to the output directory {directory}: "
                       f"{exc.strerror or exc}") from None


def existing_store(directory: Path, fingerprint: str, frame_format: str, overwrite: bool
                   ) -> Store | None:
    """The complete store at ``directory`` when it is this prepare's already (same listing, same
    format); None when there is none or ``overwrite`` replaces it. Any other store is refused."""
    if overwrite or not (Path(directory) / MANIFEST_FILE).is_file():
        return None
    existing = open_store(directory)
    if existing.manifest.listing_sha256 != fingerprint:
        raise VdcError(f"{directory} holds a store prepared from other videos or settings; "
                       "pass --overwrite to replace it")
    if existing.frame_format != frame_format:
        raise VdcError(f"{directory} holds a {existing.frame_format} store of these videos; "
                       f"pass --format {existing.frame_format} to use it or --overwrite to "
                       f"replace it with a {frame_format} one")
    return existing


def prepare_listing(listing: SourceListing, *, directory: Path, name: str, dataset: str,
                    resize: tuple[int, int], workers: int = 1, overwrite: bool = False,
                    frame_format: str = RAW, progress: Progress | None = None) -> PrepareReport:
    """Decode ``listing`` into the store at ``directory`` (resuming from parts left there).

    ``dataset`` is the protocol data set the store is of (``folder`` for a collection),
    ``resize`` its (H, W) and ``frame_format`` how it keeps frames (``raw`` or ``jpeg``). A
    complete store of the same listing and format is left as it is.
    """
    started = time.perf_counter()
    check_frame_format(frame_format)
    if not listing.entries:
        raise VdcError(f"no videos found under {listing.root}")
    if workers < 1:
        raise VdcError(f"--workers must be at least 1, not {workers}")
    directory = Path(directory)
    check_output_dir(directory)
    # A second prepare of this store waits here, then finds it complete: run unlocked, it would
    # delete the first one's temporary parts and store files as stale.
    with exclusive(directory, "prepare", what=f"preparing the store {name}"):
        return _prepare_locked(listing, directory, name, dataset, resize, workers, overwrite,
                               frame_format, progress, started)


def _prepare_locked(listing: SourceListing, directory: Path, name: str, dataset: str,
                    resize: tuple[int, int], workers: int, overwrite: bool, frame_format: str,
                    progress: Progress | None, started: float) -> PrepareReport:
    fingerprint = listing_sha256(listing, dataset, resize)
    existing = existing_store(directory, fingerprint, frame_format, overwrite)
    if existing is not None:
        return PrepareReport(store=existing, decoded=0, resumed=0,
                             failed=existing.manifest.failed or (),
                             missing=existing.manifest.missing or (),
                             seconds=time.perf_counter() - started, already_prepared=True)
    parts = _open_parts(directory, resize, frame_format)

    entries = sorted(listing.entries, key=lambda e: e.key)
    if len({e.key for e in entries}) != len(entries):
        raise VdcError(f"the {dataset} listing of {listing.root} names a video key twice")
    done, failed, resumed = _decode_all(entries, parts, resize, frame_format, workers, progress)
    decoded = len(done) - resumed
    ok = [e for e in entries if e.key in done]
    if not ok:
        raise VdcError(f"none of the {len(entries)} videos under {listing.root} could be decoded "
                       f"(first failure: {next(iter(failed.items()))[0]}: "
                       f"{next(iter(failed.values()))})")
    sides, description = _sides_of_decoded(listing, ok)
    videos = [StoredVideo(key=e.key, label=e.label, split=side,
                          length=int(done[e.key]["length"]), fps=done[e.key]["fps"])
              for e, side in zip(ok, sides)]

    def read_frames(i: int) -> np.ndarray | EncodedFrames:
        return _read_part(parts, done[videos[i].key], frame_format)

    failures = tuple(sorted(failed.items()))
    store = write_store(directory, name=name, dataset=dataset, classes=listing.classes,
                        resize=resize, videos=videos, read_frames=read_frames,
                        frame_format=frame_format,
                        manifest_extra=_prepare_records(listing, fingerprint, failures,
                                                        description))
    shutil.rmtree(parts, ignore_errors=True)
    return PrepareReport(store=store, decoded=decoded, resumed=resumed, failed=failures,
                         missing=tuple(tuple(m) for m in listing.missing),
                         seconds=time.perf_counter() - started)


def _decode_all(entries: list[VideoEntry], parts: Path, resize: tuple[int, int],
                frame_format: str, workers: int, progress: Progress | None
                ) -> tuple[dict[str, dict], dict[str, str], int]:
    """Decode every entry not already in ``parts``: (part metadata by key, failure reason by key,
    how many were resumed from earlier parts)."""
    done: dict[str, dict] = {}
    for entry in entries:
        meta = _read_part_meta(parts, entry.key, frame_format)
        if meta is not None:
            done[entry.key] = meta
    resumed = len(done)
    failed: dict[str, str] = {}
    pending = _groups([e for e in entries if e.key not in done])
    total = len(entries)
    if progress is not None:
        progress(len(done), total, "resumed" if resumed else "")

    def collect(results: list[tuple[str, dict | None, str | None]]) -> None:
        for key, meta, reason in results:
            if meta is not None:
                done[key] = meta
            else:
                failed[key] = reason or "unknown failure"
        if progress is not None:
            progress(len(done) + len(failed), total, "")

    if workers == 1 or len(pending) <= 1:
        for group in pending:
            collect(decode_group(group, resize, parts, frame_format))
    else:
        _run_pool(pending, resize, parts, frame_format, workers, collect)
    return done, failed, resumed


def _sides_of_decoded(listing: SourceListing, ok: Sequence[VideoEntry]
                      ) -> tuple[tuple[str, ...], str]:
    """The split side of every decoded entry and the split's description.

    A seeded split is planned again over the decoded entries alone, so a file that fails to
    decode neither moves good files to the other side nor leaves its side short; a fixed split
    (official lists, a split file) keeps each entry's listed side."""
    seeded = listing.seeded_split
    if seeded is None:
        return tuple(e.split for e in ok), listing.split_description
    try:
        sides, how = seeded.plan([e.label for e in ok], [e.group or e.key for e in ok],
                                 listing.classes)
    except VdcError as exc:
        raise VdcError(f"over the {len(ok)} videos that decoded, {exc} (the decoded videos are "
                       "kept: a rerun with other split options resumes from them)") from None
    failed = len(listing.entries) - len(ok)
    return sides, how + (f" (planned over the {len(ok)} videos that decoded; {failed} did not)"
                         if failed else "")


def _prepare_records(listing: SourceListing, fingerprint: str,
                     failures: tuple[tuple[str, str], ...], description: str) -> dict:
    """What the store manifest records of the prepare: listing hash, split, source, skips."""
    return {
        "listing_sha256": fingerprint,
        "split": {"description": description,
                  "listed": {s: len(listing.split(s)) for s in ("train", "val")}},
        "source": {"layout": listing.dataset, "root": str(listing.root),
                   "options": {k: (str(v) if isinstance(v, Path) else v)
                               for k, v in listing.options.items()}},
        "missing": tuple(tuple(m) for m in listing.missing),
        "failed": failures,
    }


def _run_pool(groups: list[list[VideoEntry]], resize: tuple[int, int], parts: Path,
              frame_format: str, workers: int, collect: Callable[[list], None]) -> None:
    """Decode ``groups`` in ``workers`` spawned processes, a few tasks in flight per worker."""
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker)
    queue = iter(groups)
    running: set[Future] = set()
    try:
        for group in queue:
            running.add(pool.submit(decode_group, group, resize, parts, frame_format))
            if len(running) >= 4 * workers:
                break
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                collect(future.result())
                group = next(queue, None)
                if group is not None:
                    running.add(pool.submit(decode_group, group, resize, parts, frame_format))
    except BrokenProcessPool:
        pool.shutdown(wait=False, cancel_futures=True)
        raise VdcError("a decoding worker died (a crash inside FFmpeg?); the videos decoded so "
                       "far are kept: rerun to resume, with --workers 1 to see which video "
                       "it is") from None
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


# ------------------------------------------------------------------- a data set by layout
@dataclass(frozen=True)
class StoreTarget:
    """Where the store of a prepare goes: its name, its directory, the data set it holds."""

    name: str
    directory: Path
    dataset: str
    resize: tuple[int, int]


def store_target(protocol, layout_dataset: str, *, root: Path | None, name: str | None,
                 out: Path | None) -> StoreTarget:
    """Name and directory of the store of ``layout_dataset`` (``folder`` for a collection).

    A collection's store is named after its root folder unless ``name`` says otherwise, and may
    not take a protocol data set's name; an official data set's store is named after it.
    """
    from vdcbench.data.store import COLLECTION_DATASET, default_store_dir, valid_store_name

    ds = protocol.dataset(layout_dataset)
    if layout_dataset == COLLECTION_DATASET:
        if name is None:
            if root is None:
                raise VdcError("name the collection's store with --name (or give --root)")
            name = Path(root).resolve().name
        if name in protocol.datasets:
            raise VdcError(f"{name!r} is a protocol data set; name the collection's store "
                           "otherwise with --name")
    else:
        if name is not None and name != layout_dataset:
            raise VdcError(f"--name is for collections; the store of {layout_dataset!r} is "
                           f"named {layout_dataset!r}")
        name = layout_dataset
    if not valid_store_name(name):
        raise VdcError(f"store name {name!r} must be letters, digits, '.', '_' or '-' (pass "
                       "--name)")
    directory = Path(out) if out is not None else default_store_dir(name)
    return StoreTarget(name=name, directory=directory, dataset=layout_dataset,
                       resize=tuple(ds.resize))


@dataclass(frozen=True)
class PreparePlan:
    """A prepare that has been checked: what is listed, where its store goes and in what format."""

    listing: SourceListing
    target: StoreTarget
    linked: bool            # written outside the cache, so the cache gets a link to it
    frame_format: str = RAW
    overwrite: bool = False
    clip_frames: int = 0    # the protocol's frames a clip: shorter videos are reported


def plan_prepare(protocol, layout: str, root: Path, *, name: str | None = None,
                 out: Path | None = None, options: dict | None = None, frame_format: str = RAW,
                 overwrite: bool = False) -> PreparePlan:
    """List ``root`` with source ``layout`` and check the store's name, directory and format, so
    every user error (a missing root, no videos, an unwritable output, a store there already of
    other videos or in another format) comes before any decoding."""
    from vdcbench.data.sources import list_source

    check_frame_format(frame_format)
    listing = list_source(layout, root, protocol=protocol, **(options or {}))
    if not listing.entries:
        raise VdcError(f"no videos found under {root} in the {layout} layout")
    target = store_target(protocol, listing.dataset, root=root, name=name, out=out)
    check_output_dir(target.directory)
    existing_store(target.directory, listing_sha256(listing, target.dataset, target.resize),
                   frame_format, overwrite)
    return PreparePlan(listing=listing, target=target, linked=out is not None,
                       frame_format=frame_format, overwrite=overwrite,
                       clip_frames=protocol.sampling.frames)


def short_videos(store: Store, clip_frames: int) -> tuple[tuple[str, int], ...]:
    """(key, frames) of the stored videos shorter than a ``clip_frames``-frame clip."""
    lengths = store.index.lengths
    return tuple((store.index.keys[i], int(lengths[i]))
                 for i in np.nonzero(lengths < clip_frames)[0])


def run_prepare(plan: PreparePlan, *, workers: int = 1, progress: Progress | None = None,
                check_progress: Progress | None = None) -> PrepareReport:
    """Decode a planned prepare into its store (the ``prepare`` command), then check its split
    for near-duplicate footage across train and validation (``vdcbench.data.leakage``; the
    result a store already holds is reused)."""
    from vdcbench.data.store import link_store

    t = plan.target
    report = prepare_listing(plan.listing, directory=t.directory, name=t.name, dataset=t.dataset,
                             resize=t.resize, workers=workers, overwrite=plan.overwrite,
                             frame_format=plan.frame_format, progress=progress)
    if plan.linked:
        link_store(t.name, t.directory)
    leakage = stored_leakage(report.store) or check_leakage(report.store,
                                                            progress=check_progress)
    return dataclasses.replace(report, leakage=leakage,
                               short=short_videos(report.store, plan.clip_frames))
