"""verify_archive finds each kind of damage and names the damaged piece; the CLI exits 4 on damage."""
from __future__ import annotations

import argparse
import json

import pytest

from smartsplat_dist.archive import MANIFEST, open_archive, shard_marker_name, shard_tar_name, verify_archive
from smartsplat_dist.cli import status as status_cli
from smartsplat_dist.cli import verify as verify_cli
from smartsplat_dist.errors import EXIT_DAMAGED, EXIT_ERROR, EXIT_OK, ArchiveError, SmartsplatError



def main(argv):
    """The ``smartsplat`` entry point reduced to this part's subcommands (same error handling)."""
    parser = argparse.ArgumentParser(prog="smartsplat")
    sub = parser.add_subparsers(dest="command", required=True)
    status_cli.register(sub)
    verify_cli.register(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SmartsplatError:
        return EXIT_ERROR


def _flip(folder, rel, offset):
    data = bytearray(folder.read_bytes(rel))
    data[offset] ^= 0x40
    folder.write_bytes(rel, bytes(data))


def _entry(b, k=0, pos=0):
    marker = json.loads(b.folder.read_bytes(shard_marker_name(k)))
    image_id = b.plan[k][pos]
    return image_id, marker["index"][image_id]


@pytest.fixture(params=["big-chunks", "tiny-chunks"])
def chunking(request, monkeypatch):
    """verify streams shards in chunks; tiny chunks make every record span several of them."""
    from smartsplat_dist.archive import verify, writer

    if request.param == "tiny-chunks":
        monkeypatch.setattr(verify, "CHUNK_BYTES", 97)
        monkeypatch.setattr(writer, "READ_BATCH_BYTES", 1)  # commit reads staged records one by one
    return request.param


def test_flipped_byte_in_a_record(folder_url, chunking):
    from tests.archive.archive_helpers import build_archive

    built = build_archive(*folder_url)
    assert verify_archive(built.url, built.opts).ok
    image_id, e = _entry(built)
    _flip(built.folder, shard_tar_name(0), e["offset"] + e["length"] // 2)
    rep = verify_archive(built.url, built.opts)
    assert not rep.ok
    assert any(shard_tar_name(0) in d and "sha256 does not match" in d for d in rep.damaged)
    assert any(shard_tar_name(0) in d and repr(image_id) in d and "damaged" in d for d in rep.damaged)
    others = [i for i in built.records if i != image_id]
    assert not any(repr(i) in d for d in rep.damaged for i in others)  # only that record is named
    a = open_archive(built.url, built.opts)
    with pytest.raises(ArchiveError, match=rf"shard 0 .*{image_id}.*sha256"):
        a.get(image_id)
    assert a.get(built.plan[0][1]) == built.records[built.plan[0][1]]  # its neighbour is still fine


def test_flipped_byte_in_the_tar_index(local_built):
    f = local_built.folder
    data = f.read_bytes(shard_tar_name(0))
    pos = data.index(b'"sha256"', data.index(b"__index__.json") + 512) + 12
    _flip(f, shard_tar_name(0), pos)
    rep = verify_archive(local_built.url)
    assert any("__index__.json disagrees" in d or "not valid JSON" in d for d in rep.damaged), rep.damaged


def test_truncated_shard(built, chunking):
    f = built.folder
    _, e = _entry(built, 2, 0)
    data = f.read_bytes(shard_tar_name(2))
    f.write_bytes(shard_tar_name(2), data[: e["offset"] + e["length"] // 2])
    rep = verify_archive(built.url, built.opts)
    assert not rep.ok
    assert any(shard_tar_name(2) in d and "truncated" in d for d in rep.damaged), rep.damaged
    with pytest.raises(ArchiveError, match="shard 2"):
        open_archive(built.url, built.opts).get(built.plan[2][0])


def test_missing_tar(local_built):
    local_built.folder.delete(shard_tar_name(1))
    rep = verify_archive(local_built.url)
    assert any(shard_tar_name(1) in d and "missing" in d for d in rep.damaged)
    with pytest.raises(ArchiveError, match="missing"):
        open_archive(local_built.url).get(local_built.plan[1][0])


def test_missing_marker_makes_the_shard_uncommitted(local_built):
    f = local_built.folder
    f.delete(shard_marker_name(1))
    rep = verify_archive(local_built.url)
    assert len(rep.uncommitted) == 1 and shard_tar_name(1) in rep.uncommitted[0]
    assert all(i in rep.uncommitted[0] for i in local_built.plan[1] if i in local_built.records)
    assert set(local_built.plan[1]).isdisjoint(open_archive(local_built.url).ids())
    assert rep.pending == len(local_built.plan[1])
    # the manifest still lists them: that disagreement is damage
    assert any(MANIFEST in d and "no committed shard" in d for d in rep.damaged)
    f.delete(MANIFEST)
    rep = verify_archive(local_built.url)
    assert rep.ok and rep.uncommitted  # an uncommitted shard alone is not damage


@pytest.mark.parametrize("tamper", ["sha", "offset", "size", "json", "rows"])
def test_tampered_marker(local_built, tamper):
    f = local_built.folder
    name = shard_marker_name(0)
    marker = json.loads(f.read_bytes(name))
    image_id = local_built.plan[0][0]
    if tamper == "sha":
        marker["index"][image_id]["sha256"] = "0" * 64
    elif tamper == "offset":
        marker["index"][image_id]["offset"] += 512
        marker["rows"][0]["offset"] += 512
    elif tamper == "size":
        marker["size"] += 10
    elif tamper == "rows":
        marker["rows"][0]["status"] = "failed"
    raw = b"{not json" if tamper == "json" else json.dumps(marker).encode()
    f.write_bytes(name, raw)
    rep = verify_archive(local_built.url)
    assert not rep.ok
    assert any(shard_marker_name(0) in d or shard_tar_name(0) in d for d in rep.damaged), rep.damaged
    if tamper == "sha":
        with pytest.raises(ArchiveError, match="sha256"):
            open_archive(local_built.url).get(image_id)


def test_tampered_manifest_row(local_built):
    f = local_built.folder
    rows = [json.loads(line) for line in f.read_bytes(MANIFEST).splitlines()]
    rows[0]["psnr"] = 99.0
    f.write_bytes(MANIFEST, b"".join(json.dumps(r).encode() + b"\n" for r in rows))
    rep = verify_archive(local_built.url)
    assert any(MANIFEST in d and repr(rows[0]["id"]) in d and "psnr" in d for d in rep.damaged)


def test_record_that_fails_its_own_checksum(tmp_path):
    """A record whose sha256 in the marker matches but whose own checksum does not (damaged before commit
    with the check off) is found by the decode pass."""
    from tests.archive.archive_helpers import build_archive, make_record
    from smartsplat_dist.archive import ArchiveWriter

    b = build_archive(str(tmp_path / "a"), n=1, fail=(), commit=False)
    bad = bytearray(make_record(0))
    bad[len(bad) // 2] ^= 1
    w = ArchiveWriter(b.folder, b.writer.run_config, b.listing, check_records=False)
    w.stage(b.ids[0], bytes(bad), {"source": b.listing[0], "height": 16, "width": 24})
    w.commit_shard(0, b.ids)
    rep = verify_archive(b.url)
    assert any("does not decode" in d and b.ids[0] in d for d in rep.damaged), rep.damaged
    assert verify_archive(b.url, check_records=False).ok


def test_cli_verify_and_status(local_built, capsys):
    assert main(["verify", local_built.url]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.strip().endswith(": OK") and "3 shards" in out
    assert main(["status", local_built.url, "--json"]) == EXIT_OK
    st = json.loads(capsys.readouterr().out)
    assert (st["committed"], st["failed"], st["pending"]) == (4, 1, 0)
    assert main(["status", local_built.url]) == EXIT_OK
    table = capsys.readouterr().out
    assert "committed" in table and "4 in 3 shards" in table and "mean PSNR" in table
    image_id, e = _entry(local_built)
    _flip(local_built.folder, shard_tar_name(0), e["offset"])
    assert main(["verify", local_built.url]) == EXIT_DAMAGED
    out = capsys.readouterr().out
    assert "DAMAGED" in out and image_id in out and "DAMAGED" in out.strip().splitlines()[-1]


def test_cli_with_s3_storage_options(s3, capsys):
    from tests.archive.archive_helpers import build_archive

    b = build_archive(s3.url(), s3.storage_options, n=2, fail=())
    assert main(["verify", b.url, "--storage-options", json.dumps(s3.storage_options)]) == EXIT_OK
    assert main(["status", b.url, "--json", "--storage-options", json.dumps(s3.storage_options)]) == EXIT_OK
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["committed"] == 2
    assert main(["status", b.url, "--storage-options", "[1"]) == EXIT_ERROR
    assert main(["status", "/nonexistent/archive"]) == EXIT_ERROR
