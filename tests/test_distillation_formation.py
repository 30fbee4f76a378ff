"""The distillation methods on temporal tracks: DM, MTT, DATM and EDC optimise T-frame synthetic
videos through the track's formation (the study's co-optimised slide-window): each iteration a
fresh window of each video, keyed by the iteration, with gradients only in the frames it read;
the archive holds T frames and records the formation; two runs write the same bytes."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from trajectory_fixtures import TINY_RECIPE, tiny_experts
from vdcbench.archive import read_archive, write_archive
from vdcbench.cli import main
from vdcbench.core.artifacts import ArtifactStore
from vdcbench.methods.base import CondensationTask
from vdcbench.methods.bn_statistics import bn_layers, class_statistics
from vdcbench.methods.datm import DATM, expert_logits
from vdcbench.methods.distillation import resolved_config, run_identity, window_rng
from vdcbench.methods.dm import DM, DM_KEY, DMObjective, real_views
from vdcbench.methods.dm import Config as DMConfig
from vdcbench.methods.edc import EDC, EDCObjective, MatchedTeacher
from vdcbench.methods.edc import Config as EDCConfig
from vdcbench.methods.mtt import MTT, instance_loss, plan_student, unroll_student
from vdcbench.methods.shared_augment import shared_augment
from vdcbench.models import build_net
from vdcbench.train.augment import Normalize
from vdcbench.train.formation import Formation

SLIDE = Formation("slide-window")
T16 = "ipc2-t16"


def _task(protocol, folder, track=T16, strategy="hard", progress=None):
    return CondensationTask(protocol, protocol.track("synthetic", track), strategy, 0,
                            ArtifactStore(folder), progress=progress)


def _indexed_videos(count: int, frames: int = 16, size: int = 56, seed: int = 0) -> torch.Tensor:
    """Hand-made videos whose frame t is brightness t / (2 frames) under a little texture, so
    every frame differs from every other and from the real clips."""
    generator = torch.Generator().manual_seed(seed)
    ramp = torch.arange(frames, dtype=torch.float32).view(1, 1, frames, 1, 1) / (2 * frames)
    return 0.25 + ramp + 0.2 * torch.rand(count, 3, frames, size, size, generator=generator)


def _changed_frames(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """(N, T) bool: which frames of each video moved."""
    return (after != before).any(dim=4).any(dim=3).any(dim=1)


def _window(start: int, frames: int = 16) -> torch.Tensor:
    mask = torch.zeros(frames, dtype=torch.bool)
    mask[start:start + 8] = True
    return mask


# --------------------------------------------------------------- gradients stay in the window
def test_a_dm_step_moves_only_the_frames_of_the_windows_it_drew(protocol, tmp_path):
    task = _task(protocol, tmp_path)
    clips, labels = _indexed_videos(2), torch.tensor([0, 1])
    starts_seen = set()
    for iteration in (0, 1, 2):
        objective = DMObjective(task, DMConfig(batch_real=1, momentum=0.0, lr=1.0),
                                clips.clone(), labels)
        assert objective.formation == SLIDE          # the track's default above 8 frames
        objective.step(iteration)
        changed = _changed_frames(clips, objective.clips.detach())
        for row, label in enumerate(labels.tolist()):
            start = SLIDE.start(16, window_rng(task, DM_KEY, iteration, label))
            assert changed[row].tolist() == _window(start).tolist(), (iteration, row, start)
            starts_seen.add(start)
    assert len(starts_seen) > 1       # the window slides from one iteration to the next


def test_dm_matches_against_8_frame_real_clips_on_a_16_frame_track(protocol, tmp_path):
    task = _task(protocol, tmp_path)
    members = np.flatnonzero(task.train.labels.numpy() == 2)
    views = real_views(task.train, members, 3, 56, task, np.random.default_rng(0))
    assert views.shape == (3, 3, 8, 56, 56)


def test_the_unrolled_student_reaches_only_the_frames_of_each_instances_window(protocol):
    torch.manual_seed(0)
    net = build_net(protocol.net("minic3d-in"), 10).eval()
    start = {name: p.detach().clone() for name, p in net.named_parameters()}
    clips = _indexed_videos(3, size=48).requires_grad_(True)
    plan = plan_student(np.random.default_rng(1), 3, 1, 0, 48, (0.5, 1.0), (0.75, 4 / 3), True)
    normalize = Normalize(protocol.trainer.normalize_mean, protocol.trainer.normalize_std)
    student = unroll_student(net, start, clips, torch.tensor([0, 1, 2]), torch.tensor(0.1),
                             plan, normalize, formation=SLIDE,
                             windows=np.random.default_rng(5))
    sum((student[n] - start[n]).pow(2).sum() for n in start).backward()
    moved = clips.grad.abs().amax(dim=(1, 3, 4)) > 0                      # (N, T)
    # One generator draws a window per instance, in the minibatch's order.
    draws = np.random.default_rng(5)
    for row in plan.batches[0]:
        assert moved[int(row)].tolist() == _window(SLIDE.start(16, draws)).tolist()


def test_a_segment_step_averages_its_clips_per_instance_and_reaches_every_frame(protocol):
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, 0.0], [0.0, 0.0],
                           [1.0, 0.0]])
    owners = np.array([0, 0, 1, 1, 1, 1])
    # Instance 0 forms two clips, instance 1 four: each weighs the same.
    per_clip = F.cross_entropy(logits, torch.tensor([0, 0, 1, 1, 1, 1]), reduction="none")
    expected = (per_clip[:2].mean() + per_clip[2:].mean()) / 2
    assert torch.allclose(instance_loss(logits, torch.tensor([0, 1]), owners, False), expected)
    soft = torch.tensor([[0.0, 5.0], [5.0, 0.0]], requires_grad=True)
    value = instance_loss(logits, soft, owners, True)
    targets = F.softmax(soft.detach(), dim=1)[torch.from_numpy(owners)]
    clip_loss = -(targets * F.log_softmax(logits, dim=1)).sum(1)
    assert torch.allclose(value, (clip_loss[:2].mean() + clip_loss[2:].mean()) / 2)
    value.backward()
    assert soft.grad is not None and float(soft.grad.abs().sum()) > 0

    torch.manual_seed(0)
    net = build_net(protocol.net("minic3d-in"), 10).eval()
    start = {name: p.detach().clone() for name, p in net.named_parameters()}
    clips = _indexed_videos(2, size=48).requires_grad_(True)
    plan = plan_student(np.random.default_rng(1), 2, 1, 0, 48, None, (1.0, 1.0), False)
    normalize = Normalize(protocol.trainer.normalize_mean, protocol.trainer.normalize_std)
    student = unroll_student(net, start, clips, torch.tensor([0, 1]), torch.tensor(0.1), plan,
                             normalize, formation=Formation("segment"))
    sum((student[n] - start[n]).pow(2).sum() for n in start).backward()
    assert bool((clips.grad.abs().amax(dim=(1, 3, 4)) > 0).all())       # both segments entered


class _BNNet(nn.Module):
    """A small BatchNorm net of the teacher's kind: running statistics of data, eval mode."""

    def __init__(self, classes: int = 3):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(),
                                  nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, classes))

    def forward(self, x):
        return self.body(x)


def _edc_teacher(normalize: Normalize) -> MatchedTeacher:
    net = _BNNet()
    net.train()
    data = normalize(torch.rand(12, 3, 8, 16, 16, generator=torch.Generator().manual_seed(3)))
    with torch.no_grad():
        net(data)
    net.eval()
    return MatchedTeacher("bn", net, class_statistics(net, [(data, torch.arange(12) % 3)], 3))


def test_an_edc_step_moves_only_the_frames_of_the_windows_it_drew():
    normalize = Normalize([0.45] * 3, [0.225] * 3)
    teacher = _edc_teacher(normalize)
    assert bn_layers(teacher.net)
    clips = _indexed_videos(4, size=16).clamp(0.0, 1.0)
    labels = torch.tensor([0, 1, 2, 0])
    objective = EDCObjective(EDCConfig(iterations=3, batch_size=4, lr=0.05), clips.clone(),
                             labels, [teacher], normalize,
                             shared_augment((0.5, 1.0), (0.75, 4 / 3), True),
                             lambda iteration: np.random.default_rng([9, iteration]),
                             formation=SLIDE,
                             windows_for_iteration=lambda i: np.random.default_rng([7, i]))
    before = objective.clips.clone()
    objective.step(0)
    changed = _changed_frames(before, objective.clips)
    draws = np.random.default_rng([7, 0])
    for row in range(4):
        assert changed[row].tolist() == _window(SLIDE.start(16, draws)).tolist()
    with pytest.raises(ValueError, match="generator"):
        EDCObjective(EDCConfig(), clips, labels, [teacher], normalize,
                     shared_augment((0.5, 1.0), (0.75, 4 / 3), True),
                     lambda iteration: np.random.default_rng(iteration), formation=SLIDE)


# ------------------------------------------------------------------------ identity, manifest
def test_an_8_frame_identity_and_config_name_no_formation_and_a_16_frame_one_resolves_it(
        protocol, tmp_path):
    t8, t16 = _task(protocol, tmp_path, "ipc1-t8"), _task(protocol, tmp_path)
    for method in (DM(), MTT(), DATM(), EDC()):
        assert "formation" not in run_identity(t8, method)["config"]
        assert "formation" not in resolved_config(t8, method)
        assert run_identity(t16, method)["config"]["formation"] == "slide-window"
        explicit = type(method)(dataclasses.replace(method.config, formation="slide-window"))
        # The default and its explicit spelling compute the same clips: one cache entry.
        assert run_identity(t16, explicit) == run_identity(t16, method)
        segment = type(method)(dataclasses.replace(method.config, formation="segment"))
        assert run_identity(t16, segment) != run_identity(t16, method)


@pytest.mark.parametrize("args, words", [
    (["--ipc", "1", "--set", "formation=slide-window"], "slide-window needs more than 8 frames"),
    (["--ipc", "2", "--frames", "16", "--set", "formation=none"],
     "none needs instances of exactly 8 frames"),
    (["--ipc", "2", "--frames", "16", "--set", "formation=morph"], "unknown temporal formation"),
])
@pytest.mark.parametrize("method", ["dm", "mtt", "datm", "edc"])
def test_a_formation_the_track_cannot_take_is_one_line_before_any_work(method, args, words,
                                                                      tmp_path):
    result = CliRunner().invoke(main, ["run-baseline", method, "--dataset", "synthetic", *args,
                                       "-o", str(tmp_path / "x.tar")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (error,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert words in error
    # Refused before any work: no progress beyond the bar's opening line, no archive.
    assert "0 done" in result.output or "%" not in result.output
    assert not (tmp_path / "x.tar").exists()


# ------------------------------------------------------------------- end to end on 16 frames
def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _archive(protocol, method, folder, strategy="hard", progress=None):
    task = _task(protocol, folder / "artifacts", strategy=strategy, progress=progress)
    condensed = method.condense(task)
    path = folder / "out.tar"
    write_archive(condensed, path, protocol=protocol)
    return path


def _check_t16_archive(path, method_name):
    validated = CliRunner().invoke(main, ["validate", str(path)])
    assert validated.exit_code == 0, validated.output
    loaded = read_archive(path)
    assert loaded.condensed.videos.shape == (20, 3, 16, 56, 56)
    assert loaded.condensed.track == T16
    assert loaded.condensed.method.name == method_name
    assert loaded.condensed.method.config["formation"] == "slide-window"
    return loaded


@pytest.fixture(scope="module")
def tiny_recipe_experts(protocol, vdcbench_cache, tmp_path_factory):
    """The data set's expert recipe made tiny (one expert of two epochs on one video a class),
    trained once into this session's cache, for MTT's and DATM's runs."""
    from vdcbench.train import experts as experts_module
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(experts_module.RECIPES, "synthetic", TINY_RECIPE)
        experts_module.train_experts(
            experts_module.expert_set(protocol, protocol.dataset("synthetic")))
        yield


TINY = {
    "dm": (DM, {"iterations": "2", "batch_real": "1", "checkpoint_every": "1"}),
    "mtt": (MTT, {"iterations": "2", "syn_steps": "1", "batch_syn": "4", "max_start_epoch": "1",
                  "checkpoint_every": "1"}),
    "datm": (DATM, {"iterations": "2", "syn_steps": "1", "batch_syn": "4", "expert_epochs": "1",
                    "min_start_epoch": "0", "current_max_start_epoch": "1",
                    "max_start_epoch": "1", "expansion_end_epoch": "2", "threshold": "100",
                    "checkpoint_every": "1"}),
}


def _method(name, **changes):
    cls, settings = TINY[name]
    return cls(cls.config_from_strings({**settings, **changes}))


@pytest.mark.parametrize("name, strategy", [
    ("mtt", "hard"),
    # DATM's initialisation has the experts judge 50 real T-frame clips a class: a minute a run.
    pytest.param("datm", "soft", marks=pytest.mark.slow),
])
def test_a_16_frame_run_writes_a_valid_archive_and_a_second_run_the_same_bytes(
        name, strategy, protocol, tmp_path, tiny_recipe_experts):
    first = _archive(protocol, _method(name), tmp_path / "a", strategy)
    loaded = _check_t16_archive(first, name)
    if strategy == "soft":
        assert loaded.condensed.soft_labels.shape == (20, 10)
    second = _archive(protocol, _method(name), tmp_path / "b", strategy)
    assert _sha256(first) == _sha256(second)


def test_a_16_frame_dm_run_stopped_after_a_checkpoint_resumes_to_the_unbroken_archive(protocol,
                                                                                     tmp_path):
    unbroken = _archive(protocol, _method("dm", iterations="3"), tmp_path / "a")
    _check_t16_archive(unbroken, "dm")

    def stop_after_two(done, total, what):
        # Iteration 2 is done, its checkpoint not yet written: the resume starts after 1.
        if what.startswith("loss") and done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _archive(protocol, _method("dm", iterations="3"), tmp_path / "b",
                 progress=stop_after_two)
    (saved,) = (tmp_path / "b" / "artifacts").glob("distill-dm-ipc2-t16-*-resume.bin")
    assert torch.load(saved, weights_only=True)["epoch"] == 1
    # A second run in another store (the resumed one) writes the unbroken run's bytes: the
    # windows are drawn per iteration, never carried in a generator's state.
    resumed = _archive(protocol, _method("dm", iterations="3"), tmp_path / "b")
    assert _sha256(resumed) == _sha256(unbroken)


def test_experts_judge_a_long_clip_by_the_clips_its_formation_forms_without_chance(protocol,
                                                                                  tmp_path):
    task = _task(protocol, tmp_path / "artifacts")
    experts = tiny_experts(protocol, tmp_path / "experts")
    clips = _indexed_videos(3, size=48)
    logits = expert_logits(task, experts, [0], 2, clips, formation=SLIDE)
    centred = expert_logits(task, experts, [0], 2, clips[:, :, 4:12].contiguous())
    torch.testing.assert_close(logits, centred)
    segments = expert_logits(task, experts, [0], 2, clips, formation=Formation("segment"))
    halves = [expert_logits(task, experts, [0], 2, clips[:, :, s:s + 8].contiguous())
              for s in (0, 8)]
    torch.testing.assert_close(segments, (halves[0] + halves[1]) / 2)


@pytest.mark.slow   # EDC's statistics pass reads the whole train split (minutes on a loaded CPU)
def test_a_16_frame_edc_run_writes_a_valid_archive_and_a_second_run_the_same_bytes(protocol,
                                                                                   tmp_path):
    from vdcbench.train.teacher import find_teacher
    if find_teacher(protocol, "synthetic", "minic3d") is None:
        pytest.skip("the shipped synthetic MiniC3D teacher is not there")
    method = EDC(EDC.config_from_strings({"preset": "tiny", "iterations": "3",
                                          "batch_size": "20"}))
    first = _archive(protocol, method, tmp_path / "a")
    _check_t16_archive(first, "edc")
    # The second run reuses the first's statistics of the train split, nothing else.
    (stats,) = (tmp_path / "a" / "artifacts").glob("edc-class-stats-*")
    (tmp_path / "b" / "artifacts").mkdir(parents=True)
    (tmp_path / "b" / "artifacts" / stats.name).write_bytes(stats.read_bytes())
    second = _archive(protocol, method, tmp_path / "b")
    assert _sha256(first) == _sha256(second)
