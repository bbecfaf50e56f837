"""Hostile archives: each damaged piece stops only itself, with a one-line error, and nothing runs forever."""
import json
import os

import pytest

from smartsplat_dist.archive import archive_status, open_archive, verify_archive
from smartsplat_dist.archive.layout import loads
from smartsplat_dist.cli import main
from smartsplat_dist.errors import EXIT_DAMAGED, ArchiveError

from .archive_helpers import build_archive

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture
def built(tmp_path):
    return build_archive(str(tmp_path / "arch"), n=5, per_shard=2, fail=())


def test_deep_json_is_an_archive_error_not_recursion():
    with pytest.raises(ArchiveError, match="nested deeper"):
        loads(DEEP, "x.json")
    with pytest.raises(ArchiveError, match="nested deeper"):
        loads(b'{"a": ' * 70 + b"1" + b"}" * 70, "x.json")  # parses, but deeper than any archive JSON


@pytest.mark.parametrize("path", ["shards/shard-00001.json", "run.json", "manifest.jsonl"])
def test_deep_json_in_any_archive_file_is_named_by_verify(built, path, capsys):
    with open(os.path.join(built.url, path), "wb") as f:
        f.write(DEEP + b"\n")
    assert main(["verify", built.url]) == EXIT_DAMAGED
    out = capsys.readouterr().out
    assert "Traceback" not in out and ("nested deeper" in out or "no committed shard" in out)


def test_invalid_marker_stops_only_its_shard(built, capsys):
    with open(os.path.join(built.url, "shards/shard-00001.json"), "w") as f:
        f.write("{not json")
    arc = open_archive(built.url)
    assert len(arc.damaged) == 1 and "shard-00001.json" in arc.damaged[0]
    assert sorted(arc.ids()) == sorted(set(built.ids) - set(built.plan[1]))
    st = archive_status(built.url)
    assert st["shards"] == 2 and len(st["damaged"]) == 1
    assert main(["status", built.url]) == EXIT_DAMAGED
    assert "DAMAGED  shards/shard-00001.json" in capsys.readouterr().out


def test_verify_of_a_shard_linked_to_dev_zero_ends(built):
    tar = os.path.join(built.url, "shards/shard-00001.tar")
    os.unlink(tar)
    os.symlink("/dev/zero", tar)
    rep = verify_archive(built.url)  # would read forever without the marker's size bound
    assert any("shard-00001.tar: longer than" in d for d in rep.damaged)


def test_swapped_index_entries_do_not_decode_under_each_others_names(built):
    path = os.path.join(built.url, "shards/shard-00000.json")
    marker = json.load(open(path))
    a, b = list(marker["index"])
    marker["index"][a], marker["index"][b] = marker["index"][b], marker["index"][a]
    for row in marker["rows"]:  # a consistent forgery: rows agree with the swapped index
        e = marker["index"][row["id"]]
        row["offset"], row["length"], row["sha256"] = e["offset"], e["length"], e["sha256"]
    with open(path, "w") as f:
        json.dump(marker, f)
    arc = open_archive(built.url)
    for image_id in (a, b):
        with pytest.raises(ArchiveError, match=f"the tar member there is '{b if image_id == a else a}.rec'"):
            arc.get(image_id)
    assert arc.get(built.plan[1][0]) == built.records[built.plan[1][0]]  # other shards unaffected


def test_long_ids_read_back_through_their_pax_header(tmp_path):
    from smartsplat_dist.archive import ArchiveWriter

    w = ArchiveWriter(str(tmp_path / "a"), {"k": 1}, ["x"], check_records=False)
    w.open()
    long_id = "L" * 150
    w.stage(long_id, b"payload" * 100, {"source": "x"})
    w.commit_shard(0, [long_id])
    assert open_archive(str(tmp_path / "a")).get(long_id) == b"payload" * 100
