"""``vdcbench sweep`` and ``study --executor`` (issue 18 item 2): cells as submitit jobs.

The fast tests read sweep files, refuse bad ones in one line, and drive submitit's real Slurm
executor against a fake ``sbatch``/``sacct`` on PATH (the sbatch script it writes, the job
array, what status reads back, what a resubmission sends). The slow one is the acceptance test:
four tiny cells through submitit's local executor, one job SIGKILLed mid-run and resubmitted
alone, ending with the records a sequential run writes.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from process_fixtures import finish, invoke, one_thread, start, wait_for

HEAD = 'format = "vdcbench-sweep"\nformat_version = 1\n'
FOUR_CELLS = HEAD + """
[sweep]
dataset = "synthetic"
epochs = 1

[executor]
kind = "local"
array_chunk = 1     # a job per cell, whatever this machine's cores

[[cells]]
method = "random"
ipc = 1
condensation_seeds = [0, 1]
seeds = [0, 1]
"""


def _write(folder: Path, text: str, name: str = "cells.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------ the file
def test_a_sweep_file_lists_its_cells_with_stable_ids_and_paths_beside_it(tmp_path):
    from vdcbench.study.jobs import cell_id
    from vdcbench.study.sweep import load_sweep
    path = _write(tmp_path, HEAD + """
[sweep]
dataset = "synthetic"
results_dir = "out/records"
records = ["elsewhere"]

[[cells]]
method = "rded"
settings = { whole_frames = true }
ipc = 1
labels = ["hard", "soft"]
seeds = [0, 2]

[[cells]]
method = "random"
dataset = "synthetic"
ipc = 2
frames = 16
formation = "slide-window"
nets = ["minic3d", "i3d_r18"]
condensation_seeds = [3]
seeds = [1]
""")
    sweep = load_sweep(path)
    ids = [cell_id(c) for c in sweep.cells]
    assert len(ids) == 2 * 2 + 2
    assert ids[0].startswith("rded-set") and ids[0].endswith("-synthetic-ipc1-t8-hard-s0-"
                                                             "official-minic3d-seed0")
    assert ids[4:] == ["random-synthetic-ipc2-t16-hard-slide-window-s3-official-minic3d-seed1",
                       "random-synthetic-ipc2-t16-hard-slide-window-s3-official-i3d_r18-seed1"]
    assert sweep.folder == tmp_path / "cells-sweep"
    assert sweep.results_dir == tmp_path / "out" / "records"
    assert sweep.lookup == (tmp_path / "elsewhere",)
    assert sweep.epochs is None and sweep.executor.kind == "local"
    commands = sweep.commands()
    assert commands[0].archive.parent == tmp_path / "cells-sweep" / "archives"
    assert commands[0].cell.arm.settings == (("whole_frames", True),)


@pytest.mark.parametrize("body, message", [
    ("[[cells]]\nmethod = 'randm'\nipc = 1\ndataset = 'synthetic'\n", "did you mean 'random'"),
    ("[[cells]]\nmethod = 'random'\nipc = 1\n", "names no dataset"),
    ("[[cells]]\nmethod = 'random'\nipc = 0\ndataset = 'synthetic'\n", "ipc must be a positive"),
    ("[[cells]]\nmethod = 'random'\nipc = 1\ndataset = 'synthetic'\nseed = [0]\n",
     "unknown keys ['seed']"),
    ("[[cells]]\nmethod = 'random'\nipc = 1\ndataset = 'synthetic'\nlabels = ['hardd']\n",
     "unknown label strategy"),
    ("[[cells]]\nmethod = 'random'\nipc = 1\ndataset = 'synthetic'\nvariants = ['kl']\n",
     "the kl variant needs teacher labels"),
    ("[[cells]]\nmethod = 'random'\nipc = 1\ndataset = 'synthetic'\nseeds = [0]\n"
     "[[cells]]\nmethod = 'random'\nipc = 1\ndataset = 'synthetic'\nseeds = [0, 1]\n",
     "listed twice"),
    ("[executor]\nkind = 'pbs'\n[[cells]]\nmethod = 'random'\nipc = 1\ndataset = 'synthetic'\n",
     "the executor is one of local, slurm"),
    ("[executor]\ntime = '4h'\n[[cells]]\nmethod = 'random'\nipc = 1\ndataset = 'synthetic'\n",
     "a time is minutes"),
    ("[executor]\nmemory = 'lots'\n[[cells]]\nmethod = 'random'\nipc = 1\n"
     "dataset = 'synthetic'\n", "memory is an amount with a unit"),
    ("[executor]\nnodes = 2\n[[cells]]\nmethod = 'random'\nipc = 1\ndataset = 'synthetic'\n",
     "[executor] has unknown keys ['nodes']"),
    ("[sweep]\nepochs = 0\n[[cells]]\nmethod = 'random'\nipc = 1\ndataset = 'synthetic'\n",
     "epochs must be a positive integer"),
    ("", "lists no cells"),
])
def test_a_bad_sweep_file_is_one_line(tmp_path, body, message):
    path = _write(tmp_path, HEAD + body)
    for command in ("status", "run"):
        result = invoke("sweep", command, path)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines


def test_other_bad_requests_are_one_line(tmp_path):
    result = invoke("sweep", tmp_path / "missing.toml")
    assert result.exit_code == 2 and "cannot read sweep file" in result.output
    result = invoke("sweep", _write(tmp_path, "format = 'x'\n"))
    assert result.exit_code == 2 and "not a vdcbench-sweep v1 file" in result.output
    cells = _write(tmp_path, FOUR_CELLS)
    for args, message in ((("--time", "soon"), "--time 'soon'"), (("--gpus", "-1"), "--gpus"),
                          (("--memory", "0G"), "memory is an amount"),
                          (("--only", "nosuchcell"), "unknown cell 'nosuchcell'"),
                          (("--only", "random-synthetic-ipc1-t8-hard-s0"), "names 2 cells"),
                          (("--device", "cuda"), "needs gpus of at least 1")):
        result = invoke("sweep", cells, *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output.strip().splitlines()[-1], (args, result.output)
    result = invoke("study", "cutmix", "--dataset", "synthetic", "--executor", "pbs",
                    "--dry-run")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --executor 'pbs': inprocess, local, slurm or a TOML file with an [executor] table"]


def test_bad_sweep_files_answer_before_torch(tmp_path):
    """A user error in a sweep file is found without importing torch (or submitit)."""
    path = _write(tmp_path, HEAD + "[[cells]]\nmethod = 'randm'\nipc = 1\n"
                                   "dataset = 'synthetic'\n")
    script = ("import sys\nfrom vdcbench.cli import main\n"
              "try:\n    main(sys.argv[1:], prog_name='vdcbench')\n"
              "except SystemExit as exc:\n"
              "    print(exc.code, sorted(m for m in ('torch', 'submitit') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", script, "sweep", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "2 []", (done.stdout, done.stderr)


def test_times_and_memory_are_read_as_slurm_reads_them():
    from vdcbench.study.cluster import ClusterOptions, parse_memory, parse_time
    assert [parse_time(v, "t") for v in (90, "90", "4:00:00", "1-12:00:00", "0:00:30")] == \
        [90, 90, 240, 2160, 1]
    assert [parse_memory(v, "m") for v in ("32G", "32gb", "500 MB", 64, 1.5, "1.5T")] == \
        ["32G", "32G", "500M", "64G", "1536M", "1536G"]
    options = ClusterOptions(kind="slurm", partition="a", gpus=1).with_overrides(
        partition="b", gpus=None, time_minutes="2:00:00", memory="8GB", kind=None)
    assert (options.kind, options.partition, options.gpus, options.time_minutes,
            options.memory) == ("slurm", "b", 1, 120, "8G")
    # A job per cell on Slurm; on this machine, one job a core unless told.
    cores = len(os.sched_getaffinity(0))
    assert options.chunk_size(100) == 1
    assert ClusterOptions(kind="local").chunk_size(4 * cores) == 4
    assert ClusterOptions(kind="local").chunk_size(1) == 1
    assert ClusterOptions(kind="local", array_chunk=1).chunk_size(4 * cores) == 1


# ------------------------------------------------------------------------------ Slurm, faked
SBATCH = """#!/bin/sh
# A fake sbatch: keeps the script it was given and answers as Slurm does.
n=$(cat "$FAKE_SLURM/next" 2>/dev/null || echo 4242)
cp "$1" "$FAKE_SLURM/sbatch-$n.sh"
echo $((n + 1)) > "$FAKE_SLURM/next"
echo "Submitted batch job $n"
"""
SACCT = """#!/bin/sh
cat "$FAKE_SLURM/sacct.txt"
"""


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    folder = tmp_path / "fake-slurm"
    folder.mkdir()
    for name, text in (("sbatch", SBATCH), ("sacct", SACCT), ("srun", "#!/bin/sh\nexit 1\n")):
        (folder / name).write_text(text)
        (folder / name).chmod(0o755 | stat.S_IXUSR)
    (folder / "sacct.txt").write_text("JobID|State|NodeList\n")
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM", str(folder))
    return folder


def test_slurm_gets_one_job_array_with_the_options_and_status_reads_sacct(tmp_path, fake_slurm):
    from submitit.core.utils import DelayedSubmission
    cells = _write(tmp_path, HEAD + """
[sweep]
dataset = "synthetic"

[executor]
kind = "slurm"
partition = "gpu"
account = "vdc"
gpus = 1
cpus = 8
memory = "32G"
time = "4:00:00"
array_chunk = 2
max_parallel = 2
setup = ["module load cuda"]

[[cells]]
method = "random"
ipc = 1
condensation_seeds = [0, 1]
seeds = [0, 1, 2]
""")
    result = invoke("sweep", cells)
    assert result.exit_code == 0, result.output
    assert "submitted 6 cells in 3 jobs (slurm, partition gpu, account vdc, gpus 1, cpus 8, " \
           "memory 32G, time 240 min, 2 cells a job)" in result.output
    assert "next: vdcbench sweep status" in result.output          # Slurm: no waiting
    script = (fake_slurm / "sbatch-4242.sh").read_text()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --account=vdc", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --mem=32G", "#SBATCH --time=240",
                 "#SBATCH --array=0-2%2", "#SBATCH --job-name=vdcbench", "module load cuda"):
        assert line in script.splitlines(), (line, script)
    jobs = tmp_path / "cells-sweep" / "jobs"
    journal = json.loads((tmp_path / "cells-sweep" / "jobs.json").read_text())["cells"]
    assert [(v["job_id"], v["position"]) for _, v in sorted(journal.items())] == [
        ("4242_0", 0), ("4242_0", 1), ("4242_1", 0), ("4242_1", 1), ("4242_2", 0), ("4242_2", 1)]
    # Each array task's pickle holds its chunk of cells, in the file's order.
    chunk = DelayedSubmission.load(jobs / "4242_1_submitted.pkl")
    assert chunk.function.__name__ == "run_chunk"
    assert [(c.cell.condensation_seed, c.cell.seed) for c in chunk.args[0]] == [(0, 2), (1, 0)]

    (fake_slurm / "sacct.txt").write_text("JobID|State|NodeList\n4242_0|RUNNING|n1\n"
                                          "4242_1|PENDING|\n4242_2|TIMEOUT|n2\n")
    result = invoke("sweep", "status", cells)
    assert result.exit_code == 0, result.output
    assert "6 cells: 2 running, 2 pending, 2 failed" in result.output
    failed = [line for line in result.output.splitlines() if line.startswith("failed: ")]
    assert failed == [f"failed: {cell}: Slurm says TIMEOUT and the job left no result; log: "
                      f"{jobs / '4242_2_0_log.err'}"
                      for cell, v in sorted(journal.items()) if v["job_id"] == "4242_2"]

    # A rerun submits only the failed cells (one job of two: no array); running and pending
    # cells are left alone, and so is a pending cell named alone.
    result = invoke("sweep", cells)
    assert result.exit_code == 0, result.output
    assert "submitted 2 cells in 1 job " in result.output
    assert "#SBATCH --array" not in (fake_slurm / "sbatch-4243.sh").read_text()
    pending = next(k for k, v in journal.items() if v["job_id"] == "4242_1")
    result = invoke("sweep", cells, "--only", pending)
    assert result.exit_code == 0 and "nothing to submit" in result.output
    assert not (fake_slurm / "sbatch-4244.sh").exists()
    journal = json.loads((tmp_path / "cells-sweep" / "jobs.json").read_text())["cells"]
    assert sorted((v["job_id"], v["attempts"]) for v in journal.values()) == [
        ("4242_0", 1), ("4242_0", 1), ("4242_1", 1), ("4242_1", 1), ("4243", 2), ("4243", 2)]


def test_a_refused_submission_is_one_line_and_no_sacct_is_said(tmp_path, fake_slurm):
    cells = _write(tmp_path, FOUR_CELLS)
    (fake_slurm / "sbatch").write_text("#!/bin/sh\necho 'sbatch: error: invalid partition "
                                       "specified: nope' >&2\nexit 1\n")
    result = invoke("sweep", cells, "--executor", "slurm", "--partition", "nope")
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "error: submitting 4 job(s) failed: sbatch: error: invalid partition specified: nope")
    assert "submitit" not in result.output
    (fake_slurm / "sbatch").write_text(SBATCH)
    assert invoke("sweep", cells, "--executor", "slurm").exit_code == 0
    (fake_slurm / "sacct").unlink()
    result = invoke("sweep", "status", cells)
    assert result.exit_code == 0, result.output
    assert "4 cells: 4 unknown" in result.output and "submitit" not in result.output
    assert "no sacct" in result.output      # the reason, in a (wrapped) table cell


def test_no_srun_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))       # no srun, no sbatch
    result = invoke("sweep", _write(tmp_path, FOUR_CELLS), "--executor", "slurm")
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(
        "error: --executor slurm: no srun on PATH")


def test_what_a_local_jobs_folder_says_of_a_cell(tmp_path):
    """A result that raised, a result holding the cell's error, and a job whose process is
    gone without a result: each is a failure with its reason; a live controller is running."""
    from submitit.core.utils import cloudpickle_dump
    from vdcbench.study.jobs import FAILED, RUNNING, SUCCEEDED, Submission, read_job

    def submission(job_id: str, result: Path, position: int = 0, cell: str = "c") -> Submission:
        return Submission(cell=cell, job_id=job_id, kind="local", folder=tmp_path,
                          position=position, log=tmp_path / "log.err", result=result,
                          submitted="")

    raised = tmp_path / "raised.pkl"
    cloudpickle_dump(("error", "Traceback (most recent call last):\n  ...\nValueError: boom\n"),
                     raised)
    reading = read_job(submission("1", raised))
    assert (reading.state, reading.reason) == (FAILED, "the job raised ValueError: boom")
    returned = tmp_path / "returned.pkl"
    cloudpickle_dump(("success", [{"cell": "a", "error": None, "record": {"top1": 1.0},
                                   "condensed": True},
                                  {"cell": "c", "error": "archive x: no such file",
                                   "record": None, "condensed": False}]), returned)
    assert read_job(submission("2", returned, 0, "a")).state == SUCCEEDED
    reading = read_job(submission("2", returned, 1, "c"))
    assert (reading.state, reading.reason) == (FAILED, "archive x: no such file")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    reading = read_job(submission(str(gone.pid), tmp_path / "none.pkl"))
    assert reading.state == FAILED and "ended without a result" in reading.reason
    # A live process that is not this job's controller (a reused pid) is not the job.
    assert read_job(submission(str(os.getpid()), tmp_path / "none.pkl")).state == FAILED
    controller = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                                   "submitit.local._local", str(tmp_path)])
    try:
        # Its command line reads empty until its exec completes.
        wait_for(lambda: Path(f"/proc/{controller.pid}/cmdline").read_bytes() != b"")
        assert read_job(submission(str(controller.pid), tmp_path / "none.pkl")).state == RUNNING
    finally:
        controller.kill()
        controller.wait()


# ------------------------------------------------------------------------------ acceptance
def _children(pid: int) -> list[int]:
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat_file.parent.name))
    return found


def _records(folder: Path) -> dict[str, dict]:
    """Each record by path, less its wall time: the one field two runs of a cell legitimately
    differ in (every other field, weights hash and per-epoch top-1 included, is the same bits
    at one thread)."""
    found = {}
    for path in sorted(folder.rglob("seed*.json")):
        body = json.loads(path.read_text())
        del body["wall_seconds"]
        found[str(path.relative_to(folder))] = body
    return found


# Four cells of one epoch on synthetic (each validates 300 clips), in four local jobs at once,
# one killed and rerun, then the same four in this process: minutes on a loaded 2-core machine.
@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds a job's process in /proc")
def test_a_local_sweep_with_a_job_killed_mid_run_ends_with_a_sequential_runs_records(
        tmp_path, vdcbench_cache, monkeypatch):
    from vdcbench.study.executor import InProcessExecutor
    from vdcbench.study.jobs import cell_id
    from vdcbench.study.sweep import load_sweep

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "1")               # the jobs' thread count: one
    cells = _write(tmp_path, FOUR_CELLS)
    sweep = load_sweep(cells)
    ids = [cell_id(c) for c in sweep.cells]
    victim = ids[1]                                  # shares its archive with the first cell
    proc = start(["sweep", cells], cache=Path(vdcbench_cache), cwd=tmp_path)
    journal = tmp_path / "cells-sweep" / "jobs.json"
    wait_for(lambda: journal.is_file() or proc.poll() is not None, timeout=300)
    job = json.loads(journal.read_text())["cells"][victim]
    log = Path(job["log"])
    # Mid-run: the cell's evaluation has started (its archive is made) and no record exists.
    wait_for(lambda: (log.is_file() and "seed 1:" in log.read_text()) or proc.poll() is not None,
             timeout=600)
    assert not list((tmp_path / "cells-sweep" / "records").rglob("seed1.json"))
    running = invoke("sweep", "status", cells)
    assert running.exit_code == 0, running.output
    row = next(line for line in running.output.splitlines() if victim in line)
    assert "running" in row and job["job_id"] in row, running.output
    tasks = _children(int(job["job_id"]))
    assert len(tasks) == 1, tasks
    os.kill(tasks[0], signal.SIGKILL)
    code, output = finish(proc, timeout=900)
    assert code == 2, output
    assert "1 of 4 cells failed" in output and f"--only {victim}" in output
    assert f"job {job['job_id']} ended without a result" in output

    result = invoke("sweep", "status", cells)
    assert result.exit_code == 0, result.output
    assert "4 cells: 3 done, 1 failed; 1-epoch schedule, records NOT official" in result.output
    assert "its job ended without a result" in result.output

    result = invoke("sweep", cells, "--only", victim)
    assert result.exit_code == 0, result.output
    assert "submitted 1 cell in 1 job" in result.output
    assert "4 cells: 4 done" in result.output
    rerun = json.loads(journal.read_text())["cells"][victim]
    assert rerun["attempts"] == 2 and rerun["job_id"] != job["job_id"]

    # The same cells one after another in this process, into folders of their own.
    sequential = tmp_path / "sequential"
    alone = load_sweep(cells)
    alone = type(alone)(**{**alone.__dict__, "folder": sequential,
                           "results_dir": sequential / "records"})
    with one_thread():
        outcomes = list(InProcessExecutor().run(alone.commands()))
    assert all(o.record is not None for o in outcomes), [o.error for o in outcomes]
    swept = _records(tmp_path / "cells-sweep" / "records")
    assert len(swept) == 4
    assert swept == _records(sequential / "records")


# ------------------------------------------------------------------------------ the study
TINY_STUDY = """format = "vdcbench-studies"
format_version = 1
[studies.tiny]
title = "tiny"
paper = "nothing"
arms = ["random"]
ipc = [1]
labels = ["hard"]
seeds = [0]
rows = ["method"]
columns = ["ipc", "labels"]
"""


def test_a_study_through_submitits_local_executor_writes_the_in_process_records(
        tmp_path_factory, tmp_path, monkeypatch):
    """``study --executor local`` runs its cell as a job and writes the record and table the
    in-process default writes, bit for bit at one thread but the wall times."""
    from process_fixtures import copy_cache, shared_collection
    base, _, _ = shared_collection(tmp_path_factory)
    studies = _write(tmp_path, TINY_STUDY, "tiny.toml")
    monkeypatch.chdir(tmp_path)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "1")
    runs = {}
    for executor in ("inprocess", "local"):
        results, out = tmp_path / f"r-{executor}", tmp_path / f"o-{executor}"
        with one_thread():
            result = invoke("study", "tiny", "--studies-file", studies, "--dataset", "acts",
                            "--epochs", "1", "--results-dir", results, "--records", results,
                            "--output-dir", out, "--executor", executor,
                            env=copy_cache(base, tmp_path / f"cache-{executor}"))
        assert result.exit_code == 0, result.output
        cells = json.loads((out / "tiny-acts-table.json").read_text())["cells"]
        for cell in cells:
            cell.pop("wall_seconds")
        runs[executor] = (_records(results), cells)
    assert "job " in result.output and "(log " in str(result.output).replace("\n", "")
    assert list((tmp_path / "o-local" / "jobs").glob("*_0_result.pkl"))
    assert len(runs["local"][0]) == 1
    assert runs["local"] == runs["inprocess"]


def test_the_readmes_slurm_example_is_a_sweep_file(tmp_path):
    from vdcbench.study.sweep import parse_sweep
    import tomllib
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Many cells on a cluster", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    sweep = parse_sweep(tomllib.loads(example), tmp_path / "cells.toml")
    assert len(sweep.cells) == 2 * 2 * 3 + 1
    assert sweep.executor.kind == "slurm" and sweep.executor.time_minutes == 240


def test_cells_with_committed_records_are_done_and_never_submitted(tmp_path, fake_slurm):
    """A cell is done when a record of it exists in any folder the sweep looks in (here the
    repository's own submissions), whatever archive it came from; naming it alone submits
    nothing, and only the cell without a record goes to Slurm."""
    records = Path(__file__).resolve().parents[1] / "submissions" / "records"
    cells = _write(tmp_path, HEAD + f"""
[sweep]
dataset = "synthetic"
records = ["{records}"]

[[cells]]
method = "random"
ipc = 1
seeds = [0, 1, 7]
""")
    done = "random-synthetic-ipc1-t8-hard-s0-official-minic3d-seed0"
    result = invoke("sweep", "status", cells)
    assert result.exit_code == 0, result.output
    assert "3 cells: 2 done, 1 to run" in result.output
    assert "top-1 " in result.output
    result = invoke("sweep", cells, "--only", done, "--executor", "slurm")
    assert result.exit_code == 0 and "nothing to submit" in result.output, result.output
    assert not list(fake_slurm.glob("sbatch-*.sh"))
    result = invoke("sweep", "--executor", "slurm", cells)          # options first work too
    assert result.exit_code == 0 and "submitted 1 cell in 1 job" in result.output, result.output
    chunk = (tmp_path / "cells-sweep" / "jobs" / "4242_submitted.pkl")
    from submitit.core.utils import DelayedSubmission
    assert [c.cell.seed for c in DelayedSubmission.load(chunk).args[0]] == [7]
