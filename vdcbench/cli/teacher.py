"""``teacher train``: the protocol teacher of a net on a data set's full train split."""

from __future__ import annotations

from pathlib import Path

import click

from vdcbench.cli.output import out, progress_bar, user_errors


@click.group("teacher")
def teacher_group() -> None:
    """Protocol teachers (the full-data reference, soft labels, RDED's scorer)."""


@teacher_group.command("train")
@click.option("--dataset", required=True)
@click.option("--net", default="minic3d", show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--epochs", type=int, default=None,
              help="Shorten the recipe (smoke tests; the result is reported, not saved).")
@click.option("--shuffle-frames", is_flag=True,
              help="Control: permute every clip's frames (reported, not saved).")
@click.option("--videos-per-class", type=int, default=None,
              help="Train and validate on the first N videos of each class (smoke tests and "
                   "cost estimates; reported, not saved).")
@click.option("--tiny", is_flag=True,
              help="Smoke preset: --epochs 1 --videos-per-class 2 unless given.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
@click.option("--no-resume", is_flag=True,
              help="Start from epoch 0 even if a stopped run of the same training left a "
                   "checkpoint (kept per epoch in the cache).")
@user_errors
def teacher_train_cmd(dataset: str, net: str, device: str, epochs: int | None,
                      shuffle_frames: bool, videos_per_class: int | None, tiny: bool,
                      json_path: Path | None, no_resume: bool) -> None:
    """Train the protocol teacher of NET (any protocol net) on the full train split of DATASET."""
    from vdcbench.data.datasets import resolve_dataset
    from vdcbench.protocol import LATEST_VERSION, load_protocol
    from vdcbench.train.teacher import teacher_resume_store, train_teacher
    p = load_protocol(LATEST_VERSION)
    ds = resolve_dataset(p, dataset)
    recipe = p.teacher_recipe(ds, net)
    if tiny:
        epochs = epochs or 1
        videos_per_class = videos_per_class or 2
    total = epochs or recipe.epochs
    with progress_bar() as bar:
        task = bar.add_task(f"teacher {net} on {dataset}", total=total, info="")
        sidecar, _ = train_teacher(
            p, ds, net, epochs=epochs, shuffle_frames=shuffle_frames, device=device,
            videos_per_class=videos_per_class,
            resume_store=None if no_resume else teacher_resume_store(),
            progress=lambda e, n, loss: bar.update(task, completed=e, info=f"loss {loss:.3f}"))
    saved = sidecar.sha256 is not None
    out.print(f"teacher {net} on {dataset}: validation top-1 {sidecar.val_top1:.1f}% "
              f"({sidecar.epochs_run} epochs of recipe {recipe.name}, "
              f"{sidecar.train_gflops / 1e3:.1f} TFLOP, {sidecar.wall_seconds:.0f} s)"
              + ("" if saved else "  \\[not saved: not the protocol recipe]"))
    if json_path:
        from vdcbench.core.atomic_file import write_json_atomic
        write_json_atomic(json_path, sidecar.to_dict())
