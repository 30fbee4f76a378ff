"""How cells, rows and entries read as text, the same in the README and on the page."""

from __future__ import annotations

from vdcbench.core.stats import format_mean_std
from vdcbench.leaderboard.entry import Entry, NetResults
from vdcbench.leaderboard.tables import Column, Row, Table, TableCell, net_rank
from vdcbench.leaderboard.ties import ALPHA, MIN_PAIRS, MIN_PERMUTATION_PAIRS
from vdcbench.leaderboard.verification import STATUS_ORDER, status_of
from vdcbench.protocol import load_protocol


def percent(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio * 100:.2g} %"


def column_label(table: Table, column: Column) -> str:
    """An official column by its IPC; a temporal one as the study's Table 4b names its cells,
    [IPC, frames], then its formation: "[2, 16] slide-window"."""
    if not table.temporal:
        return f"IPC {column.ipc}"
    return f"[{column.ipc}, {column.frames}] {column.formation_name}"


def track_label(entry: Entry) -> str:
    """An entry's track, with its formation when it has one: "ipc2-t16 (slide-window)"."""
    return entry.track if entry.formation is None else f"{entry.track} ({entry.formation})"


def temporal_note(table: Table) -> str:
    """What a temporal table's columns are, under its title."""
    return ("Temporal tracks of the protocol's equal-frame grid: [IPC, frames per instance], "
            "the same frames per class in every column, and the formation that made the "
            "evaluation net's 8-frame clips (the track's default first; one archive formed two "
            "ways is two cells). Ranked among themselves, never with the official tracks.")


def cell_value(cell: TableCell) -> str:
    return format_mean_std(cell.mean, cell.std, cell.n)


def cell_count(cell: TableCell) -> str:
    sets = len(cell.entry_ids)
    return f"n={cell.n}" + (f", {sets} sets" if sets > 1 else "") + f", {cell.status}"


def statuses() -> tuple[str, ...]:
    """The verification statuses, strongest first (the filter's choices)."""
    return tuple(s.value for s in STATUS_ORDER)


def entry_status(entry: Entry) -> str:
    """An entry's status as a reader needs it: the status, who vouches, where."""
    return status_of(entry).label


def cell_gain(row: Row, cell: TableCell | None) -> str:
    if cell is None:
        return ""
    if row.is_random and not row.placeholder:
        return "ref."
    return "–" if cell.gain is None else f"{cell.gain:+.1f}"


def method_label(row: Row) -> str:
    return f"{row.method} (no entry)" if row.placeholder else row.method


def labels_label(labels: str, teacher: str | None) -> str:
    return f"{labels} (teacher {teacher[:8]})" if teacher else labels


def ordered_results(entry: Entry) -> list[NetResults]:
    """An entry's results in the protocol's order of nets (its evaluation net first); the entry
    itself keeps them by name."""
    protocol = load_protocol(entry.protocol_version)
    return sorted(entry.results, key=lambda r: net_rank(protocol, r.net))


def net_figure(results: NetResults) -> str:
    """Top-1 of one net of an entry: "net m ± s (n=k)"."""
    return f"{results.net} {results.spread('top1').format()} (n={results.n})"


def entry_figures(entry: Entry) -> str:
    """Top-1 per net of an entry, one net after another in the protocol's order."""
    return "; ".join(net_figure(r) for r in ordered_results(entry))


def condensation(entry: Entry) -> str:
    if entry.condensation_wall_seconds is None:
        return "unknown"
    return f"{entry.condensation_wall_seconds:.3g} s on {entry.condensation_device or '?'}"


def legend() -> str:
    return (
        "Accuracy in % at the final epoch of the protocol schedule: mean ± sample std over "
        "every result of the cell (n results; a cell pooling several condensed sets says how "
        "many). **Bold**: best in its column; <ins>underlined</ins>: best within its kind "
        "(selection or distillation); ≈: the tie rule cannot tell it from the best. Δ: gain "
        "over the Random cell of the same track, label strategy and net, so that what the labels "
        "and the evaluation recipe contribute is not credited to the condensed data. Tie rule: "
        "two cells tie unless their differences paired by evaluation seed all have the same "
        f"sign (fewer than {MIN_PAIRS} paired seeds: tied); with {MIN_PERMUTATION_PAIRS} or more "
        f"paired seeds, an exact paired sign-flip test at {float(ALPHA) * 100:g} %. Only "
        "official results (protocol schedule, official variant) are ranked: the official tracks "
        "in one table, the temporal tracks of the equal-frame grid in another, a column per "
        "track and formation; a table never mixes protocol hashes, data-set stores, nets or "
        "metrics. Beside each "
        "number, who vouches for it: verified (re-scored from the archive by `vdcbench "
        "verify`, bit for bit), reproduced (re-scored within a stated tolerance, for a stated "
        "reason), self-reported (not re-scored: who ran it, and where); a cell pooling "
        "entries shows its weakest.")
