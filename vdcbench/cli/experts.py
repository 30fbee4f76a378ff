"""``experts train`` / ``experts info``: the expert trajectories trajectory matching (MTT, DATM) reads."""

from __future__ import annotations

import click

from vdcbench.cli.output import out, progress_bar, user_errors


@click.group("experts")
def experts_group() -> None:
    """Expert trajectories of the condensation net (per-epoch parameters) for MTT and DATM."""


def _experts(dataset: str, experts: int, epochs: int):
    from vdcbench.data.datasets import resolve_dataset
    from vdcbench.protocol import LATEST_VERSION, load_protocol
    from vdcbench.train.experts import expert_set, resolve_recipe
    if experts < 0 or epochs < 0:
        from vdcbench.core.errors import VdcError
        raise VdcError("--experts and --epochs must be positive (0: the data set's recipe)")
    protocol = load_protocol(LATEST_VERSION)
    ds = resolve_dataset(protocol, dataset)
    return expert_set(protocol, ds, resolve_recipe(ds, experts, epochs))


def _mib(size: int) -> str:
    return f"{size / 2 ** 20:.1f} MiB"


@experts_group.command("train")
@click.option("--dataset", required=True)
@click.option("--experts", type=int, default=0,
              help="Number of experts (default: the data set's recipe; more later trains only "
                   "the new ones).")
@click.option("--epochs", type=int, default=0,
              help="Epochs per expert (default: the data set's recipe; another value is another "
                   "expert set).")
@click.option("--device", default="cpu", show_default=True)
@user_errors(interrupted="every finished epoch is kept; run the same command to resume")
def experts_train_cmd(dataset: str, experts: int, epochs: int, device: str) -> None:
    """Train the expert trajectories of DATASET (resumes per expert and epoch)."""
    import time
    from vdcbench.train.experts import train_experts
    chosen = _experts(dataset, experts, epochs)
    recipe = chosen.recipe
    started = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task(f"experts on {dataset}", total=recipe.experts * recipe.epochs, info="")
        done_before = len(chosen.completed()) * recipe.epochs
        bar.update(task, completed=done_before)

        def progress(expert: int, count: int, epoch: int, epochs: int, loss: float) -> None:
            finished = sum(1 for n in chosen.completed() if n != expert) * epochs
            bar.update(task, completed=finished + epoch,
                       info=f"expert {expert + 1}/{count} epoch {epoch}/{epochs} loss {loss:.3f}")

        trained = train_experts(chosen, device=device, progress=progress)
    out.print(f"experts on {dataset}: {recipe.experts} x {recipe.epochs} epochs (recipe "
              f"{recipe.name!r}, {len(trained)} trained now in {time.perf_counter() - started:.0f} s), "
              f"{_mib(chosen.bytes_on_disk())} on disk in {chosen.store.root}")


@experts_group.command("info")
@click.option("--dataset", required=True)
@click.option("--experts", type=int, default=0)
@click.option("--epochs", type=int, default=0)
@user_errors
def experts_info_cmd(dataset: str, experts: int, epochs: int) -> None:
    """Say which experts of DATASET are saved, their recipe, and their size on disk."""
    import dataclasses
    chosen = _experts(dataset, experts, epochs)
    recipe = chosen.recipe
    complete = chosen.completed()
    out.print(f"experts on {dataset} (set {chosen.identity}): {len(complete)} of "
              f"{recipe.experts} complete, {recipe.epochs} epochs each, "
              f"{_mib(chosen.bytes_on_disk())} on disk in {chosen.store.root}")
    settings = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(recipe).items())
    out.print(f"recipe: {settings}")
