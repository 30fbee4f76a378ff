"""``validate``: check an archive and print its storage ledger."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from vdcbench.cli.output import out, user_errors


@click.command("validate")
@click.argument("archive", type=click.Path(dir_okay=True, path_type=Path))
@user_errors
def validate_cmd(archive: Path) -> None:
    """Check an archive (schema, hashes, shapes, values, budget); print its storage ledger."""
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
