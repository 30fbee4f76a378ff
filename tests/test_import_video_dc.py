"""``vdcbench import video-dc``: the study code's condensed sets in, validated archives out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from vdcbench.archive import read_archive, write_archive
from vdcbench.cli import main
from vdcbench.core.errors import VdcError
from vdcbench.archive.importers.video_dc import METHOD_NAME, import_video_dc

CLASSES, FRAMES, SIZE = 10, 8, 56  # the synthetic data set's ipc-t8 tracks: 56x56 crops


def _smooth_clip(seed: int) -> torch.Tensor:
    """(3, T, H, W) uint8: gradients plus a moving square, which JPEG keeps within a few levels."""
    g = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, SIZE).view(SIZE, 1)
    x = torch.linspace(0, 1, SIZE).view(1, SIZE)
    base = torch.rand(3, 1, 1, generator=g) * 0.5
    clip = (base + 0.4 * (y + x) / 2).unsqueeze(1).repeat(1, FRAMES, 1, 1)
    for t in range(FRAMES):
        clip[:, t, 10:26, 4 + 3 * t:20 + 3 * t] = 0.95
    return (clip.clamp(0, 1) * 255).round().to(torch.uint8)


def _write_jpeg_set(folder: Path, per_class: dict[int, int]) -> dict[tuple[int, int], torch.Tensor]:
    """The study's layout: <class:05d>/class{c:05d}_id{i:05d}_t{t:03d}.jpg at PIL-like quality."""
    clips = {}
    for c, count in per_class.items():
        for i in range(count):
            clip = _smooth_clip(100 * c + i)
            clips[(c, i)] = clip
            out = folder / f"{c:05d}"
            out.mkdir(parents=True, exist_ok=True)
            for t in range(FRAMES):
                Image.fromarray(clip[:, t].permute(1, 2, 0).numpy()).save(
                    out / f"class{c:05d}_id{i:05d}_t{t:03d}.jpg", quality=90)
    return clips


def test_jpeg_folders_round_trip_through_an_archive(tmp_path, protocol):
    per_class = {c: 2 for c in range(CLASSES)}
    per_class[3] = 1  # a class with fewer clips than IPC is allowed
    clips = _write_jpeg_set(tmp_path / "syn_data", per_class)
    (tmp_path / "syn_data" / "notes.txt").write_text("ignored")
    cs = import_video_dc(tmp_path / "syn_data", protocol=protocol, dataset="synthetic", ipc=5,
                         kind="selection", source_method="rded")
    assert cs.track == "ipc5-t8" and cs.videos.dtype == torch.uint8
    archive = tmp_path / "imported.tar"
    write_archive(cs, archive, protocol=protocol)
    loaded = read_archive(archive, protocol=protocol)
    back = loaded.condensed
    keys = sorted(clips)
    assert back.labels.tolist() == [c for c, _ in keys]
    expected = torch.stack([clips[k] for k in keys]).float()
    # Within JPEG's loss of the pixels that were saved (sharp edges lose most to chroma
    # subsampling, so the bound is on the mean and the PSNR)...
    error = (back.videos.float() - expected).pow(2).mean()
    assert (back.videos.float() - expected).abs().mean() < 2.0
    assert 10 * torch.log10(255.0 ** 2 / error) > 30
    # ...and exactly the decoded JPEG values: the importer adds no loss of its own.
    c, i = keys[5]
    first = Image.open(tmp_path / "syn_data" / f"{c:05d}" / f"class{c:05d}_id{i:05d}_t003.jpg")
    assert torch.equal(back.videos[5, :, 3], torch.from_numpy(np.array(first)).permute(2, 0, 1))
    method = loaded.manifest.method
    assert method.name == METHOD_NAME and method.kind == "selection"
    assert method.config["format"] == "jpeg" and method.config["source_method"] == "rded"
    assert len(method.config["source_sha256"]) == 64


def test_datm_tensors_are_denormalised_and_take_soft_labels(tmp_path, protocol):
    pixels = torch.rand(CLASSES, 3, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    mean = torch.tensor(protocol.trainer.normalize_mean).view(1, 3, 1, 1, 1)
    std = torch.tensor(protocol.trainer.normalize_std).view(1, 3, 1, 1, 1)
    logits = torch.randn(CLASSES, CLASSES)
    # Dancing-style (N, T, 3, H, W) is read too.
    torch.save(((pixels - mean) / std).permute(0, 2, 1, 3, 4).clone(), tmp_path / "images_best.pt")
    torch.save(logits, tmp_path / "labels_best.pt")
    cs = import_video_dc(tmp_path, protocol=protocol, dataset="synthetic", ipc=1,
                         label_strategy="soft")
    assert torch.allclose(cs.videos, pixels, atol=1e-5)
    assert cs.labels.tolist() == list(range(CLASSES))  # class-major, IPC per class
    assert torch.equal(cs.soft_labels, logits)
    write_archive(cs, tmp_path / "datm.tar", protocol=protocol)
    assert torch.equal(read_archive(tmp_path / "datm.tar").condensed.soft_labels, logits)


class Payload:
    """Not a tensor: weights_only loading must refuse to build it."""


@pytest.mark.parametrize("content, message", [
    ({"images": torch.zeros(1)}, "holds a dict, not a tensor"),
    ([torch.zeros(1)], "holds a list, not a tensor"),
    (Payload(), "weights_only"),
])
def test_pt_holding_anything_but_a_tensor_is_refused(tmp_path, protocol, content, message):
    torch.save(content, tmp_path / "images_best.pt")
    with pytest.raises(VdcError, match=message) as err:
        import_video_dc(tmp_path, protocol=protocol, dataset="synthetic", ipc=1)
    assert "\n" not in str(err.value)


def test_labels_pt_holding_a_dict_is_refused(tmp_path, protocol):
    torch.save(torch.zeros(CLASSES, 3, FRAMES, SIZE, SIZE), tmp_path / "images_best.pt")
    torch.save({"labels": torch.zeros(CLASSES)}, tmp_path / "labels_best.pt")
    with pytest.raises(VdcError, match="labels_best.pt: it holds a dict"):
        import_video_dc(tmp_path, protocol=protocol, dataset="synthetic", ipc=1)


def test_a_class_over_ipc_is_refused_before_decoding(tmp_path, protocol):
    _write_jpeg_set(tmp_path / "s", {0: 2})
    (tmp_path / "s" / "00000" / "class00000_id00000_t000.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(VdcError, match="class 0 has 2 clips"):
        import_video_dc(tmp_path / "s", protocol=protocol, dataset="synthetic", ipc=1)
    with pytest.raises(VdcError, match="not a readable JPEG"):
        import_video_dc(tmp_path / "s", protocol=protocol, dataset="synthetic", ipc=5)
    with pytest.raises(VdcError, match="unknown track 'ipc3-t8'"):
        import_video_dc(tmp_path / "s", protocol=protocol, dataset="synthetic", ipc=3)


def test_a_missing_frame_is_refused(tmp_path, protocol):
    _write_jpeg_set(tmp_path / "s", {0: 1, 1: 1})
    (tmp_path / "s" / "00001" / "class00001_id00000_t004.jpg").unlink()
    with pytest.raises(VdcError, match="clip 0 of class 1"):
        import_video_dc(tmp_path / "s", protocol=protocol, dataset="synthetic", ipc=1)


@pytest.mark.parametrize("setup, extra, message", [
    ("none", (), "does not exist"),
    ("empty", (), "no condensed set"),
    ("dict", (), "holds a dict"),
    ("jpeg", ("--dataset", "ucf101"), "requires 112x112"),
    ("jpeg", ("--label-strategy", "soft"), "labels_best.pt"),
    ("jpeg", ("--dataset", "ucf11"), "did you mean 'ucf101'"),
])
def test_cli_bad_input_is_one_line_with_exit_2(tmp_path, setup, extra, message):
    source = tmp_path / "set"
    if setup != "none":
        source.mkdir()
    if setup == "dict":
        torch.save({"x": torch.zeros(1)}, source / "images_best.pt")
    if setup == "jpeg":
        _write_jpeg_set(source, {0: 1})
    args = ["import", "video-dc", str(source), "--dataset", "synthetic", "--ipc", "1",
            "-o", str(tmp_path / "out.tar"), *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "out.tar").exists()


def test_cli_writes_a_validated_archive(tmp_path):
    _write_jpeg_set(tmp_path / "set", {c: 1 for c in range(CLASSES)})
    out = tmp_path / "out.tar"
    result = CliRunner().invoke(main, ["import", "video-dc", str(tmp_path / "set"), "--dataset",
                                       "synthetic", "--ipc", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "imported 10 clips" in result.output
    assert read_archive(out).condensed.method.name == METHOD_NAME
