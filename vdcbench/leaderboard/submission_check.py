"""What CI does with a pull request's submission: :func:`check_submission`.

Given the paths a pull request changes (``git diff`` against its base, listed by ``.ci/run``),
every new or changed entry (an entry file, its archive or its records changed) is:

1. validated as ``vdcbench leaderboard validate`` does, each refusal one line: an unknown
   protocol or a protocol hash that is not its version's, a data-set store hash CI does not
   know (a generated data set has one; a prepared one must be listed in
   ``submissions/stores.json``), an archive whose sha256 is not the one its results were
   measured on, a shortened schedule or a study variant presented as official, method settings
   naming outside data or weights the entry does not declare, a status that no longer describes
   the entry;
2. held against its result records under ``submissions/records``: every seed of the entry has
   its record there and the two agree field by field (a record edited after ``submit`` fails
   naming the field);
3. on a data set CI can hold (one the protocol generates: ``synthetic``), re-scored with
   :func:`~vdcbench.leaderboard.verify.verify`: the seeds its status claims to have checked,
   and beyond them a sample of seeds drawn with a seed CI names (by default the entry's archive
   hash) until the budget is spent, estimated from the recorded wall times; at least one seed
   per entry. The sample is written into the report.

Files under ``leaderboard/`` are generated: the pull request's leaderboard must be what its
submissions build, and a changed file that is not is refused as edited by hand.

With nothing changed (a plain clone of main), a recorded sample (``.ci/verify-sample``) is
re-scored instead, so CI keeps checking that committed results still reproduce.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from vdcbench.core.atomic_file import write_json_atomic
from vdcbench.core.errors import VdcError
from vdcbench.core.json_values import load_json_strict
from vdcbench.leaderboard.entry import ENTRY_FILE, RESERVED_DIRS, Entry, SeedResult
from vdcbench.leaderboard.verification import Status
from vdcbench.leaderboard.verify import (Claim, SeedCheck, VerifyOptions, VerifyReport,
                                         claim_from_entry, verify)

DEFAULT_BUDGET = 1800.0         # seconds of re-scoring a pull request may cost CI
STORES_FILE = "stores.json"     # data-set store hashes CI knows, per prepared data set
SAMPLE_SEED_ENV = "VDCBENCH_CI_SAMPLE_SEED"
# Fields of a seed that its record must repeat exactly (the entry is made from the record).
_SEED_FIELDS = ("top1", "top5", "reference_best_top1", "iterations", "batch_size",
                "wall_seconds", "device", "weights_sha256", "final_loss", "torch_threads")


@dataclass(frozen=True)
class Outcome:
    reports: tuple[VerifyReport, ...]
    entries: tuple[str, ...]            # ids of the new or changed entries checked

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)


Note = Callable[[str], None]


def read_changed(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The changed paths, one a line (``git diff --name-only``), repository-relative."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise VdcError(f"cannot read {path}: {exc.strerror or exc}") from None
    return tuple(dict.fromkeys(line.strip() for line in lines if line.strip()))


def check_submission(root: str | os.PathLike[str], changed: Sequence[str], *,
                     sample: str | os.PathLike[str] | None = None,
                     budget: float = DEFAULT_BUDGET, options: VerifyOptions = VerifyOptions(),
                     report: str | os.PathLike[str] | None = None,
                     leaderboard: str | os.PathLike[str] = "leaderboard",
                     teachers_dir: str | os.PathLike[str] | None = None,
                     on_note: Note | None = None,
                     on_claim: Callable[[Claim, list[tuple[str, int]]], None] | None = None,
                     on_check: Callable[[SeedCheck], None] | None = None,
                     progress=None) -> Outcome:
    """Check what a pull request changes (see the module). ``changed`` holds paths relative to
    the repository root, which is ``root``'s parent (``root`` is its ``submissions/``)."""
    root = Path(root)
    note = on_note or (lambda text: None)
    repo = root.resolve().parent
    prefix = root.resolve().name
    in_root = [_under(p, prefix) for p in changed]
    in_root = [p for p in in_root if p is not None]
    board = [b for b in (_under(p, Path(leaderboard).name) for p in changed) if b is not None]

    entries = changed_entries(root, in_root)
    for path in entries:
        note(f"changed entry: {path.relative_to(root).as_posix()}")
    checked = [_validated(root, path) for path in entries]
    if checked:
        records = _records_by_archive(root)
        for entry, path in checked:
            _check_records(entry, path, records.get(entry.archive.sha256, []), root)
    if board or entries:
        _check_leaderboard(root, repo / Path(leaderboard).name, board, teachers_dir, note)

    rescored: list[tuple[Claim, list[tuple[str, SeedResult]]]] = []
    if checked:
        plans = _sample_plans([e for e, _ in checked], budget, note)
        with tempfile.TemporaryDirectory(prefix="vdcbench-ci-") as scratch:
            for entry, path in checked:
                if entry.id not in plans:
                    continue
                claim = claim_from_entry(entry, root, _fetched(entry, root, Path(scratch)))
                rescored.append((claim, plans[entry.id]))
            reports = _rescore(rescored, options, on_claim, on_check, progress)
    elif sample is not None:
        note(f"no entry changed: re-scoring the recorded sample {sample}")
        rescored = _same_cpu_only(_recorded_sample(root, Path(sample)), options.device, note)
        reports = _rescore(rescored, options, on_claim, on_check, progress)
    else:
        reports = []
        note("no entry changed and no recorded sample given: nothing to re-score")
    outcome = Outcome(reports=tuple(reports), entries=tuple(e.id for e, _ in checked))
    if report is not None:
        write_json_atomic(Path(report), _report(outcome, budget, bool(checked)))
    return outcome


# ------------------------------------------------------------------------------ changes
def _under(path: str, folder: str) -> str | None:
    parts = PurePosixPath(path).parts
    return PurePosixPath(*parts[1:]).as_posix() if len(parts) > 1 and parts[0] == folder else None


def changed_entries(root: Path, changed: Iterable[str]) -> list[Path]:
    """Entry files (existing now) that ``changed`` (paths relative to ``root``) touches: the
    entry itself, the archive it names, or a record of its archive."""
    from vdcbench.leaderboard.validate import entry_paths

    changed = list(changed)
    touched_entries = {PurePosixPath(p) for p in changed
                       if PurePosixPath(p).name == ENTRY_FILE
                       and PurePosixPath(p).parts[0] not in RESERVED_DIRS}
    record_archives = {PurePosixPath(p).parts[3].rsplit("-", 1)[-1] for p in changed
                       if PurePosixPath(p).parts[0] == "records"
                       and len(PurePosixPath(p).parts) > 4}
    found = []
    for path in entry_paths(root):
        rel = PurePosixPath(path.relative_to(root).as_posix())
        hit = rel in touched_entries
        if not hit:
            try:
                data = load_json_strict(path.read_bytes(), str(path))
                archive = data["archive"]
                hit = (archive.get("path") in changed
                       or archive.get("sha256", "")[:12] in record_archives)
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                hit = False      # unreadable: only checked when the PR touches it
        if hit:
            found.append(path)
    return found


def _validated(root: Path, path: Path) -> tuple[Entry, Path]:
    from vdcbench.leaderboard.validate import check_entry

    entry = Entry.from_disk(path)
    check_entry(entry, path, root)
    check_known_store(entry, root, str(path))
    if entry.archive.path is None and entry.archive.url is None:
        raise VdcError(f"{path}: its archive is neither committed nor given a URL; CI cannot "
                       "check the results against it")
    return entry, path


def known_stores(root: Path) -> dict[str, tuple[str, ...]]:
    """Store hashes per prepared data set that CI knows (``<root>/stores.json``)."""
    path = Path(root) / STORES_FILE
    if not path.is_file():
        return {}
    data = load_json_strict(path.read_bytes(), str(path))
    try:
        return {name: tuple(item["sha256"] for item in stores)
                for name, stores in data["stores"].items()}
    except (KeyError, TypeError, AttributeError):
        raise VdcError(f"{path}: expected {{\"stores\": {{dataset: [{{\"sha256\": ...}}]}}}}") \
            from None


def check_known_store(entry: Entry, root: Path, where: str) -> None:
    """A generated data set's store hash is checked by validate; a prepared one's must be a
    store CI knows, listed with how it was prepared."""
    from vdcbench.protocol import load_protocol

    if load_protocol(entry.protocol_version).dataset(entry.dataset).generator is not None:
        return
    known = known_stores(root).get(entry.dataset, ())
    if entry.dataset_sha256 not in known:
        raise VdcError(f"{where}: data-set store hash {entry.dataset_sha256[:12]} of "
                       f"{entry.dataset} is not a store CI knows (submissions/{STORES_FILE} "
                       f"lists {', '.join(s[:12] for s in known) or 'none'}); add it there "
                       "with how it was prepared (vdcbench data info) for a maintainer to "
                       "review")


def _check_leaderboard(root: Path, output: Path, changed: Sequence[str], teachers_dir,
                       note: Note) -> None:
    """leaderboard/ must be what the submissions build: a changed file that is not was edited
    by hand; an unchanged one that is not was not rebuilt."""
    from vdcbench.leaderboard.build import _extra_files, render

    files = render(root, teachers_dir)
    edited, stale = [], []
    for rel, data in files.items():
        path = output / rel
        current = path.read_bytes() if path.is_file() else None
        if current != data:
            (edited if rel in changed else stale).append(rel)
    extra = [p.relative_to(output).as_posix() for p in _extra_files(output, files)]
    edited += [rel for rel in extra if rel in changed]
    stale += [rel for rel in extra if rel not in changed]
    if edited:
        raise VdcError(f"leaderboard/{edited[0]} is not what `vdcbench leaderboard build` makes "
                       f"of the submissions ({len(edited)} file(s) edited by hand); leaderboard/ "
                       "is generated: rebuild it, never edit it")
    if stale:
        raise VdcError(f"leaderboard/ is stale ({len(stale)} file(s), e.g. {stale[0]}): run "
                       "`vdcbench leaderboard build` and commit the result")
    note("leaderboard/ is what the submissions build")


# ------------------------------------------------------------------------------ records
def _records_by_archive(root: Path) -> dict[str, list]:
    from vdcbench.evaluation.records import load_records

    folder = root / "records"
    by_archive: dict[str, list] = {}
    for record in (load_records(folder) if folder.is_dir() else []):
        by_archive.setdefault(record.key.archive_sha256, []).append(record)
    return by_archive


def _check_records(entry: Entry, path: Path, records: Sequence, root: Path) -> None:
    """Every seed of the entry has its record, and the record says what the entry says."""
    from vdcbench.leaderboard.measurement import Measurement

    mine = {(r.key.net, r.key.seed): r for r in records
            if Measurement.of(r.key) == entry.measurement}
    for results in entry.results:
        for seed in results.seeds:
            record = mine.get((results.net, seed.seed))
            if record is None:
                raise VdcError(f"{path}: no result record for {results.net} seed {seed.seed} "
                               f"under {root / 'records'}; commit the records the entry was "
                               "submitted from")
            from_record = SeedResult.from_record(record)
            for name in _SEED_FIELDS:
                ours, theirs = getattr(seed, name), getattr(from_record, name)
                if ours != theirs:
                    raise VdcError(
                        f"{path}: {results.net} seed {seed.seed}: {name} is {ours!r} in the "
                        f"entry but {theirs!r} in its record {record.relative_path()}; the "
                        "records do not match the entry (resubmit from unedited records)")


# ------------------------------------------------------------------------------ sample
def _sample_plans(entries: Sequence[Entry], budget: float,
                  note: Note) -> dict[str, list[tuple[str, SeedResult]]]:
    """Per entry on a data set CI can hold, the (net, seed) pairs to re-score: the seeds its
    status checked, then a keyed draw of the rest, while the estimated cost fits ``budget``;
    at least one per entry."""
    from vdcbench.protocol import load_protocol

    salt = os.environ.get(SAMPLE_SEED_ENV, "")
    queues = {}
    for entry in entries:
        if load_protocol(entry.protocol_version).dataset(entry.dataset).generator is None:
            note(f"{entry.id}: {entry.dataset} is not a data set CI can hold; validated, not "
                 f"re-scored (it stays {_status_name(entry)})")
            continue
        claimed = set()
        if entry.verification is not None and entry.verification.status is not Status.SELF_REPORTED:
            claimed = {(c.net, c.seed) for c in entry.verification.checked}
        pairs = [(r.net, s) for r in entry.results for s in r.seeds]
        key = salt or entry.archive.sha256

        def order(pair, key=key, claimed=claimed):
            net, seed = pair
            draw = hashlib.sha256(f"{key}:{entry.id}:{net}:{seed.seed}".encode()).hexdigest()
            return ((net, seed.seed) not in claimed, draw)
        queues[entry.id] = sorted(pairs, key=order)
    plans: dict[str, list] = {entry_id: [queue[0]] for entry_id, queue in queues.items()}
    spent = sum(seed.wall_seconds for plan in plans.values() for _, seed in plan)
    for depth in range(1, max((len(q) for q in queues.values()), default=0)):
        for entry_id, queue in queues.items():
            if depth < len(queue) and spent + queue[depth][1].wall_seconds <= budget:
                plans[entry_id].append(queue[depth])
                spent += queue[depth][1].wall_seconds
    for entry_id, plan in plans.items():
        total = len(queues[entry_id])
        if len(plan) < total:
            note(f"{entry_id}: budget {budget:.0f} s: re-scoring {len(plan)} of {total} seeds "
                 f"(~{sum(s.wall_seconds for _, s in plan):.0f} s recorded)")
    return plans


def _status_name(entry: Entry) -> str:
    from vdcbench.leaderboard.verification import status_of
    return status_of(entry).status.value


def _recorded_sample(root: Path, sample: Path) -> list[tuple[Claim, list[tuple[str, SeedResult]]]]:
    """``entry-id net seed`` lines (``#`` comments) -> claims and their seeds."""
    from vdcbench.leaderboard.validate import check_entry, entry_paths

    try:
        lines = sample.read_text().splitlines()
    except OSError as exc:
        raise VdcError(f"cannot read {sample}: {exc.strerror or exc}") from None
    paths = {p.parent.name: p for p in entry_paths(root)}
    wanted: dict[str, list[tuple[str, int]]] = {}
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].split()
        if not text:
            continue
        if len(text) != 3 or not text[2].isdigit():
            raise VdcError(f"{sample}:{number}: expected 'ENTRY-ID NET SEED', got {line.strip()!r}")
        wanted.setdefault(text[0], []).append((text[1], int(text[2])))
    out = []
    for entry_id, pairs in wanted.items():
        if entry_id not in paths:
            raise VdcError(f"{sample}: no entry {entry_id} under {root}")
        entry = Entry.from_disk(paths[entry_id])
        check_entry(entry, paths[entry_id], root)
        chosen = []
        for net, seed in pairs:
            results = entry.net(net)
            found = next((s for s in results.seeds if s.seed == seed), None) if results else None
            if found is None:
                raise VdcError(f"{sample}: entry {entry_id} holds no {net} seed {seed}")
            chosen.append((net, found))
        out.append((claim_from_entry(entry, root), chosen))
    return out


def _same_cpu_only(plans, device: str, note: Note
                   ) -> list[tuple[Claim, list[tuple[str, SeedResult]]]]:
    """The recorded sample's seeds whose records were made on this kind of CPU (or do not say).

    The sample is CI's bit-for-bit check that committed results keep reproducing under the
    code; CPU kernels differ between instruction sets, so on another kind of CPU a re-score can
    only come close, which cannot tell a code change from the machine: such a seed is skipped,
    saying so, rather than judged under a tolerance."""
    from vdcbench.evaluation.machine import this_machine

    ours = this_machine(device)
    kept = []
    for claim, pairs in plans:
        machines = claim.machines
        chosen = []
        for net, seed in pairs:
            theirs = machines.get((net, seed.seed))
            if theirs is not None and theirs.same_cpu(ours) is False:
                note(f"recorded sample {claim.name} {net} seed {seed.seed}: its record was made "
                     f"on {theirs.cpu_label}, this is {ours.cpu_label}; the sample is a "
                     f"bit-for-bit check, which needs the same kind of CPU: skipped "
                     f"(`vdcbench verify {claim.name} --seeds {seed.seed}` reproduces it within "
                     f"--cpu-tolerance)")
                continue
            chosen.append((net, seed))
        if chosen:
            kept.append((claim, chosen))
    return kept


def _rescore(plans, options: VerifyOptions, on_claim, on_check,
             progress) -> list[VerifyReport]:
    import dataclasses

    reports = []
    for claim, pairs in plans:
        if on_claim is not None:
            on_claim(claim, [(net, seed.seed) for net, seed in pairs])
        for net in dict.fromkeys(n for n, _ in pairs):
            seeds = tuple(s.seed for n, s in pairs if n == net)
            reports.append(verify(claim, dataclasses.replace(options, nets=(net,), seeds=seeds),
                                  progress=progress, on_check=on_check))
    return reports


# ------------------------------------------------------------------------------ fetching
def _fetched(entry: Entry, root: Path, scratch: Path) -> Path | None:
    """An archive that is not committed, downloaded from its URL and hash-checked (None when
    the entry commits its archive)."""
    if entry.archive.path is not None:
        return None
    target = scratch / f"{entry.archive.sha256}.tar"
    try:
        with urllib.request.urlopen(entry.archive.url, timeout=600) as response, \
                open(target, "wb") as sink:
            shutil.copyfileobj(response, sink)
    except (OSError, ValueError) as exc:
        raise VdcError(f"entry {entry.id}: cannot fetch its archive from {entry.archive.url}: "
                       f"{exc}") from None
    sha = hashlib.sha256(target.read_bytes()).hexdigest()
    if sha != entry.archive.sha256:
        raise VdcError(f"entry {entry.id}: the archive at {entry.archive.url} has sha256 "
                       f"{sha[:12]}, not the entry's {entry.archive.sha256[:12]}")
    return target


# ------------------------------------------------------------------------------ report
def _report(outcome: Outcome, budget: float, changed: bool) -> dict[str, Any]:
    return {
        "format": "vdcbench-ci-verification", "format_version": 1,
        "source": "changed entries" if changed else "recorded sample",
        "budget_seconds": budget, "changed_entries": list(outcome.entries), "ok": outcome.ok,
        "checks": [{"entry": r.claim.name, "net": c.net, "seed": c.seed,
                    "outcome": c.outcome.value, "reasons": list(c.reasons),
                    "notes": list(c.notes), "tolerance": c.tolerance,
                    "differences": [d.describe() for d in c.differences],
                    "recorded_wall_seconds": c.claimed.wall_seconds,
                    "wall_seconds": round(c.wall_seconds, 1)}
                   for r in outcome.reports for c in r.checks],
    }
