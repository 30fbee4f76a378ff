"""``run-baseline``: condense a data set with a method (and score it); ``methods``: the
registered methods and their settings."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

import shlex

from vdcbench.cli.evaluate import evaluate_and_render, parse_seeds
from vdcbench.cli.output import out, progress_bar, user_errors
from vdcbench.cli.progress import RichProgress
from vdcbench.core.errors import VdcError


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
              help="Train the data set's MiniC3D protocol teacher first if it is not there yet.")
@user_errors(interrupted="no archive is written until the condensation ends; the same command "
                         "resumes a teacher in training from its last finished epoch (and, with "
                         "--evaluate, keeps the seeds already scored)")
def run_baseline_cmd(name: str, dataset: str, ipc: int, frames: int | None, label_strategy: str,
                     seed: int, output: Path | None, overwrite: bool, settings: tuple[str, ...],
                     device: str, then_evaluate: bool, seeds: str, net: str,
                     results_dir: Path | None, train_teacher: bool) -> None:
    """Condense DATASET with the method NAME and write a submission archive."""
    from vdcbench.protocol import LATEST_VERSION, load_protocol
    overrides = parse_settings(settings)
    eval_seeds = parse_seeds(seeds)
    if not then_evaluate and (results_dir is not None or net != "minic3d"):
        raise VdcError("--net and --results-dir apply to the evaluation: add --evaluate")
    protocol = load_protocol(LATEST_VERSION)
    check_track(protocol, ipc, frames)
    if output is not None:
        check_output(output, overwrite)
    protocol.label_strategy(label_strategy)
    from vdcbench.methods.catalog import require_registered
    require_registered(name)
    # What needs the method's class (torch) is checked before generating data, which takes
    # minutes on a first run; run_baseline checks it all again.
    from vdcbench.methods import get_method
    get_method(name).config_from_strings(overrides)
    if then_evaluate:
        from vdcbench.evaluation.scoring import parse_nets
        parse_nets(protocol, net)  # an unknown net fails before condensing
    declared = protocol.datasets.get(dataset)
    if declared is not None and declared.generator is not None:
        # Validation too: the next step (printed at the end) is the evaluation, which reads it.
        generate_synthetic(declared, ("train", "val"))
    from vdcbench.evaluation.api import run_baseline
    with RichProgress() as progress:
        made = run_baseline(name, dataset=dataset, ipc=ipc, frames=frames,
                            label_strategy=label_strategy, settings=overrides, seed=seed,
                            output=output, overwrite=overwrite, device=device,
                            train_teacher=train_teacher, progress=progress)
    out.print(f"wrote {made.path} ({made.bytes / 1e6:.2f} MB, sha256 {made.sha256[:12]}) in "
              f"{made.wall_seconds:.1f} s")
    if then_evaluate:
        evaluate_and_render(made.path, eval_seeds, net, "official", device, None, results_dir,
                            None)
        return
    out.print(f"next: vdcbench evaluate {shlex.quote(str(made.path))}   (the protocol's schedule "
              "on seeds 0,1,2; add --epochs 2 for a quick look that is never ranked)",
              markup=False, highlight=False)


def check_track(protocol, ipc: int, frames: int | None) -> None:
    """An IPC (or frame count) with no track is named with the tracks there are: the closest
    spelling of ``ipc0-t8`` is ``ipc10-t8``, which is no answer to ``--ipc 0``."""
    wanted = f"ipc{ipc}-t{frames or protocol.official_frames}"
    every = protocol.track_ids(include_temporal=True)
    if wanted in every:
        return
    official = protocol.track_ids()
    temporal = [t for t in every if t not in official]
    raise VdcError(f"unknown track {wanted!r}: the protocol's tracks are {', '.join(official)} "
                   f"(official) and {', '.join(temporal)} (temporal); --ipc K --frames T "
                   "picks ipcK-tT")


def check_output(output: Path, overwrite: bool) -> None:
    """Refuse an output path that cannot be written before any condensing (minutes to hours);
    the archive writer checks again when it writes."""
    if output.is_dir():
        raise VdcError(f"cannot write {output}: it is a directory; give an archive file name")
    if output.exists() and not overwrite:
        raise VdcError(f"{output} exists; pass --overwrite to replace it")
    folder = output.absolute().parent
    if not folder.is_dir():
        raise VdcError(f"cannot write {output}: directory {folder} does not exist")


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
