"""``protocol``: the protocol's version, hash, data sets and tracks; ``schema-docs``: the JSON
schemas' reference page, written or checked."""

from __future__ import annotations

import click
from rich.table import Table

from vdcbench.cli.output import out, user_errors


@click.command("protocol")
@click.option("--version", "version", type=int, default=None, help="Protocol version (latest).")
@user_errors
def protocol_cmd(version: int | None) -> None:
    """Show the protocol: version, hash, data sets and tracks."""
    from vdcbench.protocol import LATEST_VERSION, load_protocol
    p = load_protocol(version or LATEST_VERSION)
    out.print(f"[bold]{p.name}[/] version {p.version}  sha256 {p.sha256}")
    table = Table("data set", "classes", "resize", "crop", "metrics", "base batch", "flip")
    for ds in p.datasets.values():
        table.add_row(ds.name, str(ds.num_classes or "user"), f"{ds.resize[0]}x{ds.resize[1]}",
                      str(ds.crop), ",".join(ds.metrics), str(ds.base_batch_size),
                      "yes" if ds.hflip else "no")
    out.print(table)
    out.print("official tracks: " + ", ".join(p.track_ids()))
    out.print("temporal tracks (declared): " + ", ".join(
        t for t in p.track_ids(include_temporal=True) if t not in p.track_ids()))
    for study in p.study_tracks:
        out.print(f"study tracks ({study.name}, never official; protocol/study-tracks.toml): "
                  f"{study.describe().split(': ', 1)[1]}", markup=False, highlight=False)


@click.command("schema-docs")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the page is out of date.")
@user_errors
def schema_docs_cmd(check: bool) -> None:
    """Render protocol/schemas/README.md from the JSON schemas beside it."""
    from vdcbench.protocol import schema_docs
    if not check:
        out.print(f"wrote {schema_docs.write_readme()}", markup=False, highlight=False,
                  soft_wrap=True)
        return
    if not schema_docs.readme_is_current():
        page = schema_docs.SCHEMA_DIR / schema_docs.README_NAME
        click.echo(f"{page} is out of date with the schemas; run vdcbench schema-docs", err=True)
        click.get_current_context().exit(1)
