"""``teacher train``: the protocol teacher (or a declared profile's) of a net on a data set."""

from __future__ import annotations

import shlex
from contextlib import nullcontext
from pathlib import Path

import click

from vdcbench.cli.output import Interrupted, console, out, progress_bar, user_errors


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.4 h``: an estimate's precision, not a stopwatch's."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def cost_line(cost, profile_name: str) -> str:
    """One line saying what a teacher's training will take here, before it starts."""
    recipe = cost.recipe
    return (f"profile {profile_name} (recipe {recipe.name}): {recipe.epochs} epochs x "
            f"{cost.train_videos:,} videos = {cost.clips:,} clips, about "
            f"{format_duration(cost.seconds)} here ({cost.seconds_per_clip:.3f} s a clip, "
            f"measured)")


def interrupted_fit_hint(exc, resume: str) -> str:
    """What a teacher training stopped by Ctrl-C says: where it stopped, what is kept, and the
    command that resumes (or starts again, when no epoch was finished)."""
    again = (f"resume with `{resume}`" if exc.checkpointed and exc.epochs_saved
             else f"rerun `{resume}` to start again")
    return f"{exc}; {again}"


@click.group("teacher")
def teacher_group() -> None:
    """Protocol teachers (the full-data reference, soft labels, RDED's scorer)."""


@teacher_group.command("train")
@click.option("--dataset", required=True)
@click.option("--net", default="minic3d", show_default=True)
@click.option("--profile", "profile_name", default="protocol", show_default=True,
              help="Teacher profile: 'protocol' (the data set's protocol recipe) or a declared "
                   "one (protocol/teacher-profiles.toml; 'cpu': 30 epochs a CPU can afford). A "
                   "profile's teacher is saved under its name and hash, and results made with it "
                   "say so.")
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
def teacher_train_cmd(dataset: str, net: str, profile_name: str, device: str,
                      epochs: int | None, shuffle_frames: bool, videos_per_class: int | None,
                      tiny: bool, json_path: Path | None, no_resume: bool) -> None:
    """Train the teacher of NET (any protocol net) on the full train split of DATASET.

    Ctrl-C stops after the training step in progress; the finished epochs are kept, and the
    same command resumes from them. Under `torchrun --nproc-per-node N -m vdcbench teacher
    train ...` the training is data-parallel over the N processes; rank 0 alone prints and
    saves."""
    from vdcbench.train.distributed import process_group
    with process_group(device) as world:
        if not world.is_writer:
            quiet_consoles()
        train_teacher_and_report(dataset, net, profile_name, device, epochs, shuffle_frames,
                                 videos_per_class, tiny, json_path, no_resume, world)


def quiet_consoles() -> None:
    """Ranks other than 0 of a torchrun launch print nothing (errors still reach stderr)."""
    console.quiet = True
    out.quiet = True


def train_teacher_and_report(dataset: str, net: str, profile_name: str, device: str,
                             epochs: int | None, shuffle_frames: bool,
                             videos_per_class: int | None, tiny: bool, json_path: Path | None,
                             no_resume: bool, world) -> None:
    """The command's work on one rank (``world``, a ``distributed.World``): rank 0 prints,
    draws the progress and writes ``--json``."""
    from vdcbench.cli.interrupts import stop_on_sigint
    from vdcbench.data.datasets import resolve_dataset
    from vdcbench.protocol import LATEST_VERSION, load_protocol, teacher_profile
    from vdcbench.train.interrupt import FitInterrupted, StopRequest
    from vdcbench.train.teacher import teacher_cost, teacher_resume_store, train_teacher
    p = load_protocol(LATEST_VERSION)
    ds = resolve_dataset(p, dataset)
    p.net(net)
    profile = teacher_profile(profile_name, p)
    if tiny:
        epochs = epochs or 1
        videos_per_class = videos_per_class or 2
    if epochs is not None and epochs < 1:
        raise click.BadParameter(f"must be at least 1, not {epochs}", param_hint="--epochs")
    writer = world.is_writer
    # Only rank 0 prints the estimate: the others need not time a step to make it.
    cost = teacher_cost(p, ds, net, profile, device=world.device(device),
                        seconds_per_clip=None if writer else 0.0)
    recipe = cost.recipe
    total = epochs or recipe.epochs
    if epochs is None and videos_per_class is None:
        console.print(f"teacher {net} on {dataset}: {cost_line(cost, profile_name)}")
    resume = shlex.join(["vdcbench", "teacher", "train", "--dataset", dataset, "--net", net,
                         "--profile", profile_name]
                        + (["--epochs", str(epochs)] if epochs is not None else [])
                        + (["--videos-per-class", str(videos_per_class)]
                           if videos_per_class is not None else [])
                        + (["--shuffle-frames"] if shuffle_frames else [])
                        + (["--device", device] if device != "cpu" else []))
    try:
        with (progress_bar() if writer else nullcontext()) as bar, \
                stop_on_sigint(StopRequest()) as stop:
            on_step = None
            if bar is not None:
                task = bar.add_task(f"teacher {net} on {dataset}", total=total, info="")

                def on_step(epoch: int, epochs_: int, step: int, steps: int,
                            loss: float) -> None:
                    bar.update(task, total=epochs_ * steps, completed=epoch * steps + step,
                               info=f"epoch {epoch + 1}/{epochs_} step {step}/{steps} "
                                    f"loss {loss:.3f}")

            sidecar, _ = train_teacher(
                p, ds, net, epochs=epochs, shuffle_frames=shuffle_frames,
                device=world.device(device),
                videos_per_class=videos_per_class, profile=profile,
                resume_store=None if no_resume else teacher_resume_store(),
                on_step=on_step, stop=stop)
    except FitInterrupted as exc:      # only our SIGINT handler asks a fit to stop
        raise Interrupted(interrupted_fit_hint(exc, resume)) from None
    except KeyboardInterrupt:          # a second Ctrl-C, or one outside the fit
        raise Interrupted(f"interrupted; finished epochs are kept: resume with `{resume}`") \
            from None
    saved = sidecar.sha256 is not None
    out.print(f"teacher {net} on {dataset}: validation top-1 {sidecar.val_top1:.1f}% "
              f"({sidecar.epochs_run} epochs of recipe {recipe.name}, profile {profile_name}, "
              f"{sidecar.train_gflops / 1e3:.1f} TFLOP, {sidecar.wall_seconds:.0f} s"
              + (f", {sidecar.world_size} processes" if sidecar.world_size else "") + ")"
              + ("" if saved or not writer else "  \\[not saved: not the declared recipe]"))
    if json_path and writer:
        from vdcbench.core.atomic_file import write_json_atomic
        write_json_atomic(json_path, sidecar.to_dict())
