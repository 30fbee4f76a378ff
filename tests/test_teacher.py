"""The shipped synthetic teacher and the teacher command."""

from __future__ import annotations

import pytest

from vdcbench.data.splits import dataset_sha256, open_split, validation_clips
from vdcbench.train.teacher import SHIPPED_DIR, find_teacher, load_teacher, train_teacher
from vdcbench.train.augment import Normalize
from vdcbench.train.trainer import score


def test_shipped_teacher_reproduces_its_recorded_accuracy(protocol):
    dataset = protocol.dataset("synthetic")
    path = find_teacher(protocol, "synthetic", "minic3d")
    assert path is not None and path.parent == SHIPPED_DIR, "ship the synthetic teacher"
    teacher = load_teacher(protocol, dataset, "minic3d")          # also checks the sha256
    side = teacher.sidecar
    assert side.protocol_sha256 == protocol.sha256
    assert side.dataset_sha256 == dataset_sha256(dataset)
    assert side.epochs_run == protocol.teacher_recipe(dataset, "minic3d").epochs
    validation = validation_clips(protocol, open_split(dataset, "val"))
    normalize = Normalize(protocol.trainer.normalize_mean, protocol.trainer.normalize_std)
    measured = score(teacher.net, validation, normalize, teacher.net.fc.weight.device)
    # Other CPUs may round convolutions differently: allow one validation video either way.
    assert abs(measured.top1 - side.val_top1) <= 100 / len(validation.labels) + 1e-9
    assert 70.0 <= side.val_top1 <= 95.0   # the target the synthetic data set is built for


@pytest.mark.slow   # about a minute; CI runs it in its `pytest -m slow` step
def test_shortened_teacher_run_is_reported_not_saved(protocol, tmp_path):
    dataset = protocol.dataset("synthetic")
    sidecar, _ = train_teacher(protocol, dataset, "minic3d", epochs=1, output_dir=tmp_path)
    assert sidecar.epochs_run == 1 and sidecar.sha256 is None
    assert "sha256" not in sidecar.to_dict()
    assert list(tmp_path.iterdir()) == []
    assert 0.0 <= sidecar.val_top1 <= 100.0


def test_a_stopped_teacher_training_resumes_to_the_same_teacher(protocol, tmp_path):
    import pytest

    from vdcbench.core.artifacts import ArtifactStore
    from vdcbench.train.trainer import weights_sha256

    class Stop(Exception):
        pass

    def stop_after_first(done, total, loss):
        if done == 1:
            raise Stop

    dataset = protocol.dataset("synthetic")
    store = ArtifactStore(tmp_path / "resume")
    tiny = dict(epochs=2, videos_per_class=2, output_dir=tmp_path / "teachers")
    unbroken, unbroken_net = train_teacher(protocol, dataset, "minic3d", **tiny)
    with pytest.raises(Stop):
        train_teacher(protocol, dataset, "minic3d", resume_store=store,
                      progress=stop_after_first, **tiny)
    assert len(list((tmp_path / "resume").iterdir())) == 1
    resumed, resumed_net = train_teacher(protocol, dataset, "minic3d", resume_store=store, **tiny)
    assert weights_sha256(resumed_net) == weights_sha256(unbroken_net)
    assert resumed.val_top1 == unbroken.val_top1
    assert resumed.train_iterations == unbroken.train_iterations
    assert list((tmp_path / "resume").iterdir()) == []     # cleared once the run finished


def test_shipped_sidecar_round_trips_byte_identically():
    import json

    from vdcbench.core.errors import VdcError
    from vdcbench.train.teacher import TeacherSidecar, teacher_sidecar

    paths = sorted(SHIPPED_DIR.glob("*.json"))
    assert paths
    for path in paths:
        text = path.read_text()
        sidecar = teacher_sidecar(path.with_suffix(".safetensors"))
        assert isinstance(sidecar, TeacherSidecar) and len(sidecar.sha256) == 64
        assert json.dumps(sidecar.to_dict(), indent=2, sort_keys=True) + "\n" == text
        data = json.loads(text)
        with pytest.raises(VdcError, match="unknown key 'val_top_1'"):
            TeacherSidecar.from_dict({**data, "val_top_1": 1.0})
        with pytest.raises(VdcError, match="lacks key 'val_top1'"):
            TeacherSidecar.from_dict({k: v for k, v in data.items() if k != "val_top1"})
