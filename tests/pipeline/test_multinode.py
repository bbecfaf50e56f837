"""Multi-node on one machine (ray.cluster_utils.Cluster): a worker node is removed mid-run; the run completes."""
from __future__ import annotations

import os
import threading
import time

import pytest

from smartsplat_dist.archive import open_archive, verify_archive
from smartsplat_dist.errors import EXIT_OK
from smartsplat_dist.pipeline import compress_dataset, faults

from .conftest import fast_config, write_tiny_photos


@pytest.fixture(scope="module")
def cluster():
    """A head with no CPUs (it only hosts the driver) and two 1-CPU worker nodes: each actor gets a node."""
    import ray
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "object_store_memory": 80 * 2**20, "include_dashboard": False})
    workers = [c.add_node(num_cpus=1, object_store_memory=80 * 2**20) for _ in range(2)]
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False, logging_level="WARNING")
    try:
        yield c, workers
    finally:
        ray.shutdown()
        c.shutdown()


def test_worker_node_removed_mid_run(cluster, tmp_path, monkeypatch):
    c, workers = cluster
    src = tmp_path / "src"
    write_tiny_photos(src, 6)
    arch = tmp_path / "archive"
    # every image takes >= 2 s, so both actors are always mid-image while work is left
    monkeypatch.setenv(faults.ENV_FAULT, "slow-actor:*:2")
    monkeypatch.setenv(faults.ENV_FAULT_DIR, str(tmp_path / "faults"))
    removed = threading.Event()

    def remove_when_first_image_is_staged():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            shards = arch / "shards"
            if shards.exists() and any(shards.glob("*.json")):
                c.remove_node(workers[0], allow_graceful=False)
                removed.set()
                return
            time.sleep(0.1)

    t = threading.Thread(target=remove_when_first_image_is_staged, daemon=True)
    t.start()
    result = compress_dataset(str(src), str(arch), fast_config(), workers=2, cpus_per_worker=1,
                              images_per_shard=1, max_retries=2, progress=False)
    t.join(timeout=10)
    assert removed.is_set()
    assert result.exit_code == EXIT_OK and result.ok == 6
    assert result.actor_restarts >= 1  # the removed node's actor died mid-image and was replaced
    assert sorted(open_archive(str(arch)).ids()) == [f"img{k}" for k in range(6)]
    assert verify_archive(str(arch)).ok
