"""Several evaluation nets: ``evaluate --net all|list``, teachers of any net, and their users."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from vdcbench.cli import main
from vdcbench.core.errors import VdcError
from vdcbench.evaluation.scoring import evaluation_nets, parse_nets

RESNETS = ("r2plus1d_r18", "i3d_r18", "slowonly_r18")


def test_all_is_the_four_evaluation_architectures_in_protocol_order(protocol):
    assert evaluation_nets(protocol) == ("minic3d",) + RESNETS
    assert parse_nets(protocol, "all") == evaluation_nets(protocol)
    assert parse_nets(protocol, " i3d_r18, minic3d,i3d_r18 ") == ("i3d_r18", "minic3d")
    assert parse_nets(protocol, "minic3d-in") == ("minic3d-in",)   # named, it is allowed
    with pytest.raises(VdcError, match="unknown net"):
        parse_nets(protocol, "minic3d,resnet")
    with pytest.raises(VdcError, match="names no net"):
        parse_nets(protocol, " , ")


def test_evaluate_on_a_list_of_nets_gives_one_record_per_net_and_seed(tmp_path, random_ipc1):
    records, summary = tmp_path / "records", tmp_path / "summary.json"
    args = ["evaluate", str(random_ipc1[1]), "--net", "minic3d,i3d_r18", "--seeds", "0",
            "--epochs", "1", "--results-dir", str(records), "--json", str(summary)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "cross-architecture" in result.output
    for net in ("minic3d", "i3d_r18"):
        assert f"on {net}: top-1" in result.output
        assert len(list((records).rglob(f"{net}/*/seed0.json"))) == 1
    data = json.loads(summary.read_text())
    assert set(data["by_net"]) == {"minic3d", "i3d_r18"} and "summary" not in data
    assert [r["key"]["net"] for r in data["records"]] == ["minic3d", "i3d_r18"]
    assert all(r["train_gflops"] > 0 for r in data["records"])
    again = CliRunner().invoke(main, args, catch_exceptions=False)
    assert again.exit_code == 0 and again.output.count("reusing record") == 2


def test_evaluate_refuses_an_unknown_net_in_a_list_before_training(tmp_path, random_ipc1):
    result = CliRunner().invoke(main, ["evaluate", str(random_ipc1[1]), "--net", "minic3d,r18",
                                       "--results-dir", str(tmp_path)])
    assert result.exit_code == 2 and "unknown net" in result.output
    assert not list(tmp_path.rglob("seed*.json"))


@pytest.mark.parametrize("net", RESNETS)
def test_tiny_teacher_run_of_each_resnet_is_reported_not_saved(protocol, tmp_path, net):
    """The tiny preset (1 epoch, 2 videos per class): a few seconds on one core."""
    from vdcbench.models.flops import net_cost
    from vdcbench.train.teacher import train_teacher

    dataset = protocol.dataset("synthetic")
    sidecar, model = train_teacher(protocol, dataset, net, epochs=1, videos_per_class=2,
                                   output_dir=tmp_path)
    assert sidecar.sha256 is None and list(tmp_path.iterdir()) == []
    assert sidecar.recipe["name"] == f"synthetic-{net}" and sidecar.videos_per_class == 2
    recipe = protocol.teacher_recipe(dataset, net)
    assert sidecar.train_iterations == -(-20 // recipe.batch_size)
    forward = net_cost(protocol.net(net), 10, 8, 56).forward_gflops
    assert sidecar.train_gflops == pytest.approx(3 * forward * 20, abs=0.1)


def test_teacher_command_tiny_preset(tmp_path):
    result = CliRunner().invoke(main, ["teacher", "train", "--dataset", "synthetic", "--net",
                                       "i3d_r18", "--tiny", "--json", str(tmp_path / "t.json")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "recipe synthetic-i3d_r18" in result.output and "[not saved" in result.output
    side = json.loads((tmp_path / "t.json").read_text())
    assert side["epochs_run"] == 1 and side["videos_per_class"] == 2


@pytest.fixture()
def i3d_teacher(protocol, tmp_path, monkeypatch):
    """A tiny-trained i3d_r18 teacher, found first (as a user's trained teacher would be)."""
    import vdcbench.train.teacher as teacher_module

    dataset = protocol.dataset("synthetic")
    sidecar, model = teacher_module.train_teacher(protocol, dataset, "i3d_r18", epochs=1,
                                                  videos_per_class=2)
    folder = tmp_path / "teachers"
    name = teacher_module.teacher_filename(protocol, "synthetic", "i3d_r18")
    sha = teacher_module._save_teacher(model, sidecar, folder, name)
    defaults = teacher_module.teacher_dirs()
    monkeypatch.setattr(teacher_module, "teacher_dirs", lambda: [folder, *defaults])
    return sha


def test_rded_and_multi_sl_use_a_non_minic3d_teacher(protocol, tmp_path, i3d_teacher):
    from vdcbench.archive import read_archive, write_archive
    from vdcbench.evaluation.scoring import EvalSettings, Evaluation
    from vdcbench.core.artifacts import ArtifactStore
    from vdcbench.methods.base import CondensationTask
    from vdcbench.methods.random_selection import RandomSelection
    from vdcbench.methods.rded import RDED
    from vdcbench.models.flops import net_cost

    track = protocol.track("synthetic", "ipc1-t8")
    # RDED scores its candidates with the teacher its setting names.
    task = CondensationTask(protocol, track, "hard", 0, ArtifactStore(tmp_path / "a"))
    rded = RDED(RDED.config_from_strings({"teacher": "i3d_r18", "mipc": "2", "num_crop": "1"}))
    condensed = rded.condense(task)
    assert set(task._teachers) == {"i3d_r18"} and condensed.method.config["teacher"] == "i3d_r18"
    with pytest.raises(VdcError, match="unknown net"):
        task.teacher("i3d")
    # multi-sl on i3d_r18 is labelled online by the i3d_r18 teacher, and pays its forwards.
    task = CondensationTask(protocol, track, "multi-sl", 0, ArtifactStore(tmp_path / "b"))
    write_archive(RandomSelection().condense(task), tmp_path / "m.tar", protocol=protocol)
    evaluation = Evaluation(protocol, read_archive(tmp_path / "m.tar"),
                            EvalSettings(seeds=(0,), net="i3d_r18", epochs=1), tmp_path / "rec")
    record = evaluation.run_seed(0)
    assert record.key.teacher_sha256 == i3d_teacher and record.key.net == "i3d_r18"
    forward = net_cost(protocol.net("i3d_r18"), 10, 8, 56).forward_gflops
    assert record.train_gflops == pytest.approx(10 * (3 + 1) * forward, abs=1e-3)
