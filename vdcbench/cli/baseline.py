"""``run-baseline``: condense a data set with a method (and score it); ``methods``: the
registered methods and their settings."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
from rich.table import Table

from vdcbench.cli.evaluate import evaluate_and_render, parse_seeds
from vdcbench.cli.output import Interrupted, out, progress_bar, user_errors
from vdcbench.cli.progress import RichProgress
from vdcbench.cli.teacher import format_duration
from vdcbench.core.errors import VdcError
from vdcbench.core.output_path import check_output_path


@click.command("methods")
@click.argument("name", required=False)
@user_errors
def methods_cmd(name: str | None) -> None:
    """List the registered condensation methods, or NAME's settings (its --set keys)."""
    if name is None:
        from vdcbench.methods.catalog import method_summaries
        table = Table("method", "kind", "description")
        for summary in method_summaries():
            table.add_row(summary.name, summary.kind, summary.description)
        out.print(table)
        return
    from vdcbench.methods import get_method
    from vdcbench.methods.settings import method_settings
    cls = get_method(name)
    out.print(f"{cls.name} ({cls.kind}): {cls.description}")
    settings = method_settings(cls.Config)
    if not settings:
        out.print("no settings (--set takes no keys)")
        return
    table = Table("--set key", "type", "default", "what it is")
    for setting in settings:
        table.add_row(setting.name, setting.type, repr(setting.default), setting.help)
    out.print(table)


def parse_settings(items: tuple[str, ...]) -> dict[str, str]:
    """``--set key=value`` pairs as a mapping (values stay strings; the method converts them)."""
    overrides = {}
    for item in items:
        if "=" not in item:
            raise VdcError(f"--set {item!r} must look like key=value")
        key, value = item.split("=", 1)
        overrides[key.strip()] = value.strip()
    return overrides


@click.command("run-baseline")
@click.argument("name")
@click.option("--dataset", required=True)
@click.option("--ipc", type=int, required=True, help="Instances per class of the track.")
@click.option("--frames", type=int, default=None, help="Frames per instance (protocol: 8).")
@click.option("--label-strategy", default="hard", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Archive to write (default: NAME-DATASET-TRACK-LABELS-sSEED.tar).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output archive.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Method setting, repeatable.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--evaluate", "then_evaluate", is_flag=True, help="Score the archive straight away.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Evaluation seeds (with --evaluate).")
@click.option("--net", default="minic3d", show_default=True,
              help="Evaluation net(s) (with --evaluate): a name, a comma list, all (the "
                   "evaluation nets) or every (every protocol net).")
@click.option("--results-dir", type=click.Path(path_type=Path), default=None,
              help="Where per-seed records go (with --evaluate; default: the vdcbench cache).")
@click.option("--train-teacher", is_flag=True,
              help="Train the data set's MiniC3D teacher (of --teacher-profile) first if it is "
                   "not there yet; the estimate of what it takes here is printed first.")
@click.option("--teacher-profile", "teacher_profile_name", default=None, metavar="PROFILE",
              help="Whose teacher the method and soft labels use: 'protocol' (the default) or "
                   "a declared profile (protocol/teacher-profiles.toml; 'cpu': a teacher a CPU "
                   "trains in well under an hour). Results made with it say so and rank in "
                   "their own tables.")
@click.option("--train-experts", is_flag=True,
              help="Train the expert trajectories the method reads (MTT, DATM) first where some "
                   "are missing; resumable per epoch.")
@user_errors(interrupted="no archive is written until the condensation ends; the same command "
                         "resumes a teacher or experts in training from their last finished "
                         "epoch (and, with --evaluate, keeps the seeds already scored)")
def run_baseline_cmd(name: str, dataset: str, ipc: int, frames: int | None, label_strategy: str,
                     seed: int, output: Path | None, overwrite: bool, settings: tuple[str, ...],
                     device: str, then_evaluate: bool, seeds: str, net: str,
                     results_dir: Path | None, train_teacher: bool,
                     teacher_profile_name: str | None, train_experts: bool) -> None:
    """Condense DATASET with the method NAME and write a submission archive."""
    from vdcbench.protocol import LATEST_VERSION, load_protocol, teacher_profile
    overrides = parse_settings(settings)
    eval_seeds = parse_seeds(seeds)
    if not then_evaluate and (results_dir is not None or net != "minic3d"):
        raise VdcError("--net and --results-dir apply to the evaluation: add --evaluate")
    protocol = load_protocol(LATEST_VERSION)
    check_track(protocol, dataset, ipc, frames)
    if output is not None:
        check_output_path(output, overwrite)
    protocol.label_strategy(label_strategy)
    teacher_profile(teacher_profile_name, protocol)     # an unknown one fails before torch
    from vdcbench.methods.catalog import require_registered
    require_registered(name)
    # What needs the method's class (torch) is checked before generating data, which takes
    # minutes on a first run; run_baseline checks it all again.
    from vdcbench.methods import get_method
    cls = get_method(name)
    cls.config_from_strings(overrides)
    from vdcbench.evaluation.run_profile import resolve_teacher_profile
    # With --set teacher_profile=... alone, that setting names the teacher to train.
    profile = resolve_teacher_profile(protocol, cls, dict(overrides), teacher_profile_name)
    profile_chosen = teacher_profile_name is not None or "teacher_profile" in overrides
    if then_evaluate:
        from vdcbench.evaluation.net_choice import parse_nets
        parse_nets(protocol, net)  # an unknown net fails before condensing
    declared = protocol.datasets.get(dataset)
    if declared is not None and declared.generator is not None:
        # Validation too: the next step (printed at the end) is the evaluation, which reads it.
        generate_synthetic(declared, ("train", "val"))
    from vdcbench.evaluation.api import run_baseline
    with RichProgress() as progress:
        if train_teacher:
            resume = shlex.join(
                ["vdcbench", "run-baseline", name, "--dataset", dataset, "--ipc", str(ipc)]
                + (["--frames", str(frames)] if frames is not None else [])
                + ["--label-strategy", label_strategy, "--seed", str(seed)]
                + [arg for item in settings for arg in ("--set", item)]
                + (["--teacher-profile", teacher_profile_name] if teacher_profile_name else [])
                + (["-o", str(output)] if output is not None else [])
                + (["--overwrite"] if overwrite else [])
                + (["--device", device] if device != "cpu" else []) + ["--train-teacher"]
                + (["--train-experts"] if train_experts else [])
                + (["--evaluate", "--seeds", seeds, "--net", net] if then_evaluate else [])
                + (["--results-dir", str(results_dir)] if results_dir is not None else []))
            prepare_teacher(protocol, dataset, profile, profile_chosen, device, progress, resume)
        made = run_baseline(name, dataset=dataset, ipc=ipc, frames=frames,
                            label_strategy=label_strategy, settings=overrides, seed=seed,
                            output=output, overwrite=overwrite, device=device,
                            teacher_profile=teacher_profile_name, train_experts=train_experts,
                            progress=progress)
    out.print(f"wrote {made.path} ({made.bytes / 1e6:.2f} MB, sha256 {made.sha256[:12]}) in "
              f"{made.wall_seconds:.1f} s")
    if then_evaluate:
        evaluate_and_render(made.path, eval_seeds, net, "official", device, None, results_dir,
                            None)
        return
    out.print(f"next: vdcbench evaluate {shlex.quote(str(made.path))}   (the protocol's schedule "
              "on seeds 0,1,2; add --epochs 2 for a quick look that is never ranked)",
              markup=False, highlight=False)


# Above this estimate the protocol recipe is no CPU job, and run-baseline offers the cpu profile.
OFFER_CPU_PROFILE_SECONDS = 3600.0


def prepare_teacher(protocol, dataset: str, profile, profile_chosen: bool, device: str,
                    progress: RichProgress, resume: str) -> None:
    """Train the MiniC3D teacher of ``profile`` unless it is saved, after one line saying what
    that takes here (and, when the protocol recipe would take over an hour and no profile was
    chosen, what the ``cpu`` profile would take). The first Ctrl-C stops after the training
    step in progress; the finished epochs are kept and ``resume`` goes on from them."""
    from vdcbench.cli.interrupts import stop_on_sigint
    from vdcbench.cli.teacher import cost_line, interrupted_fit_hint
    from vdcbench.data.datasets import resolve_dataset
    from vdcbench.evaluation.api import ensure_teacher
    from vdcbench.protocol import PROTOCOL_PROFILE, load_teacher_profiles
    from vdcbench.train.interrupt import FitInterrupted, StopRequest
    from vdcbench.train.teacher import find_teacher, teacher_cost
    ds = resolve_dataset(protocol, dataset)
    if find_teacher(protocol, ds.name, "minic3d", profile) is not None:
        return
    cost = teacher_cost(protocol, ds, "minic3d", profile, device=device)
    line = (f"teacher minic3d on {dataset}: "
            f"{cost_line(cost, profile.name if profile is not None else PROTOCOL_PROFILE)}")
    cpu = load_teacher_profiles().get("cpu")
    if (not profile_chosen and cost.seconds > OFFER_CPU_PROFILE_SECONDS and cpu is not None
            and protocol.version in cpu.protocol_versions):
        cheaper = teacher_cost(protocol, ds, "minic3d", cpu,
                               seconds_per_clip=cost.seconds_per_clip)
        line += (f"; over an hour: --teacher-profile cpu trains a teacher in about "
                 f"{format_duration(cheaper.seconds)} ({cheaper.recipe.epochs} epochs; results "
                 f"made with it say so and rank in their own tables)")
    click.echo(line, err=True)      # one line, unwrapped, for a log as for a terminal
    try:
        with stop_on_sigint(StopRequest()) as stop:
            ensure_teacher(protocol, ds, "minic3d", device=device, profile=profile,
                           progress=progress, stop=stop)
    except FitInterrupted as exc:      # only the SIGINT handler above asks the fit to stop
        progress.close()
        raise Interrupted(interrupted_fit_hint(exc, resume)) from None
    except KeyboardInterrupt:          # a second Ctrl-C: out at once
        progress.close()
        raise Interrupted(f"interrupted; finished teacher epochs are kept: resume with "
                          f"`{resume}`") from None


def check_track(protocol, dataset: str, ipc: int, frames: int | None) -> None:
    """An IPC (or frame count) with no track is named with the tracks there are: the closest
    spelling of ``ipc0-t8`` is ``ipc10-t8``, which is no answer to ``--ipc 0``."""
    from vdcbench.core.errors import UnknownNameError
    wanted = f"ipc{ipc}-t{frames or protocol.official_frames}"
    if dataset in protocol.datasets:
        # The protocol's own answer, which also admits the declared study tracks.
        try:
            protocol.track(dataset, wanted)
        except UnknownNameError as exc:
            raise VdcError(f"{exc}; --ipc K --frames T picks ipcK-tT") from None
        return
    every = protocol.track_ids(include_temporal=True)
    if wanted in every:
        return
    official = protocol.track_ids()
    temporal = [t for t in every if t not in official]
    raise VdcError(f"unknown track {wanted!r}: the protocol's tracks are {', '.join(official)} "
                   f"(official) and {', '.join(temporal)} (temporal); --ipc K --frames T "
                   "picks ipcK-tT")


def generate_synthetic(dataset, splits: tuple[str, ...]) -> None:
    """Generate the ``synthetic`` splits that are not cached yet, saying so, with progress: on a
    first run they take minutes that would otherwise pass in silence."""
    from vdcbench.data import synthetic
    spec = dataset.generator
    for split in splits:
        if synthetic.is_generated(spec, split):
            continue
        per_class = spec.train_per_class if split == "train" else spec.val_per_class
        total = per_class * len(synthetic.CLASS_NAMES)
        click.echo(f"generating the {dataset.name} {split} split ({total} videos, once; cached "
                   f"in {synthetic.split_cache_folder(spec)})", err=True)
        with progress_bar() as bar:
            task = bar.add_task(f"generate {dataset.name} {split}", total=total, info="")
            synthetic.load_split(spec, split, progress=lambda done, total: bar.update(
                task, completed=done, total=total))
