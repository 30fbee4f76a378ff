"""Soft and multi-sl labels with the shipped teacher, and the study's evaluation variants."""

from __future__ import annotations

import pytest
import torch

from vdcbench.archive import read_archive, write_archive
from vdcbench.evaluation.scoring import EvalSettings, Evaluation
from vdcbench.core.artifacts import ArtifactStore
from vdcbench.methods.base import CondensationTask
from vdcbench.methods.random_selection import RandomSelection


def _archive(protocol, tmp_path, strategy):
    track = protocol.track("synthetic", "ipc1-t8")
    task = CondensationTask(protocol, track, strategy, 0, ArtifactStore(tmp_path / "a"))
    condensed = RandomSelection().condense(task)
    write_archive(condensed, tmp_path / f"{strategy}.tar", protocol=protocol)
    return read_archive(tmp_path / f"{strategy}.tar")


def test_soft_labels_are_the_teachers_logits_of_the_stored_clips(protocol, tmp_path):
    loaded = _archive(protocol, tmp_path, "soft")
    c = loaded.condensed
    assert c.soft_labels is not None and c.soft_labels.shape == (10, 10)
    assert loaded.ledger.soft_label_bytes == 10 * 10 * 4
    # The teacher agrees with most of the true labels of real clips.
    assert (c.soft_labels.argmax(1) == c.labels).float().mean() >= 0.5
    record = Evaluation(protocol, loaded, EvalSettings(seeds=(0,), epochs=1), tmp_path / "r").run_seed(0)
    assert record.key.label_strategy == "soft" and record.key.teacher_sha256 is None


def test_multi_sl_records_the_teacher(protocol, tmp_path):
    loaded = _archive(protocol, tmp_path, "multi-sl")
    assert loaded.condensed.soft_labels is None
    evaluation = Evaluation(protocol, loaded, EvalSettings(seeds=(0,), epochs=1), tmp_path / "r")
    record = evaluation.run_seed(0)
    assert record.key.teacher_sha256 == evaluation.teacher.sha256
    assert len(record.key.teacher_sha256) == 64


@pytest.mark.parametrize("variant", ["cutmix", "kl"])
def test_variants_run_and_are_never_official(protocol, tmp_path, variant):
    loaded = _archive(protocol, tmp_path, "soft")
    settings = EvalSettings(seeds=(0,), epochs=2, variant=variant)
    record = Evaluation(protocol, loaded, settings, tmp_path / "r").run_seed(0)
    assert not record.official and record.key.variant == variant
    assert torch.isfinite(torch.tensor(record.final_loss))


def test_kl_variant_refuses_hard_labels(protocol, tmp_path):
    from vdcbench.core.errors import VdcError
    loaded = _archive(protocol, tmp_path, "hard")
    with pytest.raises(VdcError, match="kl variant"):
        Evaluation(protocol, loaded, EvalSettings(seeds=(0,), variant="kl"), tmp_path / "r")
