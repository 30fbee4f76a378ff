"""The ``nets`` command: every protocol net with its parameters and FLOPs at a track's input.

Attached to the main group by ``register(main)``; the same thin-shell rules as ``vdcbench.cli``.
Needs no data: a net is built from the protocol's definition and the data set's class count.
"""

from __future__ import annotations

import click
from rich.table import Table

from vdcbench.cli_output import out, user_errors
from vdcbench.errors import VdcError


@click.command("nets")
@click.option("--dataset", default="synthetic", show_default=True,
              help="Whose track input (frames × crop²) and class count to measure at.")
@click.option("--classes", type=int, default=None,
              help="Class count, for a data set whose classes come from the user's collection.")
@click.option("--version", "version", type=int, default=None, help="Protocol version (latest).")
@user_errors
def nets_cmd(dataset: str, classes: int | None, version: int | None) -> None:
    """List every protocol net: parameters and forward GFLOPs per clip at DATASET's track input.

    GFLOPs are 2 × fvcore's multiply-adds; a training step costs about 3 × forward per clip."""
    from vdcbench.models.flops import TRAIN_FACTOR, clip_shape, net_cost
    from vdcbench.protocol import LATEST_VERSION, load_protocol

    from vdcbench.data.datasets import resolve_dataset
    p = load_protocol(version or LATEST_VERSION)
    ds = resolve_dataset(p, dataset)
    num_classes = classes if classes is not None else ds.num_classes
    if num_classes < 1:
        raise VdcError(f"data set {ds.name!r} takes its classes from the user's collection; "
                       f"pass --classes K")
    frames = p.official_frames
    _, channels, t, h, w = clip_shape(frames, ds.crop)
    table = Table("net", "parameters", "forward GFLOPs / clip",
                  f"train GFLOPs / clip (≈{TRAIN_FACTOR}×)", "teacher",
                  title=f"{ds.name}: input {channels}×{t}×{h}×{w}, {num_classes} classes "
                        f"(protocol v{p.version})")
    for spec in p.nets.values():
        cost = net_cost(spec, num_classes, frames, ds.crop)
        table.add_row(spec.name, f"{cost.parameters:,}", f"{cost.forward_gflops:.3f}",
                      f"{cost.train_gflops_per_clip:.2f}", spec.teacher_architecture)
    out.print(table)


def register(main_group: click.Group) -> None:
    """Attach the ``nets`` command to the ``vdcbench`` group."""
    main_group.add_command(nets_cmd)
