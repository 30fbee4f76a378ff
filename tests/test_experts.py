"""Expert trajectories: snapshots per epoch, resume after a stop, the missing-experts message, CLI."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from click.testing import CliRunner

from trajectory_fixtures import TINY_RECIPE, tiny_experts
from vdcbench.core.errors import VdcError
from vdcbench.train.experts import (RECIPES, default_recipe, resolve_recipe, train_command,
                                    train_experts)


class _Stop(Exception):
    pass


@pytest.fixture(scope="module")
def unbroken(protocol, tmp_path_factory):
    return tiny_experts(protocol, tmp_path_factory.mktemp("experts-unbroken"))


def test_snapshots_every_epoch_and_they_move(unbroken):
    assert unbroken.completed() == [0]
    first, last = unbroken.snapshot(0, 0), unbroken.snapshot(0, TINY_RECIPE.epochs)
    assert set(first) == set(last) and "fc.weight" in first
    assert any(not torch.equal(first[k], last[k]) for k in first)
    # 3,643,146 float32 parameters (10 classes) per snapshot, one file per epoch and the init.
    assert unbroken.bytes_on_disk() > 3 * 14_000_000


def test_stopped_training_resumes_to_the_same_parameters(protocol, unbroken, tmp_path):
    experts = tiny_experts(protocol, tmp_path, train=False)

    def stop_after_first_epoch(expert, count, done, epochs, loss):
        if done == 1:
            raise _Stop()

    with pytest.raises(_Stop):
        train_experts(experts, progress=stop_after_first_epoch)
    assert experts.has_snapshot(0, 1) and not experts.complete(0)
    # A stop between the checkpoint and its snapshot: the resume restores the snapshot.
    experts.store.delete(experts.snapshot_key(0, 1))
    assert train_experts(experts) == [0]
    for epoch in range(TINY_RECIPE.epochs + 1):
        mine, theirs = experts.snapshot(0, epoch), unbroken.snapshot(0, epoch)
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs), f"epoch {epoch} differs"
    assert not experts.store.has(experts.resume_key(0))   # the resume state is dropped
    assert train_experts(experts) == []                   # nothing left to train


def test_more_experts_reuse_the_first_and_the_set_names_its_recipe(protocol, unbroken):
    two = dataclasses.replace(TINY_RECIPE, experts=2)
    assert tiny_experts(protocol, unbroken.store.root, two, train=False).identity == unbroken.identity
    longer = dataclasses.replace(TINY_RECIPE, epochs=3)
    assert tiny_experts(protocol, unbroken.store.root, longer, train=False).identity != unbroken.identity


def test_missing_experts_say_how_to_make_them(protocol, tmp_path):
    experts = tiny_experts(protocol, tmp_path, dataclasses.replace(
        RECIPES["synthetic"]), train=False)
    with pytest.raises(VdcError) as caught:
        experts.require(2, "mtt")
    message = str(caught.value)
    assert "\n" not in message
    assert "`vdcbench experts train --dataset synthetic`" in message
    assert "--train-experts" in message


def test_recipes(protocol):
    synthetic, ucf = protocol.dataset("synthetic"), protocol.dataset("ucf101")
    assert default_recipe(synthetic).name == "synthetic"
    reference = default_recipe(ucf)
    # MTT buffer.py as the video MTT ran it: SGD lr_teacher 0.01, no momentum, no decay.
    assert (reference.lr, reference.momentum, reference.weight_decay) == (0.01, 0.0, 0.0)
    assert reference.net == "minic3d-in"
    assert resolve_recipe(synthetic, 5, 0).experts == 5
    assert train_command(synthetic, resolve_recipe(synthetic, 5, 7)) == (
        "vdcbench experts train --dataset synthetic --experts 5 --epochs 7")
    with pytest.raises(VdcError):
        dataclasses.replace(reference, batch_size=0)


def test_cli_info_and_refusal():
    from vdcbench.cli.experts import experts_group
    runner = CliRunner()
    result = runner.invoke(experts_group, ["info", "--dataset", "synthetic"])
    assert result.exit_code == 0, result.output
    assert "of 2 complete" in result.output and "recipe: name=synthetic" in result.output
    bad = runner.invoke(experts_group, ["train", "--dataset", "synthetic", "--epochs", "-1"])
    assert bad.exit_code == 2
    assert bad.output.strip().count("\n") == 0 and "error:" in bad.output
    unknown = runner.invoke(experts_group, ["info", "--dataset", "nosuchset"])
    assert unknown.exit_code == 2 and "Traceback" not in unknown.output
