"""Stage → commit → open → get, on local disk and S3; commit protocol; manifest; config checks; unsafe markers."""
from __future__ import annotations

import io
import json
import tarfile

import pytest

from smartsplat_dist.archive import (
    MANIFEST, ArchiveWriter, MissingImageError, StagingError, archive_status, open_archive, read_manifest, shard_marker_name,
    shard_tar_name, verify_archive,
)
from smartsplat_dist.errors import ArchiveError
from smartsplat_dist.io.storage import Folder

from tests.archive.archive_helpers import RUN_CONFIG, build_archive, make_record


def test_roundtrip(built):
    a = open_archive(built.url, built.opts)
    assert a.ids() == [i for i in built.ids if i in built.records]
    for image_id, data in built.records.items():
        assert a.get(image_id) == data
    assert dict(iter(a)) == built.records
    assert a.run_config == RUN_CONFIG
    assert a.failed() == built.failed
    rows = a.rows()
    assert [r["id"] for r in rows] == built.ids
    by_id = {r["id"]: r for r in rows}
    for image_id, data in built.records.items():
        r = by_id[image_id]
        assert r["status"] == "ok" and r["error"] is None and r["length"] == len(data)
        assert r["real_cr"] == pytest.approx(3 * 16 * 24 / len(data))
        assert r["source"] == built.listing[built.ids.index(image_id)]
    for image_id, err in built.failed.items():
        assert by_id[image_id]["status"] == "failed" and by_id[image_id]["error"] == err
        assert by_id[image_id]["shard"] == 1 and by_id[image_id]["offset"] is None
    assert read_manifest(built.folder) == rows
    assert built.folder.list("staging") == []  # staging cleaned after commit
    rep = verify_archive(built.url, built.opts)
    assert rep.ok and rep.records == len(built.records) and rep.shards == 3, rep.damaged
    assert rep.records_decoded


def test_get_is_one_ranged_read(local_built, monkeypatch):
    a = open_archive(local_built.url)
    calls = []
    real = a.folder.read_range
    monkeypatch.setattr(a.folder, "read_range", lambda *args: calls.append(args) or real(*args))
    monkeypatch.setattr(a.folder, "read_bytes", lambda *args: pytest.fail("whole-file read in get()"))
    image_id = a.ids()[2]
    assert a.get(image_id) == local_built.records[image_id]
    loc = a.location(image_id)
    assert calls == [(loc.tar, loc.offset - 512, loc.offset + loc.length)]  # the member header, then the data


def test_tar_is_a_plain_posix_tar(local_built):
    marker = json.loads(local_built.folder.read_bytes(shard_marker_name(0)))
    data = local_built.folder.read_bytes(shard_tar_name(0))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        assert names == [f"{i}.rec" for i in local_built.plan[0]] + ["__index__.json"]
        for i in local_built.plan[0]:
            assert tar.extractfile(f"{i}.rec").read() == local_built.records[i]
        index = json.loads(tar.extractfile("__index__.json").read())
    assert index["index"] == marker["index"]
    assert marker["size"] == len(data)
    for i, e in marker["index"].items():
        assert data[e["offset"]: e["offset"] + e["length"]] == local_built.records[i]


def test_unknown_and_failed_ids(local_built):
    a = open_archive(local_built.url)
    with pytest.raises(MissingImageError, match="no image"):
        a.get("nope")
    with pytest.raises(KeyError):
        a.get("nope")
    failed_id = next(iter(local_built.failed))
    with pytest.raises(ArchiveError, match="truncated"):
        a.get(failed_id)


def test_commit_is_idempotent(local_built):
    f, w = local_built.folder, local_built.writer
    before = {n: f.read_bytes(n) for n in f.list("shards")}
    for k, ids in enumerate(local_built.plan):
        assert w.commit_shard(k, ids)["shard"] == k
    assert {n: f.read_bytes(n) for n in f.list("shards")} == before
    with pytest.raises(ArchiveError, match="plan changed"):
        w.commit_shard(0, local_built.plan[0][:1])


def test_tar_bytes_are_deterministic(tmp_path):
    a = build_archive(str(tmp_path / "a"))
    b = build_archive(str(tmp_path / "b"))
    assert a.folder.read_bytes(shard_tar_name(0)) == b.folder.read_bytes(shard_tar_name(0))


def test_crash_between_tar_and_marker(folder_url, monkeypatch):
    url, opts = folder_url
    b = build_archive(url, opts, commit=False)
    w, f = b.writer, b.folder
    w.commit_shard(0, b.plan[0])

    def crash(rel, data):
        raise ConnectionError("driver died before the marker")

    monkeypatch.setattr(f, "write_if_absent", crash)
    with pytest.raises(ConnectionError):
        w.commit_shard(1, b.plan[1])
    monkeypatch.undo()
    assert f.exists(shard_tar_name(1)) and not f.exists(shard_marker_name(1))
    # the half-made shard is invisible; its images are still staged
    a = open_archive(url, opts)
    assert a.ids() == b.plan[0]
    assert set(a.staged()) == set(b.ids) - set(b.plan[0])
    st = archive_status(url, opts)
    assert (st["committed"], st["staged"], st["failed"], st["pending"], st["shards"]) == (2, 2, 1, 0, 1)
    rep = verify_archive(url, opts)
    assert rep.ok and len(rep.uncommitted) == 1 and shard_tar_name(1) in rep.uncommitted[0]
    # a half-written tar is overwritten by the next commit
    f.write_bytes(shard_tar_name(1), b"garbage" * 100)
    for k, ids in enumerate(b.plan):
        w.commit_shard(k, ids)
    w.write_manifest()
    a = open_archive(url, opts)
    assert dict(iter(a)) == b.records
    rep = verify_archive(url, opts)
    assert rep.ok and not rep.uncommitted, rep.damaged


def test_commit_refuses_missing_or_tampered_staging(tmp_path):
    b = build_archive(str(tmp_path / "a"), commit=False)
    with pytest.raises(StagingError, match="not staged") as info:
        b.writer.commit_shard(0, b.plan[0] + ["ghost"])
    assert info.value.image_ids == ["ghost"]
    first = b.plan[0][0]
    b.folder.write_bytes(f"staging/{first}.rec", make_record(99))
    with pytest.raises(StagingError, match="does not match its staged row") as info:
        b.writer.commit_shard(0, b.plan[0])
    assert info.value.image_ids == [first] and isinstance(info.value, ArchiveError)
    assert not b.folder.exists(shard_marker_name(0)) and not b.folder.exists(shard_tar_name(0))
    b.writer.unstage(first)
    b.writer.stage(first, make_record(99), {"source": b.listing[0], "height": 16, "width": 24})
    b.writer.commit_shard(0, b.plan[0])
    assert open_archive(b.url).get(first) == make_record(99)


def test_commit_checks_records_with_codec(tmp_path):
    f = Folder(tmp_path / "a")
    w = ArchiveWriter(f, RUN_CONFIG, ["x.png"])
    w.open()
    w.stage("x", b"not a record at all", {"source": "x.png"})
    with pytest.raises(ArchiveError, match="malformed"):
        w.commit_shard(0, ["x"])
    w.stage("x", make_record(1, height=16, width=24), {"source": "x.png", "height": 17, "width": 24})
    with pytest.raises(ArchiveError, match="16x24"):
        w.commit_shard(0, ["x"])


def test_manifest_is_rebuilt_from_markers(local_built):
    f = local_built.folder
    original = f.read_bytes(MANIFEST)
    f.delete(MANIFEST)
    a = open_archive(local_built.url)
    assert [r["id"] for r in a.rows()] == local_built.ids
    assert a.manifest_file_rows() is None
    assert local_built.writer.write_manifest() == len(local_built.ids)
    assert f.read_bytes(MANIFEST) == original


def test_reopen_checks_config_and_listing(local_built):
    f, listing = local_built.folder, local_built.listing
    ArchiveWriter(f, RUN_CONFIG, listing).open()  # same settings: fine
    changed = dict(RUN_CONFIG, fit={"steps": 1000, "lr": 0.01})
    with pytest.raises(ArchiveError, match=r"fit\.steps: archive has 500, this run has 1000"):
        ArchiveWriter(f, changed, listing).open()
    with pytest.raises(ArchiveError, match="not in the archive's config"):
        ArchiveWriter(f, dict(RUN_CONFIG, seed=3), listing).open()
    with pytest.raises(ArchiveError, match="input listing"):
        ArchiveWriter(f, RUN_CONFIG, listing + ["s3://data/set/new.png"]).open()


def test_not_an_archive(tmp_path):
    with pytest.raises(ArchiveError, match="not an archive"):
        open_archive(str(tmp_path))
    with pytest.raises(ArchiveError, match="not an archive"):
        verify_archive(str(tmp_path))


@pytest.mark.parametrize("bad_id", ["../x", "/etc/passwd", "a/b", "..", "x\\y"])
def test_marker_with_escaping_id_is_rejected(local_built, bad_id):
    f = local_built.folder
    name = shard_marker_name(0)
    marker = json.loads(f.read_bytes(name))
    good = local_built.plan[0][0]
    marker["index"][bad_id] = marker["index"].pop(good)
    for row in marker["rows"]:
        if row["id"] == good:
            row["id"] = bad_id
    f.write_bytes(name, json.dumps(marker).encode())
    arc = open_archive(local_built.url)  # readers leave the damaged shard out and name it
    assert any(name in d and "invalid image id" in d for d in arc.damaged)
    assert set(arc.ids()) == set(local_built.records) - set(local_built.plan[0])
    rep = verify_archive(local_built.url)
    assert not rep.ok and any(name in d and "invalid image id" in d for d in rep.damaged)


def test_status_counts(folder_url):
    url, opts = folder_url
    b = build_archive(url, opts, n=7, per_shard=3, fail=(1,), commit=False)
    b.writer.commit_shard(0, b.plan[0])  # 2 ok + 1 failed committed; 4 ok staged
    b.writer.unstage(b.ids[6])  # one still to do
    st = archive_status(url, opts)
    assert (st["listing_size"], st["shards"], st["committed"], st["staged"], st["failed"], st["pending"]) == \
        (7, 1, 2, 3, 1, 1)
    ok = [i for i in b.ids[:6] if i in b.records]
    assert st["total_bytes"] == sum(len(b.records[i]) for i in ok)
    assert st["total_real_cr"] == pytest.approx(3 * 16 * 24 * len(ok) / st["total_bytes"])
    psnrs = [30.0 + b.ids.index(i) for i in ok]
    assert st["mean_psnr"] == pytest.approx(sum(psnrs) / len(psnrs))
    assert st["mean_ssim"] == pytest.approx(0.9)
    assert archive_status(url, opts, listing_size=10)["pending"] == 4


def test_ids_keep_listing_order_within_a_shard(tmp_path):
    f = Folder(tmp_path / "a")
    listing = ["s3://b/a/zebra.png", "s3://b/b/apple.png", "s3://b/c/mango.png"]
    ids = ["zebra", "apple", "mango"]
    w = ArchiveWriter(f, RUN_CONFIG, listing, check_records=True)
    w.open()
    for n, (i, uri) in enumerate(zip(ids, listing)):
        w.stage(i, make_record(n), {"source": uri, "height": 16, "width": 24})
    w.commit_shard(0, ids)
    a = open_archive(f.url)
    assert a.ids() == ids and [r["id"] for r in a.rows()] == ids
