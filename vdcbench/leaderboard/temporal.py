"""Which temporal-track results the leaderboard holds, and where it ranks them.

The protocol declares an equal-frame grid of temporal tracks (v1: ``ipc8-t4``, ``ipc4-t8``,
``ipc2-t16``, ``ipc1-t32``: 32 frames per class each, the study's Table 4b). A result there is
measured through a temporal formation (:mod:`vdcbench.train.formation`), which is part of what
was measured: the leaderboard takes such results as entries only under the official variant and
schedule, and ranks them in a table of their own per data set and net, one column per (track,
formation), never beside the official IPC 1 / 5 / 10 tracks.

Study tracks (``protocol/study-tracks.toml``: budgets of the study's experiments the protocol
does not declare) are never official, so they never become entries at all; a formation on a track
off the grid (an official 8-frame track) has no column to go to and is refused too.
"""

from __future__ import annotations

from vdcbench.core.errors import UnknownNameError, VdcError
from vdcbench.protocol import Protocol
from vdcbench.train.formation import Formation, default_formation


def grid_tracks(protocol: Protocol) -> list[str]:
    """The equal-frame grid's track ids in the protocol's order (v1: fewest frames first)."""
    return [f"ipc{k}-t{t}" for k, t in protocol.equal_frame_grid]


def temporal_tracks(protocol: Protocol) -> list[str]:
    """The grid's tracks that are not official tracks: what the temporal tables rank."""
    official = set(protocol.track_ids())
    return [t for t in grid_tracks(protocol) if t not in official]


def formation_order(protocol: Protocol, frames: int, formation: str) -> tuple[bool, int, str]:
    """Where a formation's column stands among one track's: the track's default (the one
    ``vdcbench evaluate`` uses when none is named) first, then the protocol's order of names."""
    parsed = Formation.parse(formation, protocol.sampling.frames)
    default = default_formation(frames, protocol.sampling.frames).id
    names = list(protocol.temporal_formations)
    return (parsed.id != default,
            names.index(parsed.name) if parsed.name in names else len(names), parsed.id)


def temporal_problem(protocol: Protocol, dataset: str, track: str, formation: str | None,
                     variant: str, epochs: int) -> str | None:
    """Why results of ``track`` measured through ``formation`` cannot be an entry, or None.

    A study track never can; a formation only on a track of the equal-frame grid, a formation
    the protocol declares that can form the track's instances, under the official variant and
    the protocol's schedule."""
    try:
        declared = protocol.track(dataset, track)
    except UnknownNameError as exc:
        return str(exc)
    if declared.study is not None:
        return (f"track {track} is a study track ({declared.study}, declared beside protocol "
                f"v{protocol.version} in study-tracks.toml), never official: the leaderboard "
                "holds the protocol's own tracks only (compare these with vdcbench results)")
    if formation is None:
        if declared.frames != protocol.sampling.frames:
            return (f"track {track} holds {declared.frames}-frame instances, which the evaluation "
                    f"net's {protocol.sampling.frames}-frame clips are formed from: its results "
                    "name their formation")
        return None
    grid = temporal_tracks(protocol)
    if track not in grid:
        return (f"track {track} is not a temporal track of the protocol's equal-frame grid "
                f"({', '.join(grid)}), so its results have no formation column: an 8-frame "
                f"official track is evaluated without a formation, not with {formation!r}")
    if variant != "official":
        return (f"results of {track} through formation {formation} under study variant "
                f"{variant!r}: a temporal-track entry holds official-variant results only "
                "(compare these with vdcbench results)")
    if epochs != protocol.trainer.epochs:
        return (f"results of {track} through formation {formation} with a shortened schedule "
                f"({epochs} of {protocol.trainer.epochs} epochs): a temporal-track entry holds "
                "the protocol's schedule only (compare these with vdcbench results)")
    try:
        parsed = Formation.parse(formation, protocol.sampling.frames)
        if parsed.name not in protocol.temporal_formations:
            return (f"formation {formation!r} is not one protocol v{protocol.version} declares "
                    f"({', '.join(protocol.temporal_formations)})")
        parsed.check(declared.frames, track)
    except VdcError as exc:
        return str(exc)
    return None
