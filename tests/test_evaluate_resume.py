"""Issue 16 item 7: an evaluation seed stopped part-way resumes inside the seed from its last
checkpoint (kept in the cache's evaluation-resume store, keyed by the record identity) and gives
the unbroken run's record, bit for bit at the same thread count; the checkpoint is dropped once
the record is written."""

from __future__ import annotations

import pytest
import torch

import vdcbench
from vdcbench.core import paths
from vdcbench.core.artifacts import ArtifactStore
from vdcbench.evaluation.progress import Progress
from vdcbench.evaluation.scoring import resume_interval
from vdcbench.train.checkpoint import FitCheckpoint

EPOCHS = 4
SAME = ("top1", "top5", "weights_sha256", "final_loss", "by_epoch_top1", "iterations",
        "epochs", "torch_threads", "key")


class Stop(Exception):
    """Stands for a kill: raised from the progress callback after an epoch is checkpointed."""


class StopAfter(Progress):
    def __init__(self, epochs: int):
        self.stop_after, self.seen = epochs, []

    def evaluation_epoch(self, net, seed, epoch, epochs, loss):
        self.seen.append(epoch)
        if epoch == self.stop_after:
            raise Stop(f"stopped after epoch {epoch}")


class Watch(Progress):
    def __init__(self):
        self.seen = []

    def evaluation_epoch(self, net, seed, epoch, epochs, loss):
        self.seen.append(epoch)


def _resume_files():
    folder = paths.evaluation_resume_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_the_interval_is_ten_epochs_on_the_protocol_schedule_and_one_on_short_ones():
    assert resume_interval(300) == 10 and resume_interval(50) == 5
    assert resume_interval(EPOCHS) == 1 and resume_interval(1) == 1


@pytest.mark.slow   # 57 s on a loaded core (3 Dec); CI runs it in its `pytest -m slow` step
def test_a_stopped_seed_resumes_inside_the_seed_with_the_unbroken_numbers(random_ipc1, tmp_path):
    archive = random_ipc1[1]
    unbroken = vdcbench.evaluate_cell(archive, "minic3d", 0, epochs=EPOCHS,
                                      results_dir=tmp_path / "unbroken")
    assert _resume_files() == []   # cleared once the record was written

    stopped = StopAfter(2)
    with pytest.raises(Stop):
        vdcbench.evaluate_cell(archive, "minic3d", 0, epochs=EPOCHS,
                               results_dir=tmp_path / "resumed", progress=stopped)
    assert stopped.seen == [1, 2] and not list((tmp_path / "resumed").rglob("*.json"))
    assert len(_resume_files()) == 1

    resumed_progress = Watch()
    resumed = vdcbench.evaluate_cell(archive, "minic3d", 0, epochs=EPOCHS,
                                     results_dir=tmp_path / "resumed", progress=resumed_progress)
    assert resumed_progress.seen == [3, 4]   # epochs 1-2 were not trained again
    for name in SAME:
        assert getattr(resumed, name) == getattr(unbroken, name), name
    assert resumed.torch_threads == torch.get_num_threads()
    assert _resume_files() == []


def test_a_checkpoint_of_another_thread_count_or_fit_is_not_resumed(tmp_path):
    store = ArtifactStore(tmp_path)
    fingerprint = {"epochs": 4, "batch_size": 10, "seed": 0, "clips": 10}
    FitCheckpoint(store, "k", context={"torch_threads": 4, "device": "cpu"}).save(
        {"fingerprint": fingerprint, "epoch": 1})
    assert FitCheckpoint(store, "k", context={"torch_threads": 4, "device": "cpu"}).load(
        fingerprint)["epoch"] == 1
    assert FitCheckpoint(store, "k", context={"torch_threads": 1, "device": "cpu"}).load(
        fingerprint) is None
    assert FitCheckpoint(store, "k", context={"torch_threads": 4, "device": "cpu"}).load(
        {**fingerprint, "epochs": 5}) is None
