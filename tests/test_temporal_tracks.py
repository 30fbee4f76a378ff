"""Frame-budget tracks end to end: the selection methods keep T-frame real windows judged through
the track's formation, the trainer forms clips from them, and `vdcbench evaluate` scores them
under a formation that is part of every record's key."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import numpy as np
import pytest
import safetensors.torch
import torch
from click.testing import CliRunner
from torch import nn

from vdcbench.archive import read_archive
from vdcbench.archive.condensed import CondensedSet, MethodInfo
from vdcbench.archive.manifest import build_manifest
from vdcbench.cli import main
from vdcbench.core.artifacts import ArtifactStore
from vdcbench.core.errors import VdcError
from vdcbench.evaluation.records import EvalRecord, RecordKey
from vdcbench.methods.base import CondensationTask
from vdcbench.methods.features import centred_clips, teacher_features
from vdcbench.methods.forgetting import Forgetting
from vdcbench.methods.herding import Herding, herding_order
from vdcbench.methods.kcenter import KCenter
from vdcbench.methods.random_selection import RandomSelection
from vdcbench.methods.rded import (RDED, ViewSpec, draw_candidates, render_views, score_views,
                                   window_starts)
from vdcbench.train.augment import Normalize
from vdcbench.train.formation import Formation, form_clips
from vdcbench.train.sources import StoredClips
from vdcbench.train.trainer import Trainer


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _teacher_or_skip(protocol):
    from vdcbench.train.teacher import find_teacher
    if find_teacher(protocol, "synthetic", "minic3d") is None:
        pytest.skip("the shipped synthetic MiniC3D teacher is not there")


def _task(protocol, tmp_path, track_id, strategy="hard", artifacts=None):
    return CondensationTask(protocol, protocol.track("synthetic", track_id), strategy, 0,
                            artifacts or ArtifactStore(tmp_path / "artifacts"))


class _Pooled(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.fc = nn.Linear(3, classes)

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3, 4)))


# ------------------------------------------------------------------------------- the trainer
def test_segment_trains_every_segment_as_a_clip_at_the_protocols_step_count(protocol):
    from vdcbench.evaluation.scoring import student_fit_config  # noqa: F401  (the same FitConfig)
    from vdcbench.train.teacher import teacher_fit_config
    dataset = protocol.dataset("synthetic")
    config = teacher_fit_config(protocol, dataset, protocol.teacher_recipe(dataset, "minic3d"), 2)
    videos = torch.randint(0, 256, (6, 3, 16, 56, 56), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    seen = []

    class Watching(Trainer):
        def loss(self, logits, labels, teacher):
            seen.append(labels.tolist())
            return super().loss(logits, labels, teacher)

    segment = Watching(_Pooled(3), config, StoredClips(videos, labels,
                                                       formation=Formation("segment")), seed=0)
    result = segment.fit(None)
    slide = Trainer(_Pooled(3), config, StoredClips(videos, labels,
                                                    formation=Formation("slide-window")), seed=0)
    plain_steps = slide.fit(None).iterations
    # The batch holds instances, as every formation's; each brings its two segments.
    assert result.iterations == plain_steps == 2 * -(-6 // config.batch_size)
    assert result.clips == 2 * 6 * 2
    order = segment.batches(0)[0]
    assert seen[0] == np.repeat(labels.numpy()[order], 2).tolist()


def test_slide_window_draws_new_windows_each_epoch_and_replays(protocol):
    videos = torch.arange(16, dtype=torch.uint8)[None, None, :, None, None].expand(
        4, 3, 16, 8, 8).contiguous()
    source = StoredClips(videos, torch.arange(4), formation=Formation("slide-window"))
    starts = {int(source.clips(np.array([1]), 0, e)[0, 0, 0, 0, 0]) for e in range(40)}
    assert starts == set(range(9))
    assert torch.equal(source.clips(np.array([0, 3]), 5, 2), source.clips(np.array([0, 3]), 5, 2))


# -------------------------------------------------------------------------------- the methods
def test_random_keeps_a_t_frame_real_window(protocol, tmp_path):
    condensed = RandomSelection().condense(_task(protocol, tmp_path, "ipc2-t16"))
    assert condensed.videos.shape == (20, 3, 16, 56, 56) and condensed.track == "ipc2-t16"


def test_rded_scores_t_frame_views_through_the_formation(protocol, tmp_path):
    _teacher_or_skip(protocol)
    task = _task(protocol, tmp_path, "ipc2-t16")
    condensed = RDED(RDED.config_from_strings({"mipc": "4", "num_crop": "2",
                                               "formation": "segment"})).condense(task)
    assert condensed.videos.shape == (20, 3, 16, 56, 56)
    assert condensed.method.config["formation"] == "segment"
    # Class 1's eight candidates rebuilt from the task's generators, scored by segment means.
    split, label = task.train, 1
    members = torch.nonzero(split.labels == label).flatten().numpy()
    drawn = np.sort(task.rng(label).choice(members, size=4, replace=False))
    candidates = draw_candidates(task, label, drawn, window_starts(32, 1, 16, 2), 64, 64)
    assert candidates.starts[0].tolist() == [0, 16]
    views = render_views(split.videos, np.repeat(drawn, 2), candidates.starts.ravel(),
                         candidates.boxes.reshape(-1, 4), candidates.flips.ravel(),
                         ViewSpec(frames=16, interval=1, size=56, input_size=56))
    trainer = protocol.trainer
    normalize = Normalize(trainer.normalize_mean, trainer.normalize_std)
    net = task.teacher().net
    losses = score_views(net, views, label, normalize, 56, formation=Formation("segment"))
    halves = [score_views(net, views[:, :, s:s + 8].contiguous(), label, normalize, 56)
              for s in (0, 8)]
    assert torch.allclose(losses, (halves[0] + halves[1]) / 2, atol=1e-5)
    per_video = losses.reshape(4, 2).min(dim=1).values
    best = torch.argsort(per_video, stable=True)[:2]
    kept = [views[int(v) * 2 + int(torch.argmin(losses.reshape(4, 2)[v]))] for v in best]
    assert torch.equal(condensed.videos[2], kept[0]) and torch.equal(condensed.videos[3], kept[1])


def test_rded_slide_window_is_the_default_and_recorded(protocol, tmp_path):
    _teacher_or_skip(protocol)
    task = _task(protocol, tmp_path, "ipc2-t16", strategy="soft")
    condensed = RDED(RDED.Config(mipc=2, num_crop=1)).condense(task)
    assert condensed.method.config["formation"] == "slide-window"
    # Soft labels are the teacher's logits of each instance's centred 8-frame window.
    centred = condensed.videos[:, :, 4:12].contiguous()
    assert torch.allclose(condensed.soft_labels, task.teacher_logits(centred), atol=1e-5)


@pytest.mark.slow   # 104 s on a loaded core (3 Dec); CI runs it in its `pytest -m slow` step
def test_herding_features_are_the_formations_clips_of_the_centred_window(protocol, tmp_path):
    _teacher_or_skip(protocol)
    task = _task(protocol, tmp_path, "ipc2-t16")
    condensed = Herding(Herding.Config(formation="segment")).condense(task)
    assert condensed.videos.shape == (20, 3, 16, 56, 56)
    assert condensed.method.config["formation"] == "segment"
    members = torch.nonzero(task.train.labels == 4).flatten().numpy()
    windows = centred_clips(task.train, members, protocol, 16)
    net = task.teacher().net.eval()
    trainer = protocol.trainer
    normalize = Normalize(trainer.normalize_mean, trainer.normalize_std)
    with torch.no_grad():
        halves = [net.embed(normalize(windows[:, :, s:s + 8].float() / 255.0)) for s in (0, 8)]
    features = (halves[0] + halves[1]) / 2
    assert torch.allclose(features, teacher_features(net, task.train, members, protocol,
                                                     frames=16, formation=Formation("segment")),
                          atol=1e-5)
    order = herding_order(features, 2)
    assert torch.equal(condensed.videos[8], windows[order[0]])
    assert torch.equal(condensed.videos[9], windows[order[1]])


@pytest.mark.slow   # 46 s on a loaded core (3 Dec); CI runs it in its `pytest -m slow` step
def test_kcenter_on_a_four_frame_track_interpolates_by_default(protocol, tmp_path):
    _teacher_or_skip(protocol)
    condensed = KCenter().condense(_task(protocol, tmp_path, "ipc8-t4"))
    assert condensed.videos.shape == (80, 3, 4, 56, 56) and condensed.videos.dtype == torch.uint8
    assert condensed.method.config["formation"] == "interpolate-linear"


def test_forgetting_counts_each_segment_and_sums_them_per_video(protocol, tmp_path, monkeypatch):
    import vdcbench.methods.forgetting as forgetting
    monkeypatch.setattr(forgetting, "build_net", lambda spec, classes: _Pooled(classes))
    counted = {}
    original = forgetting.count_forgetting

    def watch(net, clips, labels, *args, **kwargs):
        counted["shape"], counted["labels"] = tuple(clips.shape), labels
        return original(net, clips, labels, *args, **kwargs)

    monkeypatch.setattr(forgetting, "count_forgetting", watch)
    task = _task(protocol, tmp_path, "ipc2-t16")
    condensed = Forgetting(Forgetting.Config(epochs=1, formation="segment")).condense(task)
    assert counted["shape"] == (1600, 3, 8, 56, 56)
    assert torch.equal(counted["labels"], task.train.labels.repeat_interleave(2))
    assert condensed.videos.shape == (20, 3, 16, 56, 56)
    assert condensed.method.config == {"epochs": 1, "augment": False, "formation": "segment"}
    keys = [p.stem for p in (tmp_path / "artifacts").iterdir()]
    assert any(k.endswith("-t16-segment") for k in keys)


def test_an_8_frame_track_records_no_formation_and_refuses_another(protocol, tmp_path):
    with pytest.raises(VdcError, match="slide-window needs more than 8 frames") as err:
        RDED(RDED.Config(formation="slide-window")).condense(_task(protocol, tmp_path, "ipc1-t8"))
    assert "\n" not in str(err.value) and "rded on track ipc1-t8" in str(err.value)
    with pytest.raises(VdcError, match="segment needs a multiple of 8"):
        _task(protocol, tmp_path, "ipc8-t4").formation("segment")


# ------------------------------------------------------------------------------- the records
def _record(formation):
    key = RecordKey(archive_sha256="a" * 64, protocol_version=1, protocol_sha256="b" * 64,
                    dataset="synthetic", dataset_sha256="c" * 64, track="ipc2-t16",
                    label_strategy="hard", variant="official", net="minic3d",
                    teacher_sha256=None, seed=0, formation=formation)
    return EvalRecord(key=key, method={"name": "rded", "kind": "selection"}, top1=20.0, top5=60.0,
                      reference_best_top1=None, official=True, epochs=300, iterations=300,
                      batch_size=20, wall_seconds=1.0, device="cpu", weights_sha256="d" * 64,
                      final_loss=1.0, ledger={}, versions={"torch": "2"})


def test_the_formation_is_part_of_the_record_key_path_and_file(tmp_path):
    plain, slid = _record(None), _record("slide-window")
    assert plain.key.cell() != slid.key.cell()
    assert _record("none").key == plain.key and plain.key.formation_name == "none"
    assert "formation" not in plain.to_dict()
    assert slid.to_dict()["formation"] == "slide-window"
    assert str(slid.relative_path()).endswith("minic3d/hard-official-formation-slide-window/seed0.json")
    assert str(plain.relative_path()).endswith("minic3d/hard-official/seed0.json")
    back = EvalRecord.from_disk(slid.to_disk(tmp_path))
    assert back == slid and back.key.formation == "slide-window"
    assert EvalRecord.from_disk(plain.to_disk(tmp_path)).key.formation is None
    with pytest.raises(ValueError):
        _record("sliding")
    # A record that names a formation the schema does not know is refused on reading.
    path = slid.to_disk(tmp_path)
    data = json.loads(path.read_text())
    data["formation"] = "slide-windows"
    path.write_text(json.dumps(data))
    with pytest.raises(VdcError, match="breaks the schema at formation"):
        EvalRecord.from_disk(path)


def test_committed_records_read_as_none():
    from pathlib import Path
    from vdcbench.evaluation.records import load_records
    root = Path(__file__).resolve().parents[1] / "submissions" / "records"
    records = load_records(root)
    # Every 8-frame record (all made before formations existed) reads as `none`; a committed
    # temporal-track record (RDED ipc2-t16) carries its formation.
    assert records and all(r.key.formation is None for r in records if r.key.track.endswith("-t8"))
    assert all(r.key.formation is not None for r in records if not r.key.track.endswith("-t8"))
    for r in records:
        assert json.loads((root / r.relative_path()).read_text()) == r.to_dict()


# ------------------------------------------------------------------------------- end to end
@pytest.mark.slow   # 59 s on a loaded core (3 Dec); CI runs it in its `pytest -m slow` step
def test_rded_ipc2_t16_validates_evaluates_and_records_its_formation(tmp_path, protocol):
    _teacher_or_skip(protocol)
    archive = tmp_path / "rded-t16.tar"
    made = _run("run-baseline", "rded", "--dataset", "synthetic", "--ipc", "2", "--frames", "16",
                "--set", "mipc=3", "--set", "num_crop=2", "-o", archive)
    assert made.exit_code == 0, made.output
    assert _run("validate", archive).exit_code == 0
    loaded = read_archive(archive)
    assert loaded.condensed.videos.shape[2] == 16
    assert loaded.condensed.method.config["formation"] == "slide-window"
    records = tmp_path / "records"
    result = _run("evaluate", archive, "--epochs", "1", "--seeds", "0", "--results-dir", records)
    assert result.exit_code == 0, result.output
    assert "ipc2-t16 formation slide-window" in result.output
    (path,) = records.rglob("seed0.json")
    assert path.parent.name == "hard-official-e1-formation-slide-window"
    record = EvalRecord.from_disk(path)
    assert record.key.formation == "slide-window" and record.key.track == "ipc2-t16"
    assert record.iterations == 1 and record.batch_size == 20
    # Another formation of the same archive is another cell, beside the first.
    again = _run("evaluate", archive, "--epochs", "1", "--seeds", "0", "--results-dir", records,
                 "--formation", "segment")
    assert again.exit_code == 0, again.output
    assert len(list(records.rglob("seed0.json"))) == 2
    refused = _run("evaluate", archive, "--epochs", "1", "--results-dir", records,
                   "--formation", "none")
    assert refused.exit_code == 2 and "none needs instances of exactly 8 frames" in refused.output
    assert "Traceback" not in refused.output


def test_a_four_frame_track_evaluates_through_interpolation(tmp_path):
    archive = tmp_path / "t4.tar"
    made = _run("run-baseline", "random", "--dataset", "synthetic", "--ipc", "8", "--frames", "4",
                "-o", archive)
    assert made.exit_code == 0, made.output
    records = tmp_path / "records"
    result = _run("evaluate", archive, "--epochs", "1", "--seeds", "0", "--results-dir", records,
                  "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    (record,) = json.loads((tmp_path / "r.json").read_text())["records"]
    assert record["formation"] == "interpolate-linear" and record["key"]["track"] == "ipc8-t4"


def _forged(tmp_path, videos: torch.Tensor, track: str):
    cs = CondensedSet(videos=videos, labels=torch.arange(10, dtype=torch.int64),
                      label_strategy="hard", dataset="synthetic", track=track,
                      method=MethodInfo("forger", "selection"))
    members = {"videos.safetensors": safetensors.torch.save({"videos": videos}),
               "labels.safetensors": safetensors.torch.save({"labels": cs.labels})}
    from vdcbench.protocol import load_protocol
    manifest = build_manifest(cs, protocol=load_protocol(1), num_classes=10,
                              members={k: (hashlib.sha256(v).hexdigest(), len(v))
                                       for k, v in members.items()})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in {"manifest.json": json.dumps(manifest).encode(), **members}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "forged.tar"
    path.write_bytes(buf.getvalue())
    return path


def test_an_ipc1_t8_archive_of_16_frame_instances_is_refused_in_one_line(tmp_path):
    videos = torch.zeros((10, 3, 16, 56, 56), dtype=torch.uint8)
    path = _forged(tmp_path, videos, "ipc1-t8")
    for command in (("validate", path), ("evaluate", path, "--epochs", "1")):
        result = _run(*command)
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in result.output
        assert "ipc1-t8" in lines[0] or "16" in lines[0]


def test_the_formation_hook_co_optimises_a_long_synthetic_video():
    """What DM, EDC, MTT and DATM call every iteration on their T-frame synthetic videos: a
    fresh window of each (from the task's generator), clips the net eats, gradients back to the
    frames the window covered only."""
    synthetic = torch.zeros(2, 3, 16, 8, 8, requires_grad=True)
    optimizer = torch.optim.SGD([synthetic], lr=1.0)
    touched = torch.zeros(16, dtype=torch.bool)
    for iteration in range(12):
        rng = np.random.default_rng([0, 8, iteration])          # task.rng(iteration) in a method
        formed = form_clips(synthetic, Formation("slide-window"), rng)
        assert formed.clips.shape == (2, 3, 8, 8, 8) and formed.owners.tolist() == [0, 1]
        loss = (formed.clips - 1.0).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        touched |= synthetic.grad[0, 0, :, 0, 0] != 0
        optimizer.step()
    assert touched.sum() > 8            # the windows moved: more than one window was optimised
    assert float(synthetic.detach().mean()) > 0.0
