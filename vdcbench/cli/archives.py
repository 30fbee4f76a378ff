"""``validate``: check an archive and print its storage ledger."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from vdcbench.cli.evaluate import check_archive_path
from vdcbench.cli.output import out, user_errors
from vdcbench.core.errors import VdcError


@click.command("validate")
@click.argument("archive", type=click.Path(dir_okay=True, path_type=Path))
@user_errors
def validate_cmd(archive: Path) -> None:
    """Check an archive (schema, hashes, shapes, values, budget); print its storage ledger."""
    if not archive.exists() and not archive.suffix and len(archive.parts) == 1:
        # A bare name is more often a prepared data set than an archive without a suffix.
        from vdcbench.core.paths import stores_dir
        raise VdcError(f"archive {archive}: no such file; validate checks an archive (.tar). "
                       f"A prepared store is checked with `vdcbench prepare LAYOUT --verify "
                       f"--name {archive}`; stores are kept in {stores_dir()} "
                       "(under VDCBENCH_CACHE when it is set)")
    check_archive_path(archive)
    from vdcbench.archive import read_archive
    loaded = read_archive(archive)
    c = loaded.condensed
    out.print(f"[green]valid[/]: {archive}  sha256 {loaded.sha256}")
    out.print(f"  data set {c.dataset}, track {loaded.track.id}, labels {c.label_strategy}, "
              f"method {c.method.name} ({c.method.kind})")
    table = Table("storage ledger", "value", title=None)
    for name, value in loaded.ledger.rows():
        table.add_row(name, str(value))
    out.print(table)
