"""Progress in a log: plain lines (what, done/total, rate, ETA), the first and the last and at
most one per interval between, never escape codes or carriage returns (issue 17 item 5)."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from vdcbench.cli.plain_progress import PlainProgress, clock_text, interval_from_env
from vdcbench.core.errors import VdcError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _bar(interval: float = 10.0):
    stream, clock = io.StringIO(), Clock()
    return PlainProgress(stream, interval=interval, clock=clock), stream, clock


def test_first_line_then_at_most_one_per_interval_then_the_last():
    bar, stream, clock = _bar(interval=10)
    task = bar.add_task("teacher minic3d on acts", total=100, info="")
    for step in range(1, 101):
        clock.now = step * 0.5                 # 50 s of work, a report every half second
        bar.update(task, completed=step, info=f"loss {1 / step:.3f}")
    bar.stop()
    lines = stream.getvalue().splitlines()
    # t=0 (first), then t=10, 20, 30, 40 s, then the last at 50 s: not one line per report.
    assert len(lines) == 6, lines
    assert lines[0].startswith("teacher minic3d on acts: 0/100 (0%)")
    assert lines[1].startswith("teacher minic3d on acts: 20/100 (20%)")
    last = lines[-1]
    assert last.startswith("teacher minic3d on acts: 100/100 (100%)") and "ETA" not in last
    assert "elapsed 0:00:50" in last and last.endswith("loss 0.010")


def test_rate_and_eta_count_from_the_first_report_not_from_resumed_work():
    bar, stream, clock = _bar(interval=0)
    task = bar.add_task("prepare acts", total=1000, info="")
    clock.now = 1.0
    bar.update(task, completed=600)            # 600 videos found done (a resumed prepare)
    clock.now = 11.0
    bar.update(task, completed=620)            # 20 decoded in 10 s: 2/s, 380 left: 190 s
    line = stream.getvalue().splitlines()[-1]
    assert "620/1000 (62%)" in line and "2.0/s" in line and f"ETA {clock_text(190)}" in line


def test_a_second_phase_of_one_task_is_reported_after_the_first_finished():
    """A distillation's one task: its initial selection over 10 classes, then 5 iterations."""
    bar, stream, clock = _bar(interval=10)
    task = bar.add_task("dm on synthetic ipc1-t8", total=None, info="")
    for done in range(1, 11):
        clock.now = done * 0.1
        bar.update(task, completed=done, total=10, info="classes")
    for iteration in range(1, 6):
        clock.now = 1 + iteration * 30.0         # 30 s an iteration
        bar.update(task, completed=iteration, total=5, info=f"loss {1 / iteration:.3f}")
    bar.stop()
    lines = stream.getvalue().splitlines()
    assert any(line.startswith("dm on synthetic ipc1-t8: 10/10 (100%)") for line in lines)
    iterations = [line for line in lines if "/5 (" in line]
    assert len(iterations) == 5, lines         # 30 s apart: every one passes the interval
    assert "30.0 s each" in iterations[1] and "ETA 0:01:30" in iterations[1]
    assert iterations[-1].startswith("dm on synthetic ipc1-t8: 5/5 (100%)")
    assert iterations[-1].endswith("loss 0.200")


def test_slow_units_show_seconds_each_and_an_unknown_total_shows_done():
    bar, stream, clock = _bar(interval=0)
    epochs = bar.add_task("seed 0", total=300, info="")
    clock.now = 40.0
    bar.update(epochs, completed=1)
    clock.now = 120.0
    bar.update(epochs, completed=3)            # 2 epochs in 80 s
    assert "40.0 s each" in stream.getvalue().splitlines()[-1]
    steps = bar.add_task("rded on synthetic ipc1-t8", total=None, info="")
    clock.now = 130.0
    bar.update(steps, completed=7, info="class 7")
    assert stream.getvalue().splitlines()[-1].startswith("rded on synthetic ipc1-t8: 7 done")


def test_stop_writes_where_an_unfinished_task_stood_once():
    bar, stream, clock = _bar(interval=10)
    task = bar.add_task("verify", total=50, info="")
    clock.now = 3.0
    bar.update(task, completed=12)             # inside the interval: no line yet
    assert len(stream.getvalue().splitlines()) == 1
    bar.stop()
    bar.stop()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("verify: 12/50 (24%)")


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("VDCBENCH_PROGRESS_INTERVAL", raising=False)
    assert interval_from_env() == 10.0
    monkeypatch.setenv("VDCBENCH_PROGRESS_INTERVAL", "2.5")
    assert interval_from_env() == 2.5
    for bad in ("soon", "-1", "nan", "inf"):
        monkeypatch.setenv("VDCBENCH_PROGRESS_INTERVAL", bad)
        with pytest.raises(VdcError, match="VDCBENCH_PROGRESS_INTERVAL"):
            interval_from_env()


def test_progress_bar_is_plain_when_stderr_is_not_a_terminal(tmp_path):
    """In a child whose stderr is a file, the CLI's own progress_bar (what prepare, teacher train,
    evaluate and run-baseline draw with) writes lines, not a rich bar."""
    script = ("import time\n"
              "from vdcbench.cli.output import progress_bar\n"
              "with progress_bar() as bar:\n"
              "    task = bar.add_task('prepare acts', total=3, info='')\n"
              "    for done in range(1, 4):\n"
              "        time.sleep(0.05)\n"
              "        bar.update(task, completed=done, info='1.0 videos/s')\n")
    log = tmp_path / "job.log"
    with open(log, "w") as fh:
        done = subprocess.run([sys.executable, "-c", script], stdout=fh, stderr=fh, timeout=60,
                              env=dict(os.environ, VDCBENCH_PROGRESS_INTERVAL="0"))
    text = log.read_text()
    assert done.returncode == 0, text
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    assert lines[0].startswith("prepare acts: 0/3 (0%)")
    assert lines[-1].startswith("prepare acts: 3/3 (100%)") and "videos/s" in lines[-1]


@pytest.mark.slow   # 42 s on a loaded core (3 Dec); CI runs it in its `pytest -m slow` step
def test_an_evaluation_logged_to_a_file_shows_plain_seed_lines(tmp_path, random_ipc1,
                                                                vdcbench_cache):
    """The real command, stdout and stderr to a file: a line when the seed starts, its last epoch,
    and the tables; no escape codes, no carriage returns."""
    log = tmp_path / "evaluate.log"
    with open(log, "w") as fh:
        done = subprocess.run(
            [sys.executable, "-m", "vdcbench", "evaluate", str(random_ipc1[1]), "--seeds", "0",
             "--epochs", "1", "--results-dir", str(tmp_path / "records")],
            stdout=fh, stderr=fh, timeout=600,
            env=dict(os.environ, VDCBENCH_CACHE=vdcbench_cache, OMP_NUM_THREADS="1"))
    text = log.read_text()
    assert done.returncode == 0, text
    assert "\x1b" not in text and "\r" not in text
    assert "seed 0: 0/1 (0%)" in text and "seed 0: 1/1 (100%)" in text
    assert "top-1" in text
