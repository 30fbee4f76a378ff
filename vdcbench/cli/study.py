"""``study``: one of the study's experiments as a grid of cells, resumable, with its table and plot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from vdcbench.cli.evaluate import parse_seeds
from vdcbench.cli.output import console, out, user_errors
from vdcbench.core.errors import VdcError

if TYPE_CHECKING:
    from vdcbench.study import StudyPlan

SUBMISSION_RECORDS = Path("submissions") / "records"
SUBMISSION_ARCHIVES = Path("submissions") / "archives"
RESUME_HINT = ("finished cells' records are kept, and the same command resumes (a cell in "
               "training from its last finished epoch)")


def _ints(text: str | None, option: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(dict.fromkeys(int(p) for p in text.split(",") if p.strip()))
    except ValueError:
        raise VdcError(f"{option} {text!r} is not a comma list of numbers like 1,5") from None
    if not values or any(v < 1 for v in values):
        raise VdcError(f"{option} {text!r} must name at least one positive number")
    return values


@click.command("study")
@click.argument("name")
@click.option("--dataset", required=True, help="The data set the study runs on, e.g. synthetic.")
@click.option("--methods", default=None,
              help="Only these methods (a comma list of method names or the study's arm labels).")
@click.option("--seeds", default=None, help="Only these evaluation seeds, e.g. 0 or 0-2.")
@click.option("--ipc", default=None, help="Only the cells at these IPCs, e.g. 1,5.")
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the cells' records are written and looked up (default: the cache).")
@click.option("--records", "lookup", multiple=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="A further folder whose records count as done cells (repeatable; default: "
                   "submissions/records where it exists).")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the cells, table, plot and the study's archives go "
                   "(default: ./study-NAME-DATASET).")
@click.option("--epochs", type=int, default=None,
              help="Train each evaluation for this many epochs instead of the protocol's, for a "
                   "smoke test; the records are marked not official.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--executor", default="inprocess", show_default=True, metavar="KIND|FILE",
              help="Where the cells run: inprocess (one after another here), local (submitit "
                   "jobs on this machine, all at once), slurm (submitit jobs on the cluster, "
                   "no options), or a TOML file whose [executor] table sets kind and the "
                   "Slurm options (a sweep file works). Logs go to OUTPUT-DIR/jobs.")
@click.option("--dry-run", is_flag=True, help="Print the cells and their estimated cost, run nothing.")
@click.option("--tables-only", is_flag=True,
              help="Run no cell: write the table and plot from the records that exist.")
@click.option("--studies-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Read the studies from this TOML instead of the shipped ones.")
@user_errors(interrupted=RESUME_HINT)
def study_cmd(name: str, dataset: str, methods: str | None, seeds: str | None, ipc: str | None,
              results_dir: Path | None, lookup: tuple[Path, ...], output_dir: Path | None,
              epochs: int | None, device: str, executor: str, dry_run: bool,
              tables_only: bool, studies_file: Path | None) -> None:
    """Run the study's experiment NAME on a data set: every cell (method, track, labels, variant,
    formation, net, condensation and evaluation seed) whose record does not exist yet, then its
    table in the paper's layout and its plot.

    NAMEs: label-strategy, cutmix, loss, temporal-compression, ipc-vs-frames, sampling,
    cross-arch, condensation-nets. It prints the cells and their estimated cost first; a
    stopped study resumes from the records it left.
    """
    from vdcbench.study.cells import Narrowing
    from vdcbench.study.spec import get_study, load_studies

    study = get_study(name, load_studies(studies_file))
    _executor_options(executor)        # a bad --executor is refused before any planning
    if dry_run and tables_only:
        raise VdcError("--dry-run and --tables-only: choose one")
    narrowing = Narrowing(
        methods=None if methods is None else tuple(m.strip() for m in methods.split(",")
                                                   if m.strip()),
        seeds=None if seeds is None else parse_seeds(seeds), ipc=_ints(ipc, "--ipc"))
    from vdcbench.core import paths
    from vdcbench.study.runner import StudyOptions, plan_study, run_study, write_outputs
    folder = output_dir or Path(f"study-{name}-{dataset}")
    if not lookup and SUBMISSION_RECORDS.is_dir():
        lookup = (SUBMISSION_RECORDS,)
    archives = (SUBMISSION_ARCHIVES,) if SUBMISSION_ARCHIVES.is_dir() else ()
    options = StudyOptions(study=study, dataset=dataset, folder=folder,
                           results_dir=results_dir or paths.results_dir(), lookup=tuple(lookup),
                           archive_lookup=archives, narrowing=narrowing, epochs=epochs,
                           device=device)
    plan = plan_study(options)
    render_plan(plan)
    if dry_run:
        return
    outcomes = []
    if not tables_only and plan.remaining:
        with cell_lines() as progress:
            outcomes = run_study(plan, _executor(executor, folder, device), progress=progress)
    written = write_outputs(plan, outcomes)
    out.print(written.table.markdown(), markup=False, highlight=False, soft_wrap=True)
    out.print(written.table.caption(), markup=False, highlight=False)
    for failed in written.failed:
        out.print(f"failed: {failed.command.cell.describe()}: {failed.error}", markup=False,
                  highlight=False)
    out.print("wrote " + ", ".join(str(p) for p in (written.cells_json, written.table_markdown,
                                                      written.table_json, *written.plots)),
              markup=False, highlight=False)
    if written.failed:
        raise VdcError(f"{len(written.failed)} of {len(outcomes)} cells failed (listed above); "
                       f"the others' records are kept")


def cell_lines():
    """The progress a study prints (and a cell's job logs): a line as each cell starts and ends."""
    from vdcbench.cli.progress import RichProgress
    from vdcbench.study.executor import StudyProgress

    class CellLines(RichProgress, StudyProgress):
        def cell_started(self, index, total, command):
            self.close()
            console.print(f"cell {index + 1}/{total}: {command.cell.describe()}",
                          markup=False, highlight=False)

        def cell_finished(self, index, total, outcome):
            self.close()
            if outcome.record is None:
                console.print(f"cell {index + 1}/{total} failed: {outcome.error}",
                              markup=False, highlight=False)
            else:
                r = outcome.record
                console.print(f"cell {index + 1}/{total}: top-1 {r.top1:.2f} "
                              f"({r.wall_seconds:.0f} s)", markup=False, highlight=False)

        def job_submitted(self, job_id, commands, log):
            self.close()
            cells = ", ".join(c.cell.describe() for c in commands)
            console.print(f"job {job_id}: {cells} (log {log})", markup=False, highlight=False)

    return CellLines()


def _executor_options(executor: str):
    """None for the in-process executor, else the submitit executor's options."""
    from vdcbench.study.cluster import EXECUTOR_KINDS, ClusterOptions, load_executor_file
    if executor == "inprocess":
        return None
    if executor in EXECUTOR_KINDS:
        return ClusterOptions(kind=executor)
    if executor.endswith(".toml"):
        return load_executor_file(Path(executor))
    raise VdcError(f"--executor {executor!r}: inprocess, local, slurm or a TOML file with an "
                   f"[executor] table")


def _executor(executor: str, folder: Path, device: str):
    options = _executor_options(executor)
    if options is None:
        return None
    from vdcbench.study.jobs import SubmititExecutor
    return SubmititExecutor(options, Path(folder) / "jobs", device=device,
                            job_progress=cell_lines)


def render_plan(plan: StudyPlan) -> None:
    """The cells, which are done, and what the rest will cost, from measured rates."""
    from vdcbench.study.cost import format_seconds
    study = plan.options.study
    table = Table("#", "cell", "status", "condense", "evaluate",
                  title=f"study {study.name} on {plan.options.dataset}: {study.title} "
                        f"(the study's {study.paper})")
    for i, cell in enumerate(plan.cells, 1):
        if cell.done:
            values = ", ".join(f"{r.top1:.1f}" for r in cell.records)
            table.add_row(str(i), cell.command.cell.describe(), f"done ({values})", "", "")
            continue
        condense = ("archive exists" if cell.condense is None and cell.command.archive.is_file()
                    else "shared" if cell.condense is None
                    else f"{format_seconds(cell.condense.seconds)} ({cell.condense.basis})")
        evaluate = f"{format_seconds(cell.evaluate.seconds)} ({cell.evaluate.basis})"
        table.add_row(str(i), cell.command.cell.describe(), "to run", condense, evaluate)
    out.print(table)
    remaining = plan.remaining
    schedule = ("" if plan.epochs == plan.protocol.trainer.epochs
                else f"; {plan.epochs}-epoch schedule, records NOT official")
    line = (f"{len(plan.cells)} cells: {len(plan.cells) - len(remaining)} done, "
            f"{len(remaining)} to run{schedule}")
    if remaining:
        unknown, steps = plan.unknown_rates(), plan.steps()
        if unknown == steps:
            line += (f"; no estimate: none of its {steps} steps (condensations and evaluations) "
                     f"has a measured rate yet")
        else:
            line += f"; estimated {format_seconds(plan.known_seconds())} from measured rates"
            if unknown:
                line += (f", plus {unknown} of {steps} steps with no rate known (nothing "
                         f"measured like them yet)")
    out.print(line, markup=False, highlight=False)
