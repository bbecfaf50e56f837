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
