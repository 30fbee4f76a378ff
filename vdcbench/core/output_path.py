"""The check an archive's output path gets before any condensing, shared by the CLI (which runs
it before torch is imported) and the library's ``run_baseline``."""

from __future__ import annotations

from pathlib import Path

from vdcbench.core.errors import VdcError


def check_output_path(output: Path, overwrite: bool) -> None:
    """Refuse an output the archive could not be written to, before condensing (minutes to
    hours) rather than after; the archive writer checks again when it writes."""
    if output.is_dir():
        raise VdcError(f"cannot write {output}: it is a directory; give an archive file name")
    if output.exists() and not overwrite:
        raise VdcError(f"{output} exists; pass --overwrite to replace it")
    folder = output.absolute().parent
    if not folder.is_dir():
        raise VdcError(f"cannot write {output}: directory {folder} does not exist")
