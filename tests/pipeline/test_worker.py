"""The actors' classes used directly, without Ray (they are plain classes)."""
from __future__ import annotations

import pytest

from smartsplat_dist.archive import ArchiveWriter, open_archive, read_staged
from smartsplat_dist.errors import ArchiveError
from smartsplat_dist.io.storage import Folder
from smartsplat_dist.pipeline.worker import CompressWorker, DecodeWorker

from .conftest import decoded_size, fast_config, write_tiny_photos


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("worker")
    (good,) = write_tiny_photos(root / "src", 1)
    bad = root / "src" / "bad.png"
    bad.write_bytes(b"not an image at all")
    arch = root / "archive"
    listing = [str(good), str(bad), str(root / "src" / "missing.png")]
    writer = ArchiveWriter(str(arch), {"encode": fast_config().to_dict()}, listing)
    writer.open()
    w = CompressWorker(str(arch), None, fast_config().to_dict())
    rows = {i: w.compress(i, uri) for i, uri in zip(("img0", "bad", "missing"), listing)}
    writer.commit_shard(0, ["img0", "bad", "missing"])
    writer.write_manifest()
    return arch, rows


def test_compress_stages_ok_and_failed_rows_and_survives_bad_input(archive):
    arch, rows = archive
    ok = rows["img0"]
    assert ok["status"] == "ok" and (ok["height"], ok["width"]) == (32, 48) and ok["length"] > 0
    assert ok["fit_seconds"] > 0 and ok["stage_seconds"] >= 0 and ok["read_seconds"] >= 0
    assert rows["bad"]["status"] == "failed" and "not an image" in rows["bad"]["error"]
    assert rows["missing"]["status"] == "failed" and "cannot read" in rows["missing"]["error"]
    assert read_staged(Folder(str(arch))) == {}  # committed: staging cleaned up
    assert open_archive(str(arch)).ids() == ["img0"]


def test_compress_rejects_unsafe_ids(tmp_path):
    w = CompressWorker(str(tmp_path / "a"), None, fast_config().to_dict())
    with pytest.raises(ArchiveError):
        w.compress("../escape", str(tmp_path / "x.png"))


def test_decode_writes_skips_and_never_escapes(archive, tmp_path):
    arch, _ = archive
    out = tmp_path / "out"
    d = DecodeWorker(str(arch), str(out), None, fmt="webp", scale=2.0)
    row = d.decode("img0")
    assert row["status"] == "ok" and decoded_size(out / "img0.webp") == (96, 64)
    assert d.decode("img0")["status"] == "skipped"
    assert DecodeWorker(str(arch), str(out), None, fmt="webp", overwrite=True).decode("img0")["status"] == "ok"
    for evil in ("../img0", "/etc/passwd", "a/b", ".hidden", ""):
        r = d.decode(evil)
        assert r["status"] == "failed" and "invalid image id" in r["error"]
    assert d.decode("bad")["status"] == "failed"  # failed to encode: not in the archive's records
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in out.iterdir()] == ["img0.webp"]
