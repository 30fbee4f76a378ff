"""The ``nets`` command: every protocol net with its parameters and FLOPs at a track's input;
``step-throughput``: how fast each trains on a device.

Attached to the main group by ``register(main)``; the same thin-shell rules as ``vdcbench.cli``.
Needs no data: a net is built from the protocol's definition and the data set's class count.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from vdcbench.cli.output import out, user_errors
from vdcbench.core.errors import VdcError


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


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise VdcError(f"{what} must be a comma list of integers, not {text!r}") from None
    if not values or min(values) < 1:
        raise VdcError(f"{what} must be positive integers, not {text!r}")
    return values


@click.command("step-throughput")
@click.option("--net", "nets", default="every", show_default=True,
              help="A protocol net, a comma list, all (the evaluation nets, as in evaluate) or "
                   "every (every protocol net, minic3d-in included).")
@click.option("--batch", "batches", default="10,100", show_default=True,
              help="Batch sizes (IPC 1 and IPC 10 of a 10-class track: 10 and 100).")
@click.option("--frames", type=int, default=8, show_default=True)
@click.option("--crop", type=int, default=112, show_default=True)
@click.option("--classes", type=int, default=101, show_default=True)
@click.option("--precision", "precisions", default="float32,bf16", show_default=True,
              help="float32 and/or bf16 (autocast).")
@click.option("--device", default="cuda", show_default=True)
@click.option("--steps", type=int, default=10, show_default=True, help="Timed steps per row.")
@click.option("--warmup", type=int, default=3, show_default=True)
@click.option("--peak-tflops", type=float, default=None,
              help="The device's dense bf16 peak (known for H100/H200/A100/L40S/A10).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="Also write the rows to this file.")
@user_errors
def step_throughput_cmd(nets: str, batches: str, frames: int, crop: int, classes: int,
                        precisions: str, device: str, steps: int, warmup: int,
                        peak_tflops: float | None, json_path: Path | None) -> None:
    """Training-step speed of each net on DEVICE: clips/s, TFLOP/s, fraction of bf16 peak."""
    import torch

    from vdcbench.core.atomic_file import write_json_atomic
    from vdcbench.evaluation.scoring import parse_nets
    from vdcbench.models.step_throughput import measure_step, option_problem
    from vdcbench.protocol import LATEST_VERSION, load_protocol

    p = load_protocol(LATEST_VERSION)
    specs = [p.net(name) for name in parse_nets(p, nets)]   # a misspelt net fails before any work
    chosen = [v.strip() for v in precisions.split(",") if v.strip()]
    if not chosen:
        raise VdcError(f"--precision {precisions!r} names no precision")
    for precision in chosen:      # every option is checked before the first (slow) row
        if (problem := option_problem(precision, steps, warmup)) is not None:
            raise VdcError(problem)
    sizes = _int_list(batches, "--batch")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise VdcError(f"device {device!r} asked for, but torch sees no CUDA device")
    table = Table("net", "batch", "precision", "ms / step", "clips / s", "TFLOP/s",
                  "of bf16 peak", "peak GiB",
                  title=f"training step on {device}: {frames}×{crop}² clips, {classes} classes")
    rows = []
    for spec in specs:
        for batch in sizes:
            for precision in chosen:
                row = measure_step(spec, classes, batch, frames, crop, precision, device,
                                   steps=steps, warmup=warmup, peak_tflops=peak_tflops)
                rows.append(row.to_dict())
                table.add_row(spec.name, str(batch), precision, f"{row.seconds_per_step * 1e3:.1f}",
                              f"{row.clips_per_second:.1f}", f"{row.achieved_tflops:.2f}",
                              "-" if row.fraction_of_peak is None else f"{row.fraction_of_peak:.1%}",
                              "-" if row.peak_memory_gib is None else f"{row.peak_memory_gib:.1f}")
                if json_path:      # rows land as they are measured: a cut-off run keeps them
                    write_json_atomic(json_path, {"device_name": _device_name(device),
                                                  "torch": torch.__version__, "rows": rows})
    out.print(table)


def _device_name(device: str) -> str:
    import torch
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    import platform
    return platform.processor() or platform.machine()


def register(main_group: click.Group) -> None:
    """Attach the ``nets`` and ``step-throughput`` commands to the ``vdcbench`` group."""
    main_group.add_command(nets_cmd)
    main_group.add_command(step_throughput_cmd)
