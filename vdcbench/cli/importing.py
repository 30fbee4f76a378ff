"""Import commands: ``vdcbench import video-dc DIR``.

Attached to the main group by ``register(main)``; a thin shell like the rest of the CLI: parse,
call the importer and the archive writer, print one summary line. A ``VdcError`` (a bad folder, a
refused ``.pt``, a set over the track's budget) is one line and exit code 2.
"""

from __future__ import annotations

from pathlib import Path

import click

from vdcbench.cli.output import out, user_errors
from vdcbench.core.errors import VdcError


@click.group("import")
def import_group() -> None:
    """Turn condensed sets made by other code into validated submission archives."""


@import_group.command("video-dc")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--dataset", required=True, help="Data set the set was condensed from.")
@click.option("--ipc", type=int, required=True, help="Instances per class of the track.")
@click.option("--frames", type=int, default=None,
              help="Frames per instance of the track (default: what the set holds).")
@click.option("--label-strategy", default="hard", show_default=True,
              help="hard, soft (logits from labels_best.pt) or multi-sl.")
@click.option("--kind", type=click.Choice(["selection", "distillation"]), default="distillation",
              show_default=True, help="Whether the source method selected or synthesised clips.")
@click.option("--source-method", default=None, help="Name of the source method, recorded "
              "(e.g. rded, edc, datm).")
@click.option("--format", "source_format", type=click.Choice(["auto", "jpeg", "pt"]),
              default="auto", show_default=True,
              help="JPEG class folders or images_best.pt; auto prefers the tensors.")
@click.option("--normalization", type=click.Choice(["imagenet", "none"]), default="imagenet",
              show_default=True, help="How images_best.pt is normalised.")
@click.option("--num-classes", type=int, default=None,
              help="Class count (only for the folder data set).")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Archive to write (.tar, or .tar.gz for gzip).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output archive.")
@user_errors
def import_video_dc_cmd(directory: Path, dataset: str, ipc: int, frames: int | None,
                        label_strategy: str, kind: str, source_method: str | None,
                        source_format: str, normalization: str, num_classes: int | None,
                        output: Path, overwrite: bool) -> None:
    """Import the condensed set in DIRECTORY (the study code's layout) as an archive."""
    from vdcbench.archive import write_archive
    from vdcbench.archive.importers.video_dc import import_video_dc
    from vdcbench.protocol import load_protocol

    # Checked before reading the set, which may take a while; the writer checks again at the end.
    if output.exists() and not overwrite:
        raise VdcError(f"{output} exists; pass --overwrite to replace it")
    if not output.absolute().parent.is_dir():
        raise VdcError(f"cannot write {output}: directory {output.absolute().parent} "
                       "does not exist")
    protocol = load_protocol()
    condensed = import_video_dc(directory, protocol=protocol, dataset=dataset, ipc=ipc,
                                frames=frames, label_strategy=label_strategy, kind=kind,
                                num_classes=num_classes, source_format=source_format,
                                normalization=normalization, source_method=source_method)
    sha = write_archive(condensed, output, protocol=protocol, overwrite=overwrite,
                        num_classes=num_classes)
    config = condensed.method.config
    out.print(f"imported {condensed.num_instances} clips ({config['format']}) as "
              f"{condensed.dataset} {condensed.track} {condensed.label_strategy}: wrote {output} "
              f"({output.stat().st_size / 1e6:.2f} MB, sha256 {sha[:12]})")


def register(main_group: click.Group) -> None:
    """Attach the import commands to the ``vdcbench`` group."""
    main_group.add_command(import_group)
