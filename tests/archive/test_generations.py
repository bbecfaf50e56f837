"""Replacing a committed shard by a new generation: at every point where a kill can stop the replacement, the
archive holds the old shard or the new one, whole; leftovers of the old generation are cleaned up."""
from __future__ import annotations

import pytest

from smartsplat_dist.archive import open_archive, verify_archive
from smartsplat_dist.archive.layout import parse_shard_name, shard_marker_name, shard_tar_name
from smartsplat_dist.archive.markers import read_markers
from smartsplat_dist.errors import ArchiveError
from tests.archive.archive_helpers import build_archive, make_record

# build_archive: 5 images, 2 per shard, image 3 failed -> shard 1 = [img.002, img.003] holds the failure


def _restage_shard1(b):
    """What --retry-failed does before committing generation 1: the ok image again from the tar, the failed one
    now fitted."""
    arc = open_archive(b.url)
    ok_id, failed_id = b.plan[1]
    row = {k: v for k, v in arc.row(ok_id).items() if k not in ("shard", "offset", "length", "sha256")}
    b.writer.stage(ok_id, arc.get(ok_id), row)
    b.writer.stage(failed_id, make_record(33), {"source": "s3://x", "height": 16, "width": 24, "n_gaussians": 40})
    return ok_id, failed_id


def test_new_generation_replaces_the_shard(local_built):
    b = local_built
    ok_id, failed_id = _restage_shard1(b)
    marker = b.writer.commit_shard(1, b.plan[1], generation=1)
    b.writer.write_manifest()
    assert marker["generation"] == 1 and marker["tar"] == shard_tar_name(1, 1) == "shards/shard-00001.g1.tar"
    names = b.folder.list("shards")
    assert shard_marker_name(1) not in names and shard_tar_name(1) not in names  # old generation gone
    arc = open_archive(b.url)
    assert arc.get(failed_id) == make_record(33) and arc.get(ok_id) == b.records[ok_id]
    assert verify_archive(b.url).ok
    assert b.writer.commit_shard(1, b.plan[1], generation=1)["sha256"] == marker["sha256"]  # idempotent


def test_kill_before_new_marker_leaves_old_shard(local_built):
    b = local_built
    _restage_shard1(b)
    b.folder.write_bytes(shard_tar_name(1, 1), b"half a tar")  # killed while/after writing the new tar
    markers = read_markers(b.folder)
    assert markers[1].get("generation", 0) == 0
    arc = open_archive(b.url)
    assert arc.row(b.plan[1][1])["status"] == "failed"  # the old shard, whole
    rep = verify_archive(b.url)
    assert not rep.damaged and any("uncommitted generation 1" in u for u in rep.uncommitted)
    b.writer.commit_shard(1, b.plan[1], generation=1)  # the rerun finishes the replacement
    assert open_archive(b.url).row(b.plan[1][1])["status"] == "ok"


@pytest.mark.parametrize("left", ["both", "old_tar"])
def test_kill_after_new_marker_leaves_new_shard(local_built, left):
    b = local_built
    _restage_shard1(b)
    old = {n: b.folder.read_bytes(n) for n in (shard_marker_name(1), shard_tar_name(1))}
    b.writer.commit_shard(1, b.plan[1], generation=1)
    b.writer.write_manifest()
    # put back what a kill between "new marker written" and "old files deleted" would have left
    b.folder.write_bytes(shard_tar_name(1), old[shard_tar_name(1)])
    if left == "both":
        b.folder.write_bytes(shard_marker_name(1), old[shard_marker_name(1)])
    assert read_markers(b.folder)[1]["generation"] == 1
    assert open_archive(b.url).row(b.plan[1][1])["status"] == "ok"
    rep = verify_archive(b.url)
    assert rep.ok and any("superseded" in n for n in rep.notes)
    assert sorted(b.writer.cleanup()) == sorted(n for n in old if left == "both" or n.endswith(".tar"))
    assert all(parse_shard_name(n)[2] == 1 for n in b.folder.list("shards") if parse_shard_name(n)[0] == 1)


def test_generation_must_grow(local_built):
    b = local_built
    _restage_shard1(b)
    b.writer.commit_shard(1, b.plan[1], generation=2)
    with pytest.raises(ArchiveError, match="generation 2 exists"):
        b.writer.commit_shard(1, b.plan[1], generation=1)
