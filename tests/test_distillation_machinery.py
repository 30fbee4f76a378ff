"""The machinery every distillation method shares (vdcbench.methods.distillation, shared_augment):
presets, the resumable loop, the cached result, storage as float16, the shared crop."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from vdcbench.archive import read_archive, write_archive
from vdcbench.archive.condensed import CondensedSet, MethodInfo
from vdcbench.core.artifacts import ArtifactStore
from vdcbench.core.errors import VdcError
from vdcbench.methods.base import CondensationTask, Method
from vdcbench.methods.distillation import (LoopSettings, Objective, apply_preset, distill,
                                           stored_clips, torch_rng)
from vdcbench.methods.shared_augment import identity_crop, shared_augment


# ------------------------------------------------------------------------------------ presets
PRESETS = {"small": {"steps": 3, "lr": 0.5}}


@dataclass(frozen=True)
class _Config:
    steps: int = 100
    lr: float = 0.1
    preset: str = ""

    def __post_init__(self) -> None:
        apply_preset(self, PRESETS, "toy")


def test_a_preset_fills_the_faithful_defaults_and_an_explicit_value_wins():
    assert _Config(preset="small") == _Config(steps=3, lr=0.5, preset="small")
    assert _Config(preset="small", lr=0.25).lr == 0.25
    assert _Config(preset="small", lr=0.25).steps == 3
    assert _Config() == _Config(steps=100, lr=0.1)
    with pytest.raises(VdcError, match="preset 'big' is unknown"):
        _Config(preset="big")


def test_an_explicit_setting_equal_to_the_default_is_not_replaced_by_the_preset():
    from vdcbench.methods import get_method
    datm = get_method("datm")
    assert datm.Config().expert_epochs == 2                  # DATM's faithful default
    assert datm.config_from_strings({"preset": "cpu"}).expert_epochs == 1
    chosen = datm.config_from_strings({"preset": "cpu", "expert_epochs": "2",
                                       "max_start_epoch": "2"})
    assert (chosen.expert_epochs, chosen.max_start_epoch, chosen.iterations) == (2, 2, 40)
    # Only while that config is built: the next one without the key takes the preset again.
    assert datm.config_from_strings({"preset": "cpu"}).expert_epochs == 1


# --------------------------------------------------------------------------- a toy objective
class _Toy(Method):
    name = "toy"
    kind = "distillation"
    description = "pulls clips towards a keyed random target"

    @dataclass(frozen=True)
    class Config:
        iterations: int = 12
        checkpoint_every: int = 3
        lr: float = 0.3

    def condense(self, task):
        raise NotImplementedError("the tests drive distill() directly")


class _ToyObjective(Objective):
    """Adam on ||x - target_i||², a fresh keyed target every iteration, and a learnable scale:
    a state with two tensors and optimiser moments that a resume must restore exactly."""

    def __init__(self, task, clips, lr, stop_at=None):
        self.task, self._clips = task, clips.requires_grad_(True)
        self.scale = torch.ones(1, requires_grad=True)
        self.optimizer = torch.optim.Adam([self._clips, self.scale], lr=lr)
        self.stop_at = stop_at

    @property
    def clips(self):
        return self._clips

    def tensors(self):
        return {"clips": self._clips, "scale": self.scale}

    def optimizers(self):
        return {"adam": self.optimizer}

    def step(self, iteration):
        if iteration == self.stop_at:
            raise KeyboardInterrupt
        rng = self.task.rng(77, iteration)
        target = torch.from_numpy(rng.random(self._clips.shape, dtype=np.float32))
        with torch_rng(self.task.seed, 99, iteration):
            noise = torch.randn(())
        loss = ((self._clips * self.scale - target) ** 2).mean() + 0.01 * noise ** 2
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


def _task(protocol, folder, seed=0):
    return CondensationTask(protocol, protocol.track("synthetic", "ipc1-t8"), "hard", seed,
                            ArtifactStore(folder))


def _run(task, method, stop_at=None, calls=None):
    def initial():
        if calls is not None:
            calls.append(1)
        return torch.full((4, 3, 2, 5, 5), 0.5), torch.arange(4)
    return distill(task, method, LoopSettings(method.config.iterations,
                                              method.config.checkpoint_every),
                   initial=initial,
                   make_objective=lambda c, l: _ToyObjective(task, c, method.config.lr, stop_at))


def test_a_stopped_distillation_resumes_at_its_checkpoint_and_ends_where_an_unbroken_one_does(
        protocol, tmp_path):
    method = _Toy()
    unbroken = _run(_task(protocol, tmp_path / "a"), method)
    assert not unbroken.reused and len(unbroken.losses) == 12

    task, calls = _task(protocol, tmp_path / "b"), []
    with pytest.raises(KeyboardInterrupt):
        _run(task, method, stop_at=7, calls=calls)        # checkpoints after 0, 3 and 6
    resumed = _run(task, method, calls=calls)
    assert calls == [1], "the initialisation ran again on resume"
    assert torch.equal(resumed.clips, unbroken.clips)
    assert torch.equal(resumed.losses, unbroken.losses)
    assert not torch.equal(resumed.clips, resumed.initial)
    # The result is kept; the resume state is gone; a second call reuses the result.
    assert not any(p.name.endswith("-resume.bin") for p in (tmp_path / "b").iterdir())
    again = _run(task, method, calls=calls)
    assert again.reused and torch.equal(again.clips, unbroken.clips) and calls == [1]


def test_a_checkpoint_of_another_config_is_not_resumed(protocol, tmp_path):
    task = _task(protocol, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        _run(task, _Toy(), stop_at=5)
    other = _Toy(_Toy.Config(lr=0.2))
    fresh = _run(_task(protocol, tmp_path / "fresh"), other)
    assert torch.equal(_run(task, other).clips, fresh.clips)


def test_a_non_finite_loss_is_one_clear_error(protocol, tmp_path):
    method = _Toy(_Toy.Config(lr=1e30))

    class Exploding(_ToyObjective):
        def step(self, iteration):
            return float("nan") if iteration == 2 else super().step(iteration)

    task = _task(protocol, tmp_path)
    with pytest.raises(VdcError, match="loss became nan at iteration 3; lower the learning rate"):
        distill(task, method, LoopSettings(12, 3),
                initial=lambda: (torch.zeros(2, 3, 2, 5, 5), torch.arange(2)),
                make_objective=lambda c, l: Exploding(task, c, 0.1))


def test_torch_rng_is_keyed_and_leaves_the_global_generator_alone():
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    with torch_rng(1, 2, 3):
        a = torch.rand(3)
    with torch_rng(1, 2, 3):
        b = torch.rand(3)
    with torch_rng(1, 2, 4):
        c = torch.rand(3)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.random.get_rng_state(), before)


# ------------------------------------------------------------------------------------ storage
def test_stored_clips_are_clamped_float16_unless_float32_is_asked():
    clips = torch.tensor([-0.3, 0.25, 0.7, 1.4]).view(1, 1, 1, 2, 2)
    half = stored_clips(clips, "float16")
    assert half.dtype == torch.float16
    assert half.flatten().tolist() == [0.0, 0.25, 0.7001953125, 1.0]
    assert stored_clips(clips, "float32").flatten().tolist() == pytest.approx([0, 0.25, 0.7, 1])


def test_a_float16_archive_round_trips_exactly(protocol, tmp_path):
    rng = np.random.default_rng(0)
    videos = torch.from_numpy(rng.random((10, 3, 8, 56, 56), dtype=np.float32)).half()
    videos[0, 0, 0, 0, :2] = torch.tensor([0.0, 1.0])      # the range's two ends
    labels = torch.arange(10)
    info = MethodInfo(name="dm", kind="distillation", config={"iterations": 1}, seed=0)
    cs = CondensedSet(videos=videos, labels=labels, dataset="synthetic", track="ipc1-t8",
                      method=info)
    write_archive(cs, tmp_path / "f16.tar", protocol=protocol)
    loaded = read_archive(tmp_path / "f16.tar")
    assert loaded.condensed.videos.dtype == torch.float16
    assert torch.equal(loaded.condensed.videos, videos)
    assert torch.equal(loaded.condensed.labels, labels)
    assert loaded.ledger.frame_dtype == "float16"
    assert loaded.manifest.method.kind == "distillation"


# ------------------------------------------------------------------------------ shared crop
def test_the_identity_crop_changes_nothing_and_a_shared_crop_is_differentiable():
    x = torch.rand(2, 3, 4, 12, 12)
    assert torch.allclose(identity_crop(12).apply(x), x, atol=1e-6)
    augment = shared_augment((0.5, 1.0), (0.75, 4 / 3), hflip=True)
    crops = [augment.draw(np.random.default_rng([0, i]), 12) for i in range(20)]
    assert any(c.flip for c in crops) and not all(c.flip for c in crops)
    assert crops[0] == augment.draw(np.random.default_rng([0, 0]), 12)     # keyed, replayable
    leaf = x.clone().requires_grad_(True)
    crops[1].apply(leaf).sum().backward()
    assert leaf.grad is not None and float(leaf.grad.abs().sum()) > 0
    # One box for every clip: two identical clips stay identical.
    pair = torch.cat([x[:1], x[:1]])
    out = crops[2].apply(pair)
    assert torch.equal(out[0], out[1])
    with pytest.raises(ValueError, match="cannot cut"):
        crops[0].apply(torch.rand(1, 3, 4, 10, 10))


def test_identity_fields_leave_out_how_a_run_is_carried_out():
    from vdcbench.methods.distillation import identity_config
    from vdcbench.methods.dm import Config
    ident = identity_config(Config(preset="cpu"))
    assert "preset" not in ident and "checkpoint_every" not in ident
    assert ident["iterations"] == dataclasses.asdict(Config(preset="cpu"))["iterations"]
