"""``submissions/`` -> ``leaderboard/``, as a pure function.

:func:`render` maps the validated entries (and the shipped teachers' sidecars, for the full-data
rows) to the bytes of every generated file; :func:`build` writes the ones that changed,
atomically, or with ``check=True`` only lists the stale ones. Nothing in the output depends on
the clock, the machine or the order files are listed in: JSON is written with sorted keys, SVG
plots with a fixed ``svg.hashsalt`` and no date, PNGs without metadata. (Plots depend on the
matplotlib version: CI and whoever commits ``leaderboard/`` should use the same one.)

What the leaderboard holds is :func:`~vdcbench.leaderboard.tables.build_tables`'s; how each
file draws it is :mod:`vdcbench.leaderboard.render`'s. Generated files:

- ``README.md`` (``render.markdown``): one table per (data set, net, metric, protocol) in the
  study's Table-6 shape, then one per temporal section (the equal-frame grid, a column per track
  and formation), the plots, every entry, and the entries that are not ranked;
- ``leaderboard.json`` (``render.jsonfile``): the same data for machines;
- ``index.html`` (``render.html``): a self-contained page with sortable tables, a filter by
  label strategy and net, the plots and a gallery;
- ``plots/<table>-ipc.svg`` (accuracy against IPC), or ``plots/<table>-ipc<k>.svg`` (a dot
  chart) for a table whose results all sit on IPC k, and ``plots/<table>-bytes.svg`` where the
  archives' sizes differ enough to plot against; ``plots/<table>-cells.svg`` (a dot per cell)
  for a temporal table (``render.plots``);
- ``gallery/<dataset>-<archive sha12>.png`` (``render.gallery``): a contact sheet of every clip
  of each archive committed under ``submissions/``, so entries on different archives never
  share a picture.
"""

from __future__ import annotations

import os
from pathlib import Path

from vdcbench.core.atomic_file import write_bytes_atomic
from vdcbench.core.errors import VdcError
from vdcbench.leaderboard.validate import validate_entries
from vdcbench.leaderboard.render.gallery import gallery_images
from vdcbench.leaderboard.render.html import render_html
from vdcbench.leaderboard.render.jsonfile import render_json
from vdcbench.leaderboard.render.markdown import render_readme
from vdcbench.leaderboard.render.plots import table_plots
from vdcbench.leaderboard.tables import build_tables, load_teacher_sidecars

# Folders of leaderboard/ that hold only generated files: anything else there is stale.
GENERATED_DIRS = ("plots", "gallery")


def default_teachers_dir() -> Path:
    from vdcbench.train.teacher import SHIPPED_DIR
    return SHIPPED_DIR


# ------------------------------------------------------------------------------- build
def render(submissions: str | os.PathLike[str],
           teachers_dir: str | os.PathLike[str] | None = None) -> dict[str, bytes]:
    """Every file of ``leaderboard/`` (relative POSIX path -> bytes), from ``submissions/``."""
    root = Path(submissions)
    entries = validate_entries(root)
    teachers = load_teacher_sidecars(Path(teachers_dir) if teachers_dir is not None
                                     else default_teachers_dir())
    board = build_tables(entries, teachers)
    plots = {table.slug: table_plots(table) for table in board.tables}
    gallery = gallery_images(root, board.entries)
    files = {plot.path: plot.svg for table in plots.values() for plot in table}
    files.update((image.path, image.png) for image in gallery)
    files["README.md"] = render_readme(board, plots).encode()
    files["leaderboard.json"] = render_json(board, plots, gallery).encode()
    files["index.html"] = render_html(board, plots, gallery).encode()
    return dict(sorted(files.items()))


def _extra_files(output: Path, wanted: dict[str, bytes]) -> list[Path]:
    extra = []
    for folder in GENERATED_DIRS:
        base = output / folder
        if base.is_dir():
            extra += [p for p in sorted(base.rglob("*"))
                      if p.is_file() and p.relative_to(output).as_posix() not in wanted]
    return extra


def build(submissions: str | os.PathLike[str] = "submissions",
          output: str | os.PathLike[str] = "leaderboard", *, check: bool = False,
          teachers_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Regenerate ``output`` from ``submissions``. Returns the files written (and removed), or
    with ``check=True`` the files that are stale (differ, missing or left over), writing
    nothing."""
    output = Path(output)
    files = render(submissions, teachers_dir)
    stale = []
    for rel, data in files.items():
        path = output / rel
        try:
            current = path.read_bytes()
        except FileNotFoundError:
            current = None
        except OSError as exc:
            raise VdcError(f"cannot read {path}: {exc.strerror or exc}") from None
        if current != data:
            stale.append(path)
    extra = _extra_files(output, files)
    if check:
        return stale + extra
    for path in stale:
        write_bytes_atomic(path, files[path.relative_to(output).as_posix()])
    for path in extra:
        path.unlink()
    return stale + extra
