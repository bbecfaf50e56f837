"""compress / decode on a real local Ray cluster (one per module) with real storage: local disk and moto S3.

Every test runs the real actors; the shortest fit (5 steps, 48x32 images) keeps it to plumbing.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from smartsplat_dist.archive import archive_status, open_archive, stage, verify_archive
from smartsplat_dist.archive.layout import MANIFEST
from smartsplat_dist.cli import main
from smartsplat_dist.errors import EXIT_DAMAGED, EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, ArchiveError
from smartsplat_dist.io.storage import Folder
from smartsplat_dist.pipeline import compress_dataset, decode_archive
from smartsplat_dist.pipeline import faults

from .conftest import FAST, decoded_size, fast_config, tiny_photo, write_tiny_photos

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def local_archive(ray_local, tmp_path_factory):
    """4 tiny photos compressed through the CLI into a local archive of 4 one-image shards."""
    root = tmp_path_factory.mktemp("local")
    src = root / "src"
    write_tiny_photos(src, 4)
    arch = root / "archive"
    code = main(["compress", str(src), str(arch), *FAST, "--images-per-shard", "1", "--workers", "2",
                 "--address", ray_local, "--gpus-per-worker", "0", "--quiet"])
    assert code == EXIT_OK
    return src, arch


def _manifest(folder: Folder) -> list[dict]:
    return [json.loads(line) for line in folder.read_bytes(MANIFEST).decode().splitlines() if line.strip()]


def test_round_trip_local(local_archive, tmp_path, capsys, ray_local):
    src, arch = local_archive
    capsys.readouterr()
    assert main(["status", str(arch)]) == 0
    status = archive_status(str(arch))
    assert (status["committed"], status["failed"], status["pending"], status["shards"]) == (4, 0, 0, 4)
    assert status["mean_psnr"] > 5 and status["total_real_cr"] > 1
    assert main(["verify", str(arch)]) == 0
    assert "OK" in capsys.readouterr().out

    rows = _manifest(Folder(str(arch)))
    assert sorted(r["id"] for r in rows) == ["img0", "img1", "img2", "img3"]
    assert all(r["status"] == "ok" and r["source"] == str(src / f"{r['id']}.png") for r in rows)
    assert all(r["height"] == 32 and r["width"] == 48 and r["real_cr"] > 1 for r in rows)

    out = tmp_path / "decoded"
    code = main(["decode", str(arch), str(out), "--workers", "1", "--address", ray_local, "--gpus-per-worker", "0", "--quiet"])
    assert code == EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == [f"img{k}.png" for k in range(4)]
    assert decoded_size(out / "img0.png") == (48, 32)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    # idempotent: everything exists -> skipped, nothing rewritten; --scale and --ids for a subset
    again = decode_archive(str(arch), str(out), workers=1, progress=False)
    assert again.exit_code == EXIT_OK and again.skipped == 4 and again.processed == 0  # no actor needed
    assert before == {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    half = decode_archive(str(arch), str(tmp_path / "half"), ids=["img2"], scale=0.5, fmt="jpeg", workers=1,
                          progress=False)
    assert half.exit_code == EXIT_OK
    assert [p.name for p in (tmp_path / "half").iterdir()] == ["img2.jpg"]
    assert decoded_size(tmp_path / "half" / "img2.jpg") == (24, 16)


def test_round_trip_s3(ray_local, s3, tmp_path):
    """SRC, archive and decoded images all on S3; the workers reach the endpoint only through the forwarded
    AWS_ENDPOINT_URL (Ray was started without it, and no storage_options are given)."""
    assert os.environ["AWS_ENDPOINT_URL"] == s3.endpoint
    src, arch, dec = s3.url(), s3.url(), s3.url()
    client = s3.client()
    for k in range(3):
        p = tmp_path / f"shot{k}.png"
        tiny_photo(k + 5).save(p)
        client.upload_file(str(p), s3.bucket, f"{src.split('/', 3)[3]}/sub/shot{k}.png")
    result = compress_dataset(src, arch, fast_config(), workers=1, images_per_shard=2, progress=False)
    assert result.exit_code == EXIT_OK and result.ok == 3 and result.shards_committed == 2
    status = archive_status(arch)
    assert (status["committed"], status["pending"], status["shards"]) == (3, 0, 2)
    assert verify_archive(arch).ok
    assert sorted(open_archive(arch).ids()) == ["shot0", "shot1", "shot2"]

    decoded = decode_archive(arch, dec, workers=1, progress=False)
    assert decoded.exit_code == EXIT_OK
    out = Folder(dec)
    assert out.list() == ["shot0.png", "shot1.png", "shot2.png"]
    with Image.open(__import__("io").BytesIO(out.read_bytes("shot1.png"))) as im:
        assert im.size == (48, 32)


def test_different_config_is_refused(local_archive, capsys):
    src, arch = local_archive
    before = sorted(p.name for p in (arch / "shards").iterdir())
    with pytest.raises(ArchiveError, match="different settings.*cr"):
        compress_dataset(str(src), str(arch), fast_config().replace(cr=50.0), progress=False)
    capsys.readouterr()
    code = main(["compress", str(src), str(arch), "--cr", "20", "--steps", "6", "--images-per-shard", "1"])
    assert code == EXIT_ERROR
    assert "steps" in capsys.readouterr().err
    assert before == sorted(p.name for p in (arch / "shards").iterdir())


def _mixed_folder(root: Path) -> Path:
    """Good images of awkward kinds + bad ones of every kind."""
    d = root / "mixed"
    d.mkdir()
    base = tiny_photo(1)
    base.convert("L").save(d / "gray.png")
    rgba = base.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(d / "rgba.png")
    Image.fromarray((np.asarray(base.convert("L"), dtype=np.uint16) * 257)).save(d / "deep16.png")
    base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(d / "palette.png")
    base.convert("CMYK").save(d / "cmyk.jpg")
    good = (d / "gray.png").read_bytes()
    (d / "truncated.png").write_bytes(good[: len(good) // 2])
    (d / "corrupt.png").write_bytes(good[:40] + bytes(range(256)) * 4)
    (d / "notanimage.png").write_text("hello, I am a text file\n")
    (d / "empty.jpg").write_bytes(b"")
    tiny_photo(2).resize((80, 60)).save(d / "toobig.png")  # 4800 px > --max-pixels 3000
    return d


def test_bad_images_fail_alone_with_reasons(ray_local, s3, tmp_path, capsys):
    d = _mixed_folder(tmp_path)
    missing_s3 = f"{s3.url()}/gone.png"
    listing = tmp_path / "listing.txt"
    listing.write_text("# mixed bag\n" + "".join(f"mixed/{p.name}\n" for p in sorted(d.iterdir()))
                       + f"{missing_s3}\nmixed/never-existed.png\n")
    arch = tmp_path / "archive"
    capsys.readouterr()
    code = main(["compress", str(listing), str(arch), *FAST, "--max-pixels", "3000", "--workers", "1",
                 "--images-per-shard", "4", "--address", ray_local, "--gpus-per-worker", "0", "--quiet"])
    assert code == EXIT_PARTIAL
    err = capsys.readouterr().err
    rows = {r["id"]: r for r in open_archive(str(arch)).rows()}
    good = {"gray", "rgba", "deep16", "palette", "cmyk"}
    bad = {"truncated", "corrupt", "notanimage", "empty", "toobig", "gone", "never-existed"}
    assert set(rows) == good | bad
    assert {i for i, r in rows.items() if r["status"] == "ok"} == good
    for i in bad:
        assert rows[i]["status"] == "failed" and rows[i]["error"], i
        assert f"FAILED {i}" in err and rows[i]["error"] in err  # listed on screen with its reason
    assert "3000" in rows["toobig"]["error"] or "pixels" in rows["toobig"]["error"]
    assert "gone.png" in rows["gone"]["error"]
    assert rows["deep16"]["conversions"] and rows["cmyk"]["conversions"]
    assert len(_manifest(Folder(str(arch)))) == 12
    assert verify_archive(str(arch)).ok


def test_actor_killed_mid_image_is_replaced_and_retried(ray_local, tmp_path, monkeypatch):
    src = tmp_path / "src"
    write_tiny_photos(src, 3)
    monkeypatch.setenv(faults.ENV_FAULT, "kill-actor:img0:1;kill-actor:img2:5")
    monkeypatch.setenv(faults.ENV_FAULT_DIR, str(tmp_path / "faults"))
    arch = tmp_path / "archive"
    result = compress_dataset(str(src), str(arch), fast_config(), workers=1, max_retries=1, images_per_shard=3,
                              progress=False)
    # img0: killed once, retried, archived; img2: killed on both attempts -> failed with the reason
    assert result.exit_code == EXIT_PARTIAL and result.actor_restarts == 3
    rows = {r["id"]: r for r in open_archive(str(arch)).rows()}
    assert rows["img0"]["status"] == "ok" and rows["img1"]["status"] == "ok"
    assert rows["img2"]["status"] == "failed"
    assert "worker died" in rows["img2"]["error"] and "2 attempts" in rows["img2"]["error"]
    assert verify_archive(str(arch)).ok
    assert len(os.listdir(tmp_path / "faults")) == 1 + 2  # img0 killed once, img2 twice


def _cli(args, env=None, **kw):
    return subprocess.Popen([sys.executable, "-m", "smartsplat_dist", *args], cwd=REPO,
                            env={**os.environ, "RAY_AUTH_MODE": "disabled", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_resume_after_driver_sigkill(ray_local, tmp_path):
    src = tmp_path / "src"
    write_tiny_photos(src, 5)
    arch = tmp_path / "archive"
    fault_dir = tmp_path / "faults"
    args = ["compress", str(src), str(arch), *FAST, "--images-per-shard", "1", "--workers", "1",
            "--address", ray_local, "--gpus-per-worker", "0"]
    proc = _cli(args, env={faults.ENV_FAULT: "pause-driver-after-commits:1",
                           faults.ENV_FAULT_DIR: str(fault_dir)})
    try:
        deadline = time.monotonic() + 240
        # the driver committed shard 0 and paused; its actor keeps going with the next image: wait for it
        while not (fault_dir / "driver-paused").exists() or not (arch / "staging" / "img1.json").exists():
            assert proc.poll() is None, proc.communicate()[0]
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("driver never reached its first commit:\n" + proc.communicate()[0])
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    markers = sorted(p.name for p in (arch / "shards").glob("*.json"))
    assert markers == ["shard-00000.json"]
    # the manifest is current while the job runs: it already lists the committed shard's image
    assert [r["id"] for r in _manifest(Folder(str(arch)))] == ["img0"]

    # same command again: shard 0 is skipped, img1 is committed from staging, only img2..img4 are fitted
    result = compress_dataset(str(src), str(arch), fast_config(), workers=1, images_per_shard=1, progress=False)
    assert result.exit_code == EXIT_OK
    assert (result.processed, result.skipped) == (3, 2)
    rep = verify_archive(str(arch))
    assert rep.ok and rep.records == 5 and not rep.uncommitted
    arc = open_archive(str(arch))
    assert sorted(arc.ids()) == [f"img{k}" for k in range(5)] and len(arc.ids()) == 5
    ids = [r["id"] for r in _manifest(Folder(str(arch)))]
    assert sorted(ids) == [f"img{k}" for k in range(5)]  # every image exactly once
    assert not list((arch / "staging").iterdir())


def test_damaged_archive_verify_names_it_and_decode_skips_it(local_archive, tmp_path, capsys, ray_local):
    _, good = local_archive
    arch = tmp_path / "damaged"
    shutil.copytree(good, arch)
    markers = {k: json.loads((arch / "shards" / f"shard-{k:05d}.json").read_text()) for k in range(4)}
    # shard 0: one flipped byte inside its record; shard 1: truncated; shard 2: marker lost; shard 3 intact
    (entry,) = markers[0]["index"].values()
    tar0 = arch / "shards" / "shard-00000.tar"
    data = bytearray(tar0.read_bytes())
    data[entry["offset"] + entry["length"] // 2] ^= 0x40
    tar0.write_bytes(bytes(data))
    tar1 = arch / "shards" / "shard-00001.tar"
    tar1.write_bytes(tar1.read_bytes()[:700])
    (arch / "shards" / "shard-00002.json").unlink()

    rep = verify_archive(str(arch))
    assert not rep.ok
    text = "\n".join(rep.damaged + rep.uncommitted + rep.notes)
    assert "shard-00000" in text or "shard 0" in text
    assert "shard-00001" in text or "shard 1" in text
    assert "shard-00002" in text or "shard 2" in text
    capsys.readouterr()
    assert main(["verify", str(arch)]) != 0

    out = tmp_path / "out"
    result = decode_archive(str(arch), str(out), ids=["img0", "img1", "img2", "img3"], workers=1, progress=False)
    assert result.exit_code == EXIT_DAMAGED
    why = dict(result.failures)
    assert why["img0"].startswith("damaged") and why["img1"].startswith("damaged")
    assert "not in the archive" in why["img2"]
    assert [p.name for p in out.iterdir()] == ["img3.png"]


def test_staged_record_disagreeing_with_its_row_is_refitted(ray_local, tmp_path):
    """A staged record whose bytes no longer match its row (two attempts at one image interleaved) is not
    committed: the image is unstaged, fitted again, and the run completes with a verified archive."""
    src = tmp_path / "src"
    write_tiny_photos(src, 2)
    arch = tmp_path / "archive"
    first = compress_dataset(str(src), str(arch), fast_config(), workers=1, images_per_shard=2,
                             address=ray_local, gpus_per_worker=0, progress=False)
    assert first.exit_code == EXIT_OK
    # Re-create the staged state of a run that died before its commit, with a record that disagrees.
    folder = Folder(str(arch))
    archive = open_archive(str(arch))
    records = {i: (archive.get(i), archive.row(i)) for i in ("img0", "img1")}
    for name in folder.list("shards"):
        folder.delete(name)
    folder.delete(MANIFEST)
    for image_id, (record, row) in records.items():
        stage(folder, image_id, record, row)
    bad = records["img0"][0]
    folder.write_bytes("staging/img0.rec", bad[:-1] + bytes([bad[-1] ^ 1]))

    again = compress_dataset(str(src), str(arch), fast_config(), workers=1, images_per_shard=2,
                             address=ray_local, gpus_per_worker=0, progress=False)
    assert again.exit_code == EXIT_OK and again.ok == 2
    assert verify_archive(str(arch)).ok
    assert sorted(open_archive(str(arch)).ids()) == ["img0", "img1"]


def test_retry_failed_replaces_a_committed_shard(ray_local, tmp_path):
    """A failed image inside a committed shard is fitted again with --retry-failed; its shard is replaced by
    generation 1 holding the old ok image unchanged and the new one; the manifest follows."""
    src, arch = tmp_path / "src", tmp_path / "archive"
    paths = write_tiny_photos(src, 4)
    good = paths[2].read_bytes()
    paths[2].write_bytes(b"not an image at all")
    first = compress_dataset(str(src), str(arch), fast_config(), workers=1, images_per_shard=2, gpus_per_worker=0,
                             progress=False)
    assert first.exit_code == EXIT_PARTIAL and [f[0] for f in first.failures] == ["img2"]
    img3 = open_archive(str(arch)).get("img3")
    again = compress_dataset(str(src), str(arch), fast_config(), workers=1, images_per_shard=2, gpus_per_worker=0,
                             progress=False)
    assert again.exit_code == EXIT_PARTIAL and again.processed == 0  # without the flag a failure stays
    paths[2].write_bytes(good)  # the cause is fixed (e.g. the object was re-uploaded)
    fixed = compress_dataset(str(src), str(arch), fast_config(), workers=1, images_per_shard=2, gpus_per_worker=0,
                             progress=False, retry_failed=True)
    assert fixed.exit_code == EXIT_OK and fixed.processed == 1 and fixed.ok == 4
    names = sorted(p.name for p in (arch / "shards").iterdir())
    assert names == ["shard-00000.json", "shard-00000.tar", "shard-00001.g1.json", "shard-00001.g1.tar"]
    arc = open_archive(str(arch))
    assert arc.get("img3") == img3 and arc.row("img2")["status"] == "ok"
    assert [r["status"] for r in _manifest(Folder(str(arch)))] == ["ok"] * 4
    assert verify_archive(str(arch)).ok
