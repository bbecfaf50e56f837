"""Image ids (safe, readable, unique, deterministic) and the shard plan."""
from __future__ import annotations

import pytest

from smartsplat_dist.archive import check_id, image_id_for, image_ids_for, plan_shards
from smartsplat_dist.errors import ArchiveError, ConfigError


def test_ids_are_readable_stems():
    assert image_ids_for(["s3://b/DIV16K/0001.png", "/data/photo 2.v3.PNG", "x/y/kodim01"]) == \
        ["0001", "photo_2_v3", "kodim01"]


@pytest.mark.parametrize("uri", ["../../etc/passwd", "/etc/passwd", "a/b/..", ".", "..", "s3://b/k/.hidden.png",
                                 "C:\\Users\\x\\..\\evil.png", "dir/\x00nul.png", "__index__.json", "-rf.png",
                                 "s3://b/ñandú €.png", "x/" + "a" * 300 + ".png"])
def test_ids_are_always_safe(uri):
    image_id = image_id_for(uri, set())
    assert check_id(image_id) == image_id
    assert "/" not in image_id and image_id not in (".", "..", "__index__") and len(image_id) <= 80


def test_clashes_get_a_hash_suffix_case_insensitively():
    ids = image_ids_for(["a/img.png", "b/img.png", "c/IMG.jpg", "d/img.tif"])
    assert ids[0] == "img"
    assert len({i.lower() for i in ids}) == 4
    assert all(i.lower().startswith("img-") for i in ids[1:])
    assert image_ids_for(["a/img.png", "b/img.png", "c/IMG.jpg", "d/img.tif"]) == ids  # deterministic


def test_taken_set_is_updated():
    taken: set = set()
    first = image_id_for("a/x.png", taken)
    second = image_id_for("b/x.png", taken)
    assert first == "x" and second != first and {first.lower(), second.lower()} <= taken


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/b", "", ".", "..", "-x", ".hidden", "__index__",
                                 "a\x00b", "a b", "a\\b", "x" * 201, None, 3])
def test_check_id_rejects(bad):
    with pytest.raises(ArchiveError):
        check_id(bad)


def test_plan_shards():
    ids = [f"i{k}" for k in range(7)]
    assert plan_shards(ids, 3) == [["i0", "i1", "i2"], ["i3", "i4", "i5"], ["i6"]]
    assert plan_shards(ids, 10) == [ids]
    assert plan_shards([], 2) == []
    for bad in (0, -1, 1.5):
        with pytest.raises(ConfigError):
            plan_shards(ids, bad)


def test_non_ascii_names_keep_their_names_safely(tmp_path):
    import pytest as _pytest

    from smartsplat_dist.archive import ArchiveWriter, check_id, image_id_for, open_archive
    from smartsplat_dist.errors import ArchiveError as _AE

    taken: set = set()
    assert image_id_for("/data/日本語.png", taken) == "日本語"
    assert image_id_for("/data/Ünïcode café.jpg", taken) == "Ünïcode_café"
    assert image_id_for("/data/e\u0301te\u0301.png", taken) == "\u00e9t\u00e9"  # NFD file name -> NFC id
    assert image_id_for("/data/ÉTÉ.png", taken).startswith("ÉTÉ-")  # a case-insensitive clash
    for hostile in ("a\u202egnp.exe", "a\uff0fb", "..\u2215x", "x\u0000y", "a\u3000b"):
        assert all(c not in image_id_for(f"/d/{hostile}.png", taken) for c in "/\\\u202e\uff0f\u2215\u3000\x00.")
    for bad in ("a/b", "..", "a\u202eb", "\u0301x", "e\u0301", "x" * 70 + "日" * 50):
        with _pytest.raises(_AE):
            check_id(bad)
    w = ArchiveWriter(str(tmp_path / "a"), {"k": 1}, ["x"], check_records=False)
    w.open()
    w.stage("日本語", b"record bytes", {"source": "/data/日本語.png"})
    w.commit_shard(0, ["日本語"])
    assert open_archive(str(tmp_path / "a")).get("日本語") == b"record bytes"  # its pax header names it
