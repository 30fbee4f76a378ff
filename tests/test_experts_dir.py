"""The experts' folder has a name of its own and is where expert trajectories always were."""

from vdcbench.core import paths
from vdcbench.protocol import LATEST_VERSION, load_protocol
from vdcbench.train.experts import experts_store


def test_experts_dir_is_the_folder_existing_caches_use(tmp_path, monkeypatch):
    monkeypatch.setenv("VDCBENCH_CACHE", str(tmp_path))
    dataset = load_protocol(LATEST_VERSION).dataset("synthetic")
    assert paths.experts_dir("synthetic") == tmp_path / "artifacts" / "experts" / "synthetic" / "seed0"
    assert experts_store(dataset).root == paths.experts_dir("synthetic")
