"""The leaderboard: entries in ``submissions/``, the tie rule, tables, and ``leaderboard/``.

- ``measurement``: :class:`Measurement`, what makes two results the same measurement (a result
  record's key without net and seed);
- ``entry``: :class:`Entry` (``to_disk`` / ``from_disk``) and its per-net, per-seed results;
- ``submit``: :func:`submit`, result records -> entry, refusing records that cannot form one;
- ``validate``: :func:`validate_entries`, what a schema cannot check (protocol, location,
  archive);
- ``temporal``: which temporal-track results become entries (the equal-frame grid, with their
  formation, official only; never a study track) and the columns they are ranked in;
- ``ties``: :func:`compare` / :func:`tied`, the rule that decides when one cell beats another;
- ``tables``: :func:`build_tables`, entries -> tables in the study's Table-6 shape, official
  tracks and temporal tracks apart (the model of the leaderboard: what it holds, whatever draws
  it);
- ``render``: the model drawn as Markdown, JSON, an HTML page (CSS and JS as package data),
  plots and a gallery;
- ``build``: :func:`build` / :func:`render`, ``submissions/`` -> ``leaderboard/`` (pure);
- ``diff``: :func:`diff`, are two results or entries comparable, field by field;
- ``gallery``: :func:`show`, a frame grid per class (and GIFs) of an archive.

Layer 8 of the design: it reads archives and result records, never trains.
"""

from vdcbench.leaderboard.entry import Entry, NetResults, SeedResult
from vdcbench.leaderboard.measurement import Measurement
from vdcbench.leaderboard.validate import entry_paths, validate_entries
from vdcbench.leaderboard.submit import submit
from vdcbench.leaderboard.ties import TieResult, compare, tied
from vdcbench.leaderboard.tables import Leaderboard, Table, build_tables
from vdcbench.leaderboard.build import build, render
from vdcbench.leaderboard.diff import Comparison, diff
from vdcbench.leaderboard.gallery import show

__all__ = [
    "Comparison",
    "Entry",
    "Leaderboard",
    "Measurement",
    "NetResults",
    "SeedResult",
    "Table",
    "TieResult",
    "build",
    "build_tables",
    "compare",
    "diff",
    "entry_paths",
    "render",
    "show",
    "submit",
    "tied",
    "validate_entries",
]
