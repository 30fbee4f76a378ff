"""``vdcbench prepare`` and ``vdcbench data info`` from the command line, and a prepared real
collection (``gt-actions``) through run-baseline and a shortened evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from video_fixtures import EXPECTED, make_folder

from vdcbench.cli import main

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
GT_ACTIONS = REAL / "gt-actions"


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line_error(result, message):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0], result.output


@pytest.fixture(scope="module", autouse=True)
def fresh_stores(tmp_path_factory):
    """A cache of its own, so that stores of a reused test cache never make these 'already
    prepared'."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VDCBENCH_CACHE", str(tmp_path_factory.mktemp("prepare-cache")))
        yield


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("collection") / "my-actions")


def test_prepare_a_folder_reports_skips_and_data_info_shows_the_hash(collection):
    result = _run("prepare", "folder", "--root", collection, "--group", r"person\d+")
    assert result.exit_code == 0, result.output
    expected = EXPECTED["folder"]
    assert "prepared my-actions (folder)" in result.output
    assert "2 failed to decode" in result.output
    for key in expected.corrupt + expected.empty:
        assert key in result.output
    from vdcbench.data.store import find_store, open_store
    store = open_store(find_store("my-actions"))
    assert store.classes == expected.classes
    assert expected.short[0] in store.index.keys
    info = _run("data", "info", "my-actions")
    assert info.exit_code == 0, info.output
    assert store.sha256 in info.output and "handwaving" in info.output
    assert f"{store.manifest.videos['train']} train" in info.output
    again = _run("prepare", "folder", "--root", collection, "--group", r"person\d+", "--verify")
    assert again.exit_code == 0 and "already prepared" in again.output, again.output
    assert "verified" in again.output
    verify = _run("prepare", "folder", "--verify", "--name", "my-actions")
    assert verify.exit_code == 0 and "verified: 13 videos" in verify.output, verify.output


def test_prepare_to_another_directory_is_found_by_name(collection, tmp_path):
    out = tmp_path / "elsewhere"
    result = _run("prepare", "folder", "--root", collection, "--name", "my-actions-out",
                  "--out", out)
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").is_file()
    info = _run("data", "info", "my-actions-out")
    assert info.exit_code == 0 and str(out) in info.output.replace("\n", ""), info.output


def test_prepare_a_jpeg_store_and_data_info_shows_its_format(collection, tmp_path):
    out = tmp_path / "jpeg"
    result = _run("prepare", "folder", "--root", collection, "--group", r"person\d+",
                  "--name", "my-actions-jpeg", "--out", out, "--format", "jpeg", "--verify")
    assert result.exit_code == 0, result.output
    assert "jpeg frames at" in result.output and "verified: 13 videos" in result.output
    from vdcbench.data.store import open_store
    store = open_store(out)
    assert store.frame_format == "jpeg" and store.manifest.versions["pillow"]
    info = _run("data", "info", "my-actions-jpeg")
    assert info.exit_code == 0, info.output
    assert "jpeg (quality 90, 4:4:4) frames" in info.output and store.sha256 in info.output
    verify = _run("prepare", "folder", "--verify", "--name", "my-actions-jpeg", "--out", out)
    assert verify.exit_code == 0 and "verified: 13 videos" in verify.output, verify.output
    # Rerunning without --format names the format instead of replacing the store.
    _one_line_error(_run("prepare", "folder", "--root", collection, "--group", r"person\d+",
                         "--name", "my-actions-jpeg", "--out", out), "pass --format jpeg")


@pytest.mark.parametrize("args, message", [
    (("--root", "{tmp}/absent"), "does not exist"),
    (("--root", "{tmp}/empty"), "no videos"),
    (("--root", "{collection}", "--out", "{tmp}/a-file/store"), "output"),
    (("--root", "{collection}", "--split-file", "{tmp}/split.txt"), "names class 'Dancing'"),
    (("--root", "{collection}", "--name", "ucf101"), "is a protocol data set"),
    (("--root", "{collection}", "--workers", "0"), "--workers"),
    (("--root", "{collection}", "--format", "png"), "unknown store format 'png'"),
])
def test_prepare_user_errors_are_one_line(collection, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file").write_text("")
    (tmp_path / "split.txt").write_text("Boxing/person01_boxing_d1.avi train\n"
                                        "Dancing/person02_dancing_d1.avi val\n")
    args = [a.format(tmp=tmp_path, collection=collection) for a in args]
    _one_line_error(_run("prepare", "folder", *args), message)


def test_data_info_of_unknown_and_unprepared_sets():
    _one_line_error(_run("data", "info", "my-actionz"), "unknown data set")
    _one_line_error(_run("data", "info", "hmdb51"), "vdcbench prepare hmdb51 --root PATH")
    synthetic = _run("data", "info", "synthetic")
    assert synthetic.exit_code == 0 and "800 train / 300 val" in synthetic.output


@pytest.mark.slow   # 59 s on a loaded core (3 Dec); CI runs it in its `pytest -m slow` step
@pytest.mark.skipif(not GT_ACTIONS.is_dir(), reason="../shared/data/real/gt-actions is absent")
def test_gt_actions_prepare_condense_and_evaluate(tmp_path):
    prepared = _run("prepare", "folder", "--root", GT_ACTIONS, "--group", r"P\d+(?=T)")
    assert prepared.exit_code == 0, prepared.output
    assert "prepared gt-actions (folder): 27 videos" in prepared.output
    archive = tmp_path / "r.tar"
    condensed = _run("run-baseline", "random", "--dataset", "gt-actions", "--ipc", "1",
                     "-o", archive)
    assert condensed.exit_code == 0, condensed.output
    records = tmp_path / "records"
    scored = _run("evaluate", archive, "--seeds", "0", "--epochs", "1", "--results-dir", records,
                  "--json", tmp_path / "scores.json")
    assert scored.exit_code == 0, scored.output
    record = json.loads((tmp_path / "scores.json").read_text())["records"][0]
    from vdcbench.data.store import find_store, open_store
    store = open_store(find_store("gt-actions"))
    assert record["key"]["dataset"] == "gt-actions"
    assert record["key"]["dataset_sha256"] == store.sha256
    assert record["key"]["track"] == "ipc1-t8" and not record["official"]
    assert list((store.path / "cache").glob("val-clips-*.safetensors"))
    # Six training videos a class (one person of three is validation): IPC 10 cannot be met.
    too_many = _run("run-baseline", "random", "--dataset", "gt-actions", "--ipc", "10",
                    "-o", tmp_path / "r10.tar")
    _one_line_error(too_many, "needs 10 videos of class 0")
    assert not (tmp_path / "r10.tar").exists()
