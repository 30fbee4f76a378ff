"""The CPU teacher profile, experts and the user-error fixes wired through the CLI (issues 17, 14):
run-baseline --teacher-profile/--train-teacher/--train-experts, evaluate and results
--teacher-profile, SIGINT taken back when inherited ignored, Ctrl-C under the test runner, and
one-line refusals before any work (or torch)."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from vdcbench.cli import main
from vdcbench.core.errors import VdcError
from vdcbench.protocol import LATEST_VERSION, load_protocol, teacher_profile


def _run(*args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)


@pytest.fixture()
def cpu_profile():
    return teacher_profile("cpu", load_protocol(LATEST_VERSION))


# ------------------------------------------------------------------------------- SIGINT ignored
# The child starts with SIGINT ignored (as a background job of a non-interactive shell does),
# then sends itself a real SIGINT inside the command; the library is a stub, so no torch.
IGNORED_CHILD = """
import os, signal, sys, time, types
assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
def stop(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(20)
    print("SIGINT did nothing", file=sys.stderr)
stub = types.ModuleType("vdcbench.evaluation.api")
stub.evaluate_archive = stub.run_baseline = stop
sys.modules["vdcbench.evaluation.api"] = stub
from vdcbench.cli import main
main(sys.argv[1:], prog_name="vdcbench")
"""


def test_sigint_inherited_ignored_still_stops_a_command_with_its_hint(tmp_path):
    archive = tmp_path / "a.tar"
    archive.write_bytes(b"")
    done = subprocess.run([sys.executable, "-c", IGNORED_CHILD, "evaluate", str(archive)],
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert done.returncode == 130, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted"), lines
    assert "finished seeds are kept" in lines[0]


def test_the_group_restores_an_ignored_sigint_afterwards(monkeypatch):
    from vdcbench.cli.app import sigint_taken_back
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with sigint_taken_back():
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    # A handler that is not "ignored" is left alone. Set one of our own: under nohup or a
    # background job this process itself starts with SIGINT ignored.
    def own_handler(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGINT, own_handler)
    try:
        with sigint_taken_back():
            assert signal.getsignal(signal.SIGINT) is own_handler
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------- Ctrl-C under CliRunner
def _interrupted_fit(*args, **kwargs):
    from vdcbench.train.interrupt import FitInterrupted
    raise FitInterrupted(epoch=2, epochs=30, step=4, steps=9, epochs_saved=2, checkpointed=True)


TRAIN_VIDEOS = 500


def _fake_cost(real=None):
    from vdcbench.train.teacher import TeacherCost, teacher_recipe_for

    def cost(protocol, dataset, net="minic3d", profile=None, seconds_per_clip=None,
             device="cpu"):
        # The declared recipe's arithmetic at a fixed rate and size: no measurement, no data.
        recipe = teacher_recipe_for(protocol, dataset, net, profile)
        return TeacherCost(recipe=recipe, train_videos=TRAIN_VIDEOS,
                           clips=recipe.epochs * TRAIN_VIDEOS,
                           seconds_per_clip=seconds_per_clip or 0.5)
    return cost


def test_teacher_train_interrupted_stops_the_test_session_with_the_resume_hint(monkeypatch):
    import vdcbench.train.teacher as teacher
    monkeypatch.setattr(teacher, "teacher_cost", _fake_cost(teacher.teacher_cost))
    monkeypatch.setattr(teacher, "train_teacher", _interrupted_fit)
    with pytest.raises(KeyboardInterrupt) as caught:
        _run("teacher", "train", "--dataset", "synthetic", "--profile", "cpu")
    hint = str(caught.value)
    assert hint.startswith("interrupted in epoch 3 of 30 after step 4 of 9; 2 finished epochs")
    assert "resume with `vdcbench teacher train --dataset synthetic --net minic3d --profile cpu`" \
        in hint


def test_run_baseline_train_teacher_prints_the_estimate_and_offers_the_cpu_profile(monkeypatch):
    import vdcbench.cli.baseline as baseline
    import vdcbench.evaluation.api as api
    import vdcbench.train.teacher as teacher
    from vdcbench.evaluation.api import CondensedArchive
    ensured = []
    monkeypatch.setattr(baseline, "generate_synthetic", lambda *a, **k: None)
    monkeypatch.setattr(teacher, "find_teacher", lambda *a, **k: None)
    monkeypatch.setattr(teacher, "teacher_cost", _fake_cost(teacher.teacher_cost))
    monkeypatch.setattr(api, "ensure_teacher",
                        lambda protocol, dataset, net, **kw: ensured.append(kw["profile"]))
    made = []

    def run_baseline(name, **kwargs):
        made.append(kwargs)
        return CondensedArchive(path=Path("x.tar"), sha256="0" * 64, bytes=10, wall_seconds=1.0,
                                condensed=None)
    monkeypatch.setattr(api, "run_baseline", run_baseline)
    args = ("run-baseline", "rded", "--dataset", "synthetic", "--ipc", "1", "--train-teacher")
    with_protocol = _run(*args)
    assert with_protocol.exit_code == 0, with_protocol.output
    line = next(x for x in with_protocol.output.splitlines() if x.startswith("teacher minic3d"))
    assert "profile protocol (recipe" in line
    protocol = load_protocol(LATEST_VERSION)
    hours = protocol.teacher_recipe(protocol.dataset("synthetic"), "minic3d").epochs \
        * TRAIN_VIDEOS * 0.5 > 3600
    assert ("--teacher-profile cpu trains a teacher in about" in line) is hours
    assert ensured == [None] and made[0]["teacher_profile"] is None

    chosen = _run(*args, "--teacher-profile", "cpu")
    assert chosen.exit_code == 0, chosen.output
    line = next(x for x in chosen.output.splitlines() if x.startswith("teacher minic3d"))
    assert "profile cpu (recipe" in line and "--teacher-profile cpu trains" not in line
    assert ensured[-1].name == "cpu" and made[-1]["teacher_profile"] == "cpu"

    setting = _run(*args, "--set", "teacher_profile=cpu")      # the method's setting names it
    assert setting.exit_code == 0, setting.output
    line = next(x for x in setting.output.splitlines() if x.startswith("teacher minic3d"))
    assert "profile cpu (recipe" in line and "--teacher-profile cpu trains" not in line
    assert ensured[-1].name == "cpu"


def test_run_baseline_interrupted_teacher_says_how_to_resume(monkeypatch, tmp_path):
    import vdcbench.cli.baseline as baseline
    import vdcbench.evaluation.api as api
    import vdcbench.train.teacher as teacher
    monkeypatch.setattr(baseline, "generate_synthetic", lambda *a, **k: None)
    monkeypatch.setattr(teacher, "find_teacher", lambda *a, **k: None)
    monkeypatch.setattr(teacher, "teacher_cost", _fake_cost(teacher.teacher_cost))
    monkeypatch.setattr(api, "ensure_teacher", _interrupted_fit)
    monkeypatch.setattr(api, "run_baseline", lambda *a, **k: pytest.fail("condensed anyway"))
    with pytest.raises(KeyboardInterrupt) as caught:
        _run("run-baseline", "herding", "--dataset", "synthetic", "--ipc", "1",
             "--teacher-profile", "cpu", "--train-teacher", "-o", tmp_path / "h.tar")
    assert "2 finished epochs are saved; resume with `vdcbench run-baseline herding --dataset " \
           "synthetic --ipc 1 --label-strategy hard --seed 0 --teacher-profile cpu " \
           f"-o {tmp_path / 'h.tar'} --train-teacher`" in str(caught.value)


# ------------------------------------------------------------------ user errors, one line each
def test_unknown_teacher_profile_is_one_line_for_every_command(tmp_path):
    (tmp_path / "a.tar").write_bytes(b"")
    for args in (("run-baseline", "rded", "--dataset", "synthetic", "--ipc", "1",
                  "--teacher-profile", "gpu"),
                 ("evaluate", tmp_path / "a.tar", "--teacher-profile", "gpu"),
                 ("results", tmp_path, "--table", "methods", "--teacher-profile", "gpu")):
        result = _run(*args)
        assert result.exit_code == 2, result.output
        assert "unknown teacher profile 'gpu'" in result.output and "Traceback" not in result.output


def test_a_profile_and_a_disagreeing_method_setting_are_refused(monkeypatch):
    import vdcbench.cli.baseline as baseline
    monkeypatch.setattr(baseline, "generate_synthetic", lambda *a, **k: pytest.fail("generated"))
    result = _run("run-baseline", "rded", "--dataset", "synthetic", "--ipc", "1",
                  "--teacher-profile", "cpu", "--set", "teacher_profile=protocol")
    assert result.exit_code == 2
    assert "teacher profile 'cpu' and the rded setting teacher_profile=protocol disagree" \
        in result.output


def test_resolve_teacher_profile_sets_the_method_setting(cpu_profile):
    from vdcbench.evaluation.run_profile import resolve_teacher_profile
    from vdcbench.methods import get_method
    protocol = load_protocol(LATEST_VERSION)
    settings = {}
    assert resolve_teacher_profile(protocol, get_method("herding"), settings, "cpu") == cpu_profile
    assert settings == {"teacher_profile": "cpu"}
    settings = {"teacher_profile": "cpu"}
    assert resolve_teacher_profile(protocol, get_method("rded"), settings, None) == cpu_profile
    settings = {}     # Random has no such setting: the task carries the profile
    assert resolve_teacher_profile(protocol, get_method("random"), settings, "cpu") == cpu_profile
    assert settings == {}
    assert resolve_teacher_profile(protocol, get_method("random"), {}, "protocol") is None


def test_evaluate_refuses_an_unknown_net_before_torch(tmp_path):
    from test_cli_startup import _run_fresh
    (tmp_path / "file.tar").write_bytes(b"")
    report, message, _ = _run_fresh(("evaluate", "file.tar", "--net", "resnet"), tmp_path)
    assert report["code"] == 2 and report["heavy"] == [], report
    assert len(message) == 1 and "unknown net 'resnet'" in message[0]


def test_net_choice_is_reexported_from_scoring():
    from vdcbench.evaluation import net_choice, scoring
    assert scoring.parse_nets is net_choice.parse_nets
    assert (scoring.ALL_NETS, scoring.EVERY_NET) == ("all", "every")


def test_unknown_data_set_says_where_it_looked(tmp_path, monkeypatch):
    from vdcbench.data.datasets import resolve_dataset
    protocol = load_protocol(LATEST_VERSION)
    monkeypatch.setenv("VDCBENCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(VdcError, match=r"looked for a prepared store in .*cache.stores, under "
                                       r"\$VDCBENCH_CACHE"):
        resolve_dataset(protocol, "my-footage")
    monkeypatch.delenv("VDCBENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(VdcError, match="set VDCBENCH_CACHE to the cache root"):
        resolve_dataset(protocol, "my-footage")


def test_run_baseline_refuses_a_missing_output_folder_before_condensing(tmp_path, monkeypatch):
    import vdcbench.evaluation.api as api
    monkeypatch.setattr(api, "CondensationTask", lambda *a, **k: pytest.fail("condensed"))
    with pytest.raises(VdcError, match="does not exist"):
        api.run_baseline("random", dataset="synthetic", ipc=1,
                         output=tmp_path / "nosuchdir" / "x.tar")
    with pytest.raises(VdcError, match="it is a directory"):
        api.run_baseline("random", dataset="synthetic", ipc=1, output=tmp_path)


# --------------------------------------------------------------------------------- progress
def test_teacher_steps_reach_a_log_as_plain_lines(capsys):
    from vdcbench.cli.progress import RichProgress
    with RichProgress() as progress:
        progress.teacher_started("minic3d", "acts", 2)
        progress.teacher_step("minic3d", "acts", 0, 2, 3, 4, 1.25)
    err = capsys.readouterr().err
    assert "teacher minic3d on acts" in err and "epoch 1/2 step 3/4 loss 1.250" in err


# ---------------------------------------------------------------------------------- experts
def test_train_experts_trains_what_the_method_reads_and_nothing_for_others(monkeypatch):
    import vdcbench.methods.mtt as mtt
    from vdcbench.evaluation import api
    from vdcbench.evaluation.progress import Progress
    from vdcbench.methods import get_method
    calls, events = [], []
    monkeypatch.setattr(mtt, "prepare_experts",
                        lambda method, protocol, dataset, device, progress: (
                            calls.append(method.name), progress(0, 2, 1, 3, 0.5), [0, 1])[-1])

    class Seen(Progress):
        def experts_started(self, method, dataset):
            events.append(("started", method))

        def expert_epoch(self, *args):
            events.append(("epoch", *args))

        def experts_finished(self, method, dataset, trained):
            events.append(("finished", trained))
    protocol = load_protocol(LATEST_VERSION)
    dataset = protocol.dataset("synthetic")
    api._ensure_experts(get_method("random")(), protocol, dataset, "cpu", Seen())
    assert calls == [] and events == []
    api._ensure_experts(get_method("mtt")(), protocol, dataset, "cpu", Seen())
    assert calls == ["mtt"]
    assert events == [("started", "mtt"), ("epoch", 0, 2, 1, 3, 0.5), ("finished", (0, 1))]


# ------------------------------------------------------------------------- tasks and profiles
def test_the_task_loads_a_profile_teacher_through_its_public_api(monkeypatch, cpu_profile):
    import vdcbench.methods.base as base
    from vdcbench.core.artifacts import ArtifactStore
    from vdcbench.methods.base import CondensationTask
    loaded = []
    monkeypatch.setattr(base, "load_teacher", lambda protocol, dataset, net, device, profile: (
        loaded.append((net, profile)), f"{net}/{profile and profile.name}")[-1])
    protocol = load_protocol(LATEST_VERSION)
    track = protocol.track("synthetic", "ipc1-t8")
    task = CondensationTask(protocol, track, "soft", 0, ArtifactStore(Path("/nonexistent")),
                            teacher_profile=cpu_profile)
    assert task.teacher() == "minic3d/cpu"                      # the task's profile
    assert task.teacher("minic3d", "protocol") == "minic3d/None"
    assert task.teacher("minic3d", f"cpu@{cpu_profile.sha256}") == "minic3d/cpu"
    assert task.teacher("minic3d", cpu_profile) == "minic3d/cpu"
    assert loaded == [("minic3d", cpu_profile), ("minic3d", None)]   # each loaded once


def test_random_soft_labels_use_and_record_the_task_profile(monkeypatch, cpu_profile):
    import types

    import torch

    import vdcbench.methods.base as base
    from vdcbench.core.artifacts import ArtifactStore
    from vdcbench.methods import get_method
    from vdcbench.methods.base import CondensationTask
    loaded = []

    def load_teacher(protocol, dataset, net, device, profile):
        loaded.append(profile)
        return types.SimpleNamespace(net=lambda x: torch.zeros(x.shape[0], 10))
    monkeypatch.setattr(base, "load_teacher", load_teacher)
    protocol = load_protocol(LATEST_VERSION)
    track = protocol.track("synthetic", "ipc1-t8")
    videos = torch.zeros(10, 3, 8, 4, 4, dtype=torch.uint8)

    def task(labels):
        return CondensationTask(protocol, track, labels, 0, ArtifactStore(Path("/nonexistent")),
                                teacher_profile=cpu_profile)
    made = task("soft").finish(get_method("random")(), videos, torch.arange(10))
    assert loaded == [cpu_profile] and made.soft_labels.shape == (10, 10)
    assert made.method.config == {"teacher_profile": f"cpu@{cpu_profile.sha256}"}
    # Hard labels use no teacher: nothing is loaded and nothing claimed.
    made = task("hard").finish(get_method("random")(), videos, torch.arange(10))
    assert loaded == [cpu_profile] and made.method.config == {}
    # A method whose config names the profile is taken at its word, over the task's.
    herding = get_method("herding")
    config = dataclasses.replace(herding.Config(), teacher_profile="protocol")
    made = task("soft").finish(herding(config), videos, torch.arange(10))
    assert loaded[-1] is None and made.method.config["teacher_profile"] == "protocol"


# ---------------------------------------------------------------------------------- results
def test_results_table_of_a_profile_says_so_and_holds_that_profile_alone(tmp_path):
    from vdcbench.evaluation.records import join_profile, load_records
    records_dir = Path(__file__).resolve().parents[1] / "submissions" / "records"
    records = [r for r in load_records(records_dir) if r.key.net == "minic3d"]
    cpu = teacher_profile("cpu")
    for record in records:
        record.to_disk(tmp_path)
        if record.method.name == "rded":
            dataclasses.replace(record, key=dataclasses.replace(
                record.key, teacher_profile=join_profile(cpu.name, cpu.sha256))).to_disk(tmp_path)
    mixed = _run("results", tmp_path, "--table", "methods")
    assert mixed.exit_code == 2 and "pick one with --teacher-profile" in mixed.output
    table = _run("results", tmp_path, "--table", "methods", "--teacher-profile", "cpu")
    assert table.exit_code == 0, table.output
    assert "teacher profile cpu" in table.output and "rded" in table.output
    assert "herding" not in table.output
    markdown = _run("results", tmp_path, "--table", "methods", "--teacher-profile", "cpu",
                    "--markdown")
    assert markdown.output.startswith("teacher profile cpu\n")
    protocol_table = _run("results", tmp_path, "--table", "methods", "--teacher-profile",
                          "protocol")
    assert protocol_table.exit_code == 0, protocol_table.output
    assert "teacher profile" not in protocol_table.output and "herding" in protocol_table.output
