"""``sweep``: many cells listed in a TOML file, run as submitit jobs (Slurm, or submitit's local
executor), skipped when their record exists, read back with ``sweep status``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from vdcbench.cli.output import out, user_errors
from vdcbench.core.errors import VdcError

if TYPE_CHECKING:
    from vdcbench.study.sweep import Sweep, SweepStatus

WAIT_HINT = ("the submitted jobs keep running where nothing stopped them, and their records are "
             "kept; `vdcbench sweep status FILE` says where each cell stands, and the same "
             "command submits the cells not done")


class SweepGroup(click.Group):
    """``vdcbench sweep FILE [OPTIONS]`` (or options first) means ``vdcbench sweep run ...``: the
    group's everyday use takes no subcommand name (``vdcbench sweep run status`` submits a file
    called status)."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("sweep", cls=SweepGroup)
def sweep_group() -> None:
    """Many cells as submitit jobs: `vdcbench sweep CELLS.toml` submits every cell of the file
    whose record does not exist (one job per cell, or per --array-chunk cells; a Slurm job array),
    and `vdcbench sweep status CELLS.toml` says which are done, running and failed.

    A failed cell is resubmitted alone with `vdcbench sweep CELLS.toml --only CELL_ID`. The file's
    format is in the README ("Many cells on a cluster") and vdcbench/study/sweep.py.
    """


def _sweep_options(fn):
    for option in reversed((
        click.argument("cells_file", type=click.Path(dir_okay=False, path_type=Path)),
        click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path),
                     default=None, help="Where records are written and looked up (default: the "
                                        "file's [sweep] results_dir, else FOLDER/records)."),
        click.option("--epochs", type=int, default=None,
                     help="A shortened schedule for a smoke run (records not official); "
                          "overrides [sweep] epochs."),
    )):
        fn = option(fn)
    return fn


def _load(cells_file: Path, results_dir: Path | None, epochs: int | None,
          device: str | None = None) -> Sweep:
    from vdcbench.study.sweep import load_sweep
    sweep = load_sweep(cells_file)
    if epochs is not None and epochs < 1:
        raise VdcError(f"--epochs must be at least 1, not {epochs}")
    return dataclasses.replace(
        sweep, results_dir=results_dir.resolve() if results_dir else sweep.results_dir,
        epochs=epochs if epochs is not None else sweep.epochs, device=device or sweep.device)


@sweep_group.command("run")
@_sweep_options
@click.option("--only", default=None, metavar="CELL_ID[,CELL_ID]",
              help="Submit only these cells (ids as `sweep status` prints them, or a unique "
                   "prefix): a failed cell resubmitted alone.")
@click.option("--executor", "kind", type=click.Choice(["local", "slurm"]), default=None,
              help="local: submitit jobs on this machine, all started at once; slurm: a job "
                   "array on the cluster. Overrides [executor] kind (default local).")
@click.option("--partition", default=None, help="Slurm partition.")
@click.option("--account", default=None, help="Slurm account.")
@click.option("--qos", default=None, help="Slurm quality of service.")
@click.option("--gpus", type=int, default=None, help="GPUs per job.")
@click.option("--cpus", type=int, default=None, help="CPUs per job (Slurm).")
@click.option("--memory", default=None, help="Memory per job (Slurm), e.g. 32G.")
@click.option("--time", "time_limit", default=None,
              help="Wall-time limit of a job: minutes or [D-]HH:MM:SS.")
@click.option("--array-chunk", type=int, default=None,
              help="Cells per job, run one after another (default 1).")
@click.option("--max-parallel", type=int, default=None,
              help="Slurm array tasks running at once.")
@click.option("--device", default=None, help="Torch device of every cell (default: [sweep] "
                                               "device, else cpu).")
@click.option("--wait/--no-wait", default=None,
              help="Wait for the jobs and print each cell's outcome (default: wait for local "
                   "jobs, not for Slurm's).")
@click.option("--dry-run", is_flag=True, help="Print the cells and what would be submitted.")
@user_errors(interrupted=WAIT_HINT)
def run_cmd(cells_file: Path, results_dir: Path | None, epochs: int | None, only: str | None,
            kind: str | None, partition: str | None, account: str | None, qos: str | None,
            gpus: int | None, cpus: int | None, memory: str | None, time_limit: str | None,
            array_chunk: int | None, max_parallel: int | None, device: str | None,
            wait: bool | None, dry_run: bool) -> None:
    """Submit the cells of CELLS_FILE whose record does not exist, as submitit jobs.

    Cells done (a record exists) are skipped, and so are cells whose last job is still queued
    or running. A failed cell is submitted again by the next run, or alone with --only.
    """
    from vdcbench.study.jobs import SubmititExecutor
    from vdcbench.study.sweep import choose, dispatch, sweep_status

    sweep = _load(cells_file, results_dir, epochs, device)
    sweep = dataclasses.replace(sweep, executor=sweep.executor.with_overrides(
        kind=kind, partition=partition, account=account, qos=qos, gpus=gpus, cpus=cpus,
        memory=memory, time_minutes=time_limit, array_chunk=array_chunk,
        max_parallel=max_parallel))
    ids = None if only is None else tuple(p.strip() for p in only.split(",") if p.strip())
    if ids is not None and not ids:
        raise VdcError("--only names no cell")
    status = sweep_status(sweep)
    chosen, _ = choose(status, ids)
    render_status(status, chosen={c.id for c in chosen})
    if dry_run or not chosen:
        if not chosen:
            out.print("nothing to submit", markup=False, highlight=False)
        return
    from vdcbench.cli.study import cell_lines
    dispatched = dispatch(status, ids, job_progress=cell_lines)
    jobs = dispatched.submitted
    out.print(f"submitted {len(chosen)} cell{'s' if len(chosen) != 1 else ''} in {len(jobs)} "
              f"job{'s' if len(jobs) != 1 else ''} ({sweep.executor.describe()}); logs under "
              f"{sweep.jobs_folder}", markup=False, highlight=False)
    for job in jobs:
        out.print(f"  job {job.job_id}: " + ", ".join(
            _id(c) for c in job.commands), markup=False, highlight=False)
    if not (wait if wait is not None else sweep.executor.kind == "local"):
        out.print(f"next: vdcbench sweep status {cells_file}", markup=False, highlight=False)
        return
    executor: SubmititExecutor = dispatched.executor
    failed = []
    with cell_lines() as progress:
        for outcome in executor.collect(jobs, progress):
            if outcome.record is None:
                failed.append(outcome)
    final = sweep_status(sweep)
    render_status(final)
    if failed:
        raise VdcError(f"{len(failed)} of {len(chosen)} cells failed (listed above, with their "
                       f"logs); resubmit one alone with: vdcbench sweep {cells_file} --only "
                       f"{_id(failed[0].command)}")


def _id(command) -> str:
    from vdcbench.study.jobs import cell_id
    return cell_id(command.cell)


@sweep_group.command("status")
@_sweep_options
@user_errors
def status_cmd(cells_file: Path, results_dir: Path | None, epochs: int | None) -> None:
    """Say which cells of CELLS_FILE are done (their records), pending or running (their jobs),
    failed (with the reason and the job's log) or not submitted yet."""
    from vdcbench.study.sweep import sweep_status
    render_status(sweep_status(_load(cells_file, results_dir, epochs)))


def render_status(status: SweepStatus, chosen: set[str] | None = None) -> None:
    """A row per cell: its id, its state and what backs it (top-1, job, reason and log)."""
    from vdcbench.study.sweep import DONE, FAILED, STATE_ORDER, TO_RUN
    sweep = status.sweep
    table = Table("#", "cell", "status", "job", "detail",
                  title=f"sweep {sweep.name} ({sweep.path}): records in {sweep.results_dir}")
    for n, cell in enumerate(status.cells, 1):
        job = "" if cell.submission is None else cell.submission.job_id
        if cell.state == DONE:
            detail = "top-1 " + ", ".join(f"{r.top1:.2f}" for r in cell.records)
        elif cell.state == FAILED:
            detail = "see below"
        else:
            detail = cell.reason or ""
        state = cell.state
        if chosen is not None and cell.id in chosen:
            state += " → submit"
        table.add_row(str(n), cell.id, state, job, detail)
    out.print(table)
    counts = ", ".join(f"{status.count(s)} {s}" for s in STATE_ORDER if status.count(s))
    schedule = ("" if status.epochs == status.official_epochs
                else f"; {status.epochs}-epoch schedule, records NOT official")
    for cell in status.cells:
        if cell.state == FAILED:    # whole lines, not wrapped in a table cell: paths to open
            out.print(f"failed: {cell.id}: {cell.reason}; log: {cell.log}", markup=False,
                      highlight=False)
    out.print(f"{len(status.cells)} cells: {counts}{schedule}", markup=False, highlight=False)
    if chosen is None and status.count(FAILED):
        first = next(c for c in status.cells if c.state == FAILED)
        out.print(f"resubmit the failed cells with: vdcbench sweep {sweep.path} (or one alone: "
                  f"--only {first.id})", markup=False, highlight=False)
    elif chosen is None and status.count(TO_RUN):
        out.print(f"submit them with: vdcbench sweep {sweep.path}", markup=False,
                  highlight=False)
