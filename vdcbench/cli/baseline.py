"""``run-baseline``: condense a data set with a method (and score it); ``methods``: the
registered methods and their settings."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from vdcbench.cli.evaluate import evaluate_and_render, parse_seeds
from vdcbench.cli.output import out, user_errors
from vdcbench.cli.progress import RichProgress
from vdcbench.core.errors import VdcError


@click.command("methods")
@click.argument("name", required=False)
@user_errors
def methods_cmd(name: str | None) -> None:
    """List the registered condensation methods, or NAME's settings (its --set keys)."""
    from vdcbench.methods import available_methods, get_method
    if name is None:
        table = Table("method", "kind", "description")
        for method_name, cls in available_methods().items():
            table.add_row(method_name, cls.kind, cls.description)
        out.print(table)
        return
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
@user_errors
def run_baseline_cmd(name: str, dataset: str, ipc: int, frames: int | None, label_strategy: str,
                     seed: int, output: Path | None, overwrite: bool, settings: tuple[str, ...],
                     device: str, then_evaluate: bool, seeds: str, net: str,
                     results_dir: Path | None, train_teacher: bool) -> None:
    """Condense DATASET with the method NAME and write a submission archive."""
    from vdcbench.evaluation.api import run_baseline
    overrides = parse_settings(settings)
    eval_seeds = parse_seeds(seeds)
    if not then_evaluate and (results_dir is not None or net != "minic3d"):
        raise VdcError("--net and --results-dir apply to the evaluation: add --evaluate")
    if then_evaluate:
        from vdcbench.evaluation.scoring import parse_nets
        from vdcbench.protocol import LATEST_VERSION, load_protocol
        parse_nets(load_protocol(LATEST_VERSION), net)  # an unknown net fails before condensing
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
