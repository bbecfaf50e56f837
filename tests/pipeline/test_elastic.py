"""The actor pool follows the cluster: a run on a head without GPUs waits, a node declaring two (logical) GPUs
joins and gets two actors, that node leaves mid-run, another joins, every image ends committed exactly once."""
from __future__ import annotations

import io
import os
import threading
import time

import pytest

from smartsplat_dist.archive import open_archive, verify_archive
from smartsplat_dist.archive.markers import read_markers
from smartsplat_dist.errors import EXIT_OK
from smartsplat_dist.io.storage import Folder
from smartsplat_dist.pipeline import compress_dataset, faults

from .conftest import fast_config, write_tiny_photos

MB = 2**20


class Lines(io.TextIOBase):
    """A thread-safe text stream that keeps what the driver prints."""

    def __init__(self):
        self.lock = threading.Lock()
        self.text = ""

    def write(self, s: str) -> int:
        with self.lock:
            self.text += s
        return len(s)

    def has(self, needle: str) -> bool:
        with self.lock:
            return needle in self.text


def _until(cond, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _actors_on(node_id: str, address: str) -> list:
    from ray.util.state import list_actors

    return [a for a in list_actors(address=address, detail=True, filters=[("state", "=", "ALIVE")])
            if a.class_name == "CompressWorker" and a.node_id == node_id]


def test_pool_follows_gpu_nodes(tmp_path, monkeypatch):
    import ray
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 80 * MB,
                                                     "include_dashboard": True})
    ray.init(address=c.address, log_to_driver=False, logging_level="WARNING")
    try:
        src, arch = tmp_path / "src", tmp_path / "archive"
        write_tiny_photos(src, 6)
        monkeypatch.setenv(faults.ENV_FAULT, "slow-actor:*:1.5")  # actors are mid-image when the node goes
        monkeypatch.setenv(faults.ENV_FAULT_DIR, str(tmp_path / "faults"))
        out, box = Lines(), {}

        def run():
            box["result"] = compress_dataset(
                str(src), str(arch), fast_config(), address=c.address, cpus_per_worker=0.25, images_per_shard=1,
                backend="cpu", max_retries=3, stream=out, checkpoint_minutes=0)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        _until(lambda: out.has("waiting for GPUs (0/6)"), 120, "the driver to wait for GPUs")
        time.sleep(1.0)
        assert not arch.joinpath("shards").exists() or not any(arch.joinpath("shards").iterdir())

        gpu_node = c.add_node(num_cpus=1, num_gpus=2, object_store_memory=80 * MB)
        _until(lambda: len(_actors_on(gpu_node.node_id, c.address)) == 2, 120, "two actors on the GPU node")
        actors = _actors_on(gpu_node.node_id, c.address)
        assert all(a.required_resources.get("GPU") == 1.0 for a in actors)
        _until(lambda: arch.joinpath("shards").exists() and any(arch.joinpath("shards").glob("*.json")), 180,
               "a first committed shard")
        c.remove_node(gpu_node, allow_graceful=False)  # the node leaves with both actors mid-image
        c.add_node(num_cpus=1, num_gpus=1, object_store_memory=80 * MB)
        t.join(timeout=400)
        assert not t.is_alive()
    finally:
        ray.shutdown()
        c.shutdown()

    result = box["result"]
    assert result.exit_code == EXIT_OK and result.ok == 6
    assert result.actor_restarts >= 1 and result.actors_started >= 3
    assert out.has("waiting for GPUs (0/6)")
    markers = read_markers(Folder(str(arch)))  # raises if an image were in two shards
    ids = [r["id"] for m in markers.values() for r in m["rows"]]
    assert sorted(ids) == [f"img{k}" for k in range(6)]
    manifest = Folder(str(arch)).read_bytes("manifest.jsonl").decode().splitlines()
    assert len(manifest) == 6
    assert sorted(open_archive(str(arch)).ids()) == sorted(ids)
    assert verify_archive(str(arch)).ok
