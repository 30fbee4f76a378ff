"""What ``prepare`` tells its user beyond the store: videos shorter than a clip, a help page per
layout with the folder defaults, a Ctrl-C hint of its own; and strict JSON in what the data
layer reads (prepare's parts and plan, a collection's manifest, Something-Something's lists)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from video_fixtures import encode_video, make_ssv2

from vdcbench.cli import main
from vdcbench.core.errors import VdcError

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400"]


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VDCBENCH_CACHE", str(tmp_path / "cache"))


def _tiny(root, lengths):
    seed = 0
    for cls in ("a", "b"):
        for k, frames in enumerate(lengths):
            encode_video(root / cls / f"v{k}.avi", frames, seed=seed)
            seed += 1
    return root


def test_videos_shorter_than_a_clip_are_counted_and_explained(tmp_path):
    root = _tiny(tmp_path / "shorts", [12, 12, 12, 1, 3])
    result = _run("prepare", "folder", "--root", root)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert ("short: 4 videos of 1 to 3 frames, fewer than the 8-frame clip: kept, and every "
            "clip of them repeats frames to make 8") in text
    assert "a/v3.avi (1 frame)" in text and "a/v4.avi (3 frames)" in text
    info = _run("data", "info", "shorts")
    assert "short: 4 videos have fewer than 8 frames" in " ".join(info.output.split())


def test_prepare_folder_help_is_its_own_page_with_the_defaults():
    from vdcbench.cli import data as cli_data
    from vdcbench.data.sources import folder, source_names

    assert set(cli_data._LAYOUTS) == set(source_names())
    assert (cli_data._FOLDER_SEED, cli_data._FOLDER_VAL_FRACTION) == (
        folder.DEFAULT_SEED, folder.DEFAULT_VAL_FRACTION)
    page = _run("prepare", "folder", "--help")
    general = _run("prepare", "--help")
    assert page.exit_code == 0 and page.output != general.output
    text = " ".join(page.output.split())
    assert "prepare folder [OPTIONS]" in text
    assert "seed 0, a validation fraction of 0.3 per class, each video its own group" in text
    assert "[default: (0.3)]" in text and "[default: (0)]" in text
    assert "--group REGEX" in text and "--split-file" in text
    assert "--group" not in _run("prepare", "ucf101", "--help").output
    unknown = _run("prepare", "folders", "--root", ".")
    assert unknown.exit_code == 2
    assert unknown.output.strip() == ("error: unknown source layout 'folders'; did you mean "
                                      "'folder'?")


def test_ctrl_c_during_start_up_says_how_to_resume_prepare(tmp_path, monkeypatch):
    import vdcbench.data.prepare as prepare

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(prepare, "plan_prepare", interrupted)
    root = _tiny(tmp_path / "stop", [12, 12, 12])
    with pytest.raises(KeyboardInterrupt) as stop:
        CliRunner().invoke(main, ["prepare", "folder", "--root", str(root)])
    assert "rerun the same vdcbench prepare command" in str(stop.value)
    assert "seed" not in str(stop.value)


@pytest.mark.parametrize("number", NON_FINITE)
def test_a_collection_manifest_with_a_non_finite_number_is_one_line(tmp_path, number):
    from vdcbench.data.datasets import resolve_dataset
    from vdcbench.protocol import load_protocol

    store = tmp_path / "cache" / "stores" / "mine"
    store.mkdir(parents=True)
    (store / "manifest.json").write_text(
        f'{{"dataset": "folder", "classes": ["a"], "total_frames": {number}}}')
    with pytest.raises(VdcError, match="unreadable manifest") as error:
        resolve_dataset(load_protocol(), "mine")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("number", NON_FINITE)
def test_ssv2_label_files_with_a_non_finite_number_are_one_line(tmp_path, number):
    from vdcbench.data.sources import list_source

    root = make_ssv2(tmp_path / "ssv2")
    labels = root / "labels" / "something-something-v2-train.json"
    items = json.loads(labels.read_text())
    labels.write_text(json.dumps(items).replace('"placeholders"', f'"x": {number}, '
                                                '"placeholders"', 1))
    with pytest.raises(VdcError, match="NaN and infinity are refused") as error:
        list_source("ssv2", root)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("number", NON_FINITE)
def test_a_part_or_plan_with_a_non_finite_number_is_not_trusted(tmp_path, number):
    from vdcbench.data.prepare import (PARTS_DIR, PLAN_FILE, _open_parts, _part_name,
                                       _read_part_meta, decode_group)
    from vdcbench.data.sources import list_source

    root = _tiny(tmp_path / "parts", [12, 12, 12])
    entry = list_source("folder", root).entries[0]
    parts = _open_parts(tmp_path / "store", (24, 32), "raw")
    decode_group([entry], (24, 32), parts)
    assert _read_part_meta(parts, entry.key, "raw") is not None
    meta_path = parts / f"{_part_name(entry.key)}.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps(meta).replace(f'"fps": {meta["fps"]}', f'"fps": {number}'))
    assert number in meta_path.read_text()
    assert _read_part_meta(parts, entry.key, "raw") is None     # decoded again, not trusted
    plan = parts / PLAN_FILE
    plan.write_text(plan.read_text().replace("1,", f"{number},", 1))
    assert number in plan.read_text()
    reopened = _open_parts(tmp_path / "store", (24, 32), "raw")
    assert reopened == tmp_path / "store" / PARTS_DIR
    assert not meta_path.exists()          # a plan that is not strict JSON empties the parts
    assert json.loads(plan.read_text())["part_version"] == 1
