"""Any ``<root>/<class>/<video>`` collection (avi, mp4, mkv, webm, mov, mpg, mpeg).

Classes are the sorted names of the root's sub-folders that hold videos; only videos directly in
a class folder count. The split is either

* a split file (``split_file=PATH``, lines ``<class>/<file> train|val``): videos it does not name
  are left out, and a named video missing on disk is reported in ``missing``; or
* seeded (``seed``, default 0; ``val_fraction``, default 0.3): see
  :mod:`vdcbench.data.sources.group_split`. ``group=REGEX`` is searched in each file name and its
  match names the group (``person\\d+`` for KTH's ``person09_boxing_d1``, ``P\\d+(?=T)`` for
  ``PS7A1P2T3``); every file must match. Without it each recording is its own group.

``clip_seconds=S`` cuts each recording into consecutive S-second clips (``[kS, (k+1)S)``, seconds
from the recording's first frame; a trailing remainder shorter than S is dropped, and a recording
shorter than S gives one clip of its whole length), keyed ``<class>/<file>#<k>``. Durations are
probed with PyAV from the container header, without decoding. A file whose duration cannot be
probed (corrupt, empty) stays one whole-recording entry, so that ``prepare`` reports why it fails.
Clips of one recording always share a group, so they stay on one side.

Either way a split that leaves a class without a training or a validation video is refused.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from pathlib import Path

from vdcbench.data.listing import SourceListing, VideoEntry
from vdcbench.data.sources.group_split import SeededSplit
from vdcbench.data.sources.layout import (build_listing, class_folders, expect_protocol,
                                          read_lines, require_root, video_files)
from vdcbench.core.errors import VdcError
from vdcbench.protocol import Protocol

DEFAULT_SEED = 0
DEFAULT_VAL_FRACTION = 0.3
# A duration a hair under k*S (container rounding) still yields k clips.
_EPS = 1e-6


def probe_seconds(path: Path) -> float | None:
    """Duration of the first video stream from the container header, or None if unknown."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            if stream.duration and stream.time_base:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration:
                seconds = container.duration / av.time_base
            elif stream.frames and stream.average_rate:
                seconds = stream.frames / float(stream.average_rate)
            else:
                return None
    except (av.FFmpegError, OSError, ValueError):
        return None
    return seconds if seconds > 0 else None


def _number(value, name: str, cast):
    try:
        return cast(value)
    except (TypeError, ValueError):
        raise VdcError(f"folder option {name} must be a number, not {value!r}") from None


def _recordings(root: Path) -> tuple[list[str], list[tuple[str, str]]]:
    classes = class_folders(root)
    if not classes:
        raise VdcError(f"no videos found for folder under {root} (expected "
                       "<root>/<class>/<video> with avi, mp4, mkv, webm, mov, mpg or mpeg files)")
    return classes, [(cls, name) for cls in classes for name in video_files(root / cls)]


def _group_of(pattern: re.Pattern | None, cls: str, name: str) -> str:
    if pattern is None:
        return f"{cls}/{name}"
    match = pattern.search(name)
    if match is None or not match.group(0):
        raise VdcError(f"group pattern {pattern.pattern!r} does not match file name {name!r} "
                       f"(in {cls}/); every file must name its group")
    return match.group(0)


def _read_split_file(path: Path, root: Path, classes: list[str],
                     on_disk: set[tuple[str, str]]) -> tuple[dict[tuple[str, str], str], list]:
    sides: dict[tuple[str, str], str] = {}
    missing = []
    for n, line in read_lines(path):
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or parts[1] not in ("train", "val") or "/" not in parts[0]:
            raise VdcError(f"{path}:{n}: expected '<class>/<file> train|val', got {line!r}")
        cls, name = parts[0].replace("\\", "/").split("/", 1)
        if cls not in classes:
            raise VdcError(f"{path}:{n} names class {cls!r}, which has no video folder under "
                           f"{root}")
        if (cls, name) not in on_disk:
            missing.append((f"{cls}/{name}", f"named in {path.name} but not on disk"))
            continue
        if sides.setdefault((cls, name), parts[1]) != parts[1]:
            raise VdcError(f"{path}:{n}: {cls}/{name} is on both sides of the split")
    return sides, missing


def _cuts(path: Path, clip_seconds: float) -> list[tuple[float, float]] | None:
    seconds = probe_seconds(path)
    if seconds is None:
        return None
    count = math.floor(seconds / clip_seconds + _EPS)
    if count == 0:
        return [(0.0, seconds)]
    return [(k * clip_seconds, (k + 1) * clip_seconds) for k in range(count)]


Unit = tuple[str, str, str, "float | None", "float | None"]   # key, class, file name, cut


def _checked_options(split_file: str | Path | None, seed: int | None,
                     val_fraction: float | None, group: str | None,
                     clip_seconds: float | None) -> tuple[re.Pattern | None, float | None]:
    """The compiled group pattern and the checked clip length; refuses a contradictory split."""
    if split_file is not None and (seed is not None or val_fraction is not None
                                   or group is not None):
        raise VdcError("a split file and a seeded split (seed, val_fraction, group) exclude "
                       "each other; give one")
    pattern = None
    if group is not None:
        try:
            pattern = re.compile(group)
        except re.error as exc:
            raise VdcError(f"group pattern {group!r} is not a regular expression: {exc}") from None
    if clip_seconds is not None:
        clip_seconds = _number(clip_seconds, "clip_seconds", float)
        if not clip_seconds > 0 or math.isinf(clip_seconds):
            raise VdcError(f"clip_seconds must be a positive number of seconds, not {clip_seconds}")
    return pattern, clip_seconds


def _units(root: Path, recordings: list[tuple[str, str]],
           clip_seconds: float | None) -> tuple[list[Unit], int]:
    """Every recording whole, or cut into clips; and how many could not be probed for cutting."""
    units: list[Unit] = []
    unprobed = 0
    for cls, name in recordings:
        cuts = None if clip_seconds is None else _cuts(root / cls / name, clip_seconds)
        if cuts is None:
            if clip_seconds is not None:
                unprobed += 1
            units.append((f"{cls}/{name}", cls, name, None, None))
        else:
            units += [(f"{cls}/{name}#{k}", cls, name, start, end)
                      for k, (start, end) in enumerate(cuts)]
    return units, unprobed


def _seeded_split(seed: int | None, val_fraction: float | None, group: str | None,
                  options: dict) -> SeededSplit:
    """The seeded split's settings (defaults filled in); records them in ``options``."""
    seed = DEFAULT_SEED if seed is None else _number(seed, "seed", int)
    val_fraction = (DEFAULT_VAL_FRACTION if val_fraction is None
                    else _number(val_fraction, "val_fraction", float))
    options.update(seed=seed, val_fraction=val_fraction)
    grouping = (f"groups are the match of regex {group!r} in file names" if group is not None
                else "each recording is its own group")
    return SeededSplit(seed=seed, val_fraction=val_fraction, grouping=grouping)


def list_folder(root: Path, *, protocol: Protocol, split_file: str | Path | None = None,
                seed: int | None = None, val_fraction: float | None = None,
                group: str | None = None, clip_seconds: float | None = None) -> SourceListing:
    ds = protocol.dataset("folder")
    expect_protocol(ds, class_order="sorted class directory names")
    root = require_root(root, "folder")
    pattern, clip_seconds = _checked_options(split_file, seed, val_fraction, group, clip_seconds)
    classes, recordings = _recordings(root)
    label_of = {c: i for i, c in enumerate(classes)}

    options: dict = {}
    missing: list[tuple[str, str]] = []
    if split_file is not None:
        split_path = Path(split_file).expanduser()
        if not split_path.is_file():
            raise VdcError(f"split file {split_path} not found")
        fixed, missing = _read_split_file(split_path, root, classes, set(recordings))
        recordings = [r for r in recordings if r in fixed]
        options["split_file"] = str(split_file)
    groups = {r: _group_of(pattern, *r) for r in recordings}

    units, unprobed = _units(root, recordings, clip_seconds)
    labels = [label_of[u[1]] for u in units]
    unit_groups = [groups[(u[1], u[2])] for u in units]

    seeded = None
    cut = ""
    if clip_seconds is not None:
        cut = (f"; recordings cut into consecutive {clip_seconds:g} s clips (remainder dropped, "
               f"{unprobed} recordings of unknown duration kept whole)")
    if split_file is not None:
        sides = [fixed[(u[1], u[2])] for u in units]
        per_side = Counter((label, side) for label, side in zip(labels, sides))
        for c, cls in enumerate(classes):
            for side, word in (("train", "training"), ("val", "validation")):
                if per_side[(c, side)] == 0:
                    raise VdcError(f"split file {split_file} leaves class {cls!r} without a "
                                   f"{word} video")
        n_val = sum(s == "val" for s in sides)
        how = (f"split file {Path(split_file).name} ({len(recordings)} recordings named, "
               f"{len(missing)} named but absent){cut}; {len(units) - n_val} train / {n_val} "
               "val units")
    else:
        seeded = dataclasses.replace(_seeded_split(seed, val_fraction, group, options), note=cut)
        sides, how = seeded.plan(labels, unit_groups, classes)
    if group is not None:
        options["group"] = group
    if clip_seconds is not None:
        options["clip_seconds"] = clip_seconds
    entries = [VideoEntry(key=key, path=root / cls / name, label=label, split=side,
                          start_seconds=start, end_seconds=end, group=g)
               for (key, cls, name, start, end), label, side, g
               in zip(units, labels, sides, unit_groups)]
    return build_listing("folder", root, classes, entries, missing=missing,
                         split_description=how, options=options, seeded_split=seeded)

