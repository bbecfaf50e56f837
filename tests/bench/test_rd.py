"""The rd benchmark: aggregation, BD table, CompressAI files and plot; and one real run through the API."""
import argparse
import json
from pathlib import Path

import numpy as np
import pytest

import smartsplat_dist
from smartsplat_dist.bench import classic, rd
from smartsplat_dist.errors import RecordError
from smartsplat_dist.io.images import load_image, save_image

EXAMPLES = Path(smartsplat_dist.__file__).parent / "examples"


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    """Two 96x128 crops of the bundled real photos."""
    d = tmp_path_factory.mktemp("photos")
    for name in ("Bamboo.png", "Mountain.png"):
        px = load_image(EXAMPLES / name).pixels[40:136, 60:188]
        save_image(np.ascontiguousarray(px), d / name)
    return d


def _fake_codec():
    """'Ours' = WebP at a CR-dependent quality: a stand-in with real bytes, to test the plumbing alone."""
    def enc(pixels, cr, steps, seed, backend):
        q = {20: 92, 50: 75, 100: 50}[int(cr)]
        data = classic.encode("webp", pixels, q)
        return data, {"n_gaussians": 1, "steps": steps}

    return enc, lambda data, backend: classic.decode("webp", data)


def test_run_rd_plumbing():
    enc, dec = _fake_codec()
    files = [EXAMPLES / "Bamboo.png", EXAMPLES / "aitzgorri_by_Aitzol_Berasategi.png"]  # 384 x 256
    rows, curves, available = rd.run_rd({"tiny": files}, (20, 50, 100), 1, ("jpeg", "jpeg2000"),
                                        metrics={"psnr": _psnr}, encode_fn=enc, decode_fn=dec,
                                        log=lambda *a, **k: None)
    ours = [r for r in rows if r["label"] == rd.OURS]
    assert len(ours) == 6
    for o in ours:  # every classic row is matched to the same image's record size
        for r in rows:
            if r["label"] != rd.OURS and r["image"] == o["image"] and r["cr"] == o["cr"] and r["status"] == "ok":
                assert r["bytes"] <= o["bytes"] == r["target_bytes"]
    c = curves["tiny"][rd.OURS]
    assert c["cr"] == [20, 50, 100]
    per = [np.mean([r["bpp"] for r in ours if r["cr"] == cr]) for cr in (20, 50, 100)]
    assert c["bpp"] == pytest.approx(per)
    assert set(curves["tiny"]) >= {rd.OURS, "JPEG 2000"}
    table = rd.bd_table(curves)
    j2k = next(t for t in table if t["codec"] == "JPEG 2000")
    assert j2k["points_ours"] == 3 and isinstance(j2k["bd_psnr_db"], float)


def test_a_failed_record_is_a_row_and_the_run_goes_on():
    enc, dec = _fake_codec()

    def flaky(pixels, cr, **kw):
        if cr == 50:
            raise RecordError("cannot encode: 20 non-finite values in means")
        return enc(pixels, cr, **kw)

    logged = []
    rows, curves, _ = rd.run_rd({"tiny": [EXAMPLES / "Bamboo.png"]}, (20, 50, 100), 1, ("jpeg",),
                                metrics={"psnr": _psnr}, encode_fn=flaky, decode_fn=dec,
                                log=lambda *a, **k: logged.append(a[0]))
    ours = {r["cr"]: r for r in rows if r["label"] == rd.OURS}
    assert ours[50]["status"] == "failed" and "non-finite" in ours[50]["reason"]
    assert ours[20]["status"] == ours[100]["status"] == "ok"
    assert not [r for r in rows if r["label"] != rd.OURS and r["cr"] == 50]  # nothing to match a size to
    assert curves["tiny"][rd.OURS]["cr"] == [20, 100] and any("FAILED" in line for line in logged)


def test_aggregate_drops_incomplete_points_and_says_why():
    rows = []
    for img in ("a", "b"):
        for cr, bpp in ((50, 0.5), (100, 0.25)):
            rows.append({"dataset": "d", "image": img, "cr": cr, "label": rd.OURS, "status": "ok", "bpp": bpp,
                         "psnr": 30 + bpp, "ssim": 0.9, "ms_ssim": 0.95, "encode_seconds": 1, "decode_seconds": 1})
            status = "unreachable" if (cr == 100 and img == "b") else "ok"
            rows.append({"dataset": "d", "image": img, "cr": cr, "label": "JPEG", "status": status,
                         "reason": "smallest JPEG file is 999 bytes" if status != "ok" else None,
                         "bpp": bpp * 0.9 if status == "ok" else None, "psnr": 29 if status == "ok" else None,
                         "ssim": None, "ms_ssim": None, "encode_seconds": 0.1, "decode_seconds": 0.1})
    curves = rd.aggregate(rows, (50, 100), {"d": 2})
    assert curves["d"][rd.OURS]["cr"] == [50, 100]
    assert curves["d"]["JPEG"]["cr"] == [50]
    assert "1/2 images matched" in curves["d"]["JPEG"]["missing"][0]
    table = rd.bd_table(curves)
    assert table[0]["bd_rate_psnr_pct"] is None and "2 matched points" in table[0]["note"]
    docs = rd.compressai_docs(curves, "test")
    doc = docs["d"][rd.OURS]
    assert doc["name"] == rd.OURS
    assert set(doc["results"]) == {"bpp", "psnr-rgb", "ms-ssim", "ssim", "encoding_time", "decoding_time"}
    assert doc["results"]["bpp"] == [0.5, 0.25]


def test_per_image_bd_keeps_the_images_a_codec_matched_where_the_mean_curve_cannot():
    """Image a: ours needs half the bits of WebP for the same PSNR; b: twice; c: WebP matched one CR only (left
    out of both). The mean curve has no WebP point at CR 200 (c missed it), per image each is counted."""
    rows = []
    for img, factor in (("a", 0.5), ("b", 2.0), ("c", 1.0)):
        for cr, psnr in ((50, 36.0), (100, 33.0), (200, 30.0)):
            bpp = 24 / cr
            rows.append({"dataset": "d", "image": img, "cr": cr, "label": rd.OURS, "status": "ok", "bpp": bpp,
                         "psnr": psnr, "ms_ssim": 0.9})
            ok = img != "c" or cr == 50
            rows.append({"dataset": "d", "image": img, "cr": cr, "label": "WebP", "status": "ok" if ok else "unreachable",
                         "bpp": bpp / factor, "psnr": psnr, "ms_ssim": 0.9})
    (row,) = rd.per_image_bd(rows)
    assert (row["dataset"], row["codec"], row["psnr"]["images"]) == ("d", "WebP", 2)
    assert row["psnr"]["per_image"]["a"] == pytest.approx(-50.0) and row["psnr"]["per_image"]["b"] == pytest.approx(100.0)
    assert row["psnr"]["mean_pct"] == pytest.approx(25.0) and row["psnr"]["at_or_below_zero"] == 1
    assert rd.aggregate(rows, (50, 100, 200), {"d": 3})["d"]["WebP"]["cr"] == [50]


def test_resolve_datasets_falls_back_to_examples(monkeypatch, tmp_path):
    monkeypatch.delenv("SMARTSPLAT_BENCH_DATA", raising=False)
    folders, note = rd.resolve_datasets(None, quick=True)
    assert folders == [rd.EXAMPLES] and "bundled example" in note
    assert rd.resolve_datasets([str(tmp_path)], quick=False) == ([tmp_path], None)
    (tmp_path / "photos-768").mkdir()
    monkeypatch.setenv("SMARTSPLAT_BENCH_DATA", str(tmp_path))
    folders, note = rd.resolve_datasets(None, quick=False)
    assert folders == [tmp_path / "photos-768"] and str(tmp_path / "photos-2k") in note


def test_rd_benchmark_end_to_end_with_the_real_codec(small_dir, tmp_path):
    """`smartsplat bench rd` through the real encode_image/decode_image at a few steps."""
    pytest.importorskip("matplotlib")
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out")
    rd.add_arguments(parser)
    out = tmp_path / "res" / "rd.json"
    args = parser.parse_args(["--out", str(out), "--data", str(small_dir), "--cr", "20", "50", "--steps", "3",
                              "--images", "1", "--codecs", "jpeg", "webp", "--backend", "cpu"])
    payload = rd.run(args)
    assert payload["images"] == "real photographs"
    assert payload["datasets"] == {small_dir.name: ["Bamboo.png"]}
    ours = [r for r in payload["rows"] if r["label"] == rd.OURS]
    assert len(ours) == 2 and all(r["bytes"] > 0 and r["psnr"] > 5 for r in ours)
    assert ours[0]["bytes"] > ours[1]["bytes"]  # CR 20 record is bigger than CR 50
    res = out.parent / "rd-results" / rd._slug(small_dir.name)
    doc = json.loads((res / "smartsplat.json").read_text())
    assert doc["name"] == rd.OURS and len(doc["results"]["bpp"]) == 2
    assert (res / "jpeg.json").exists() and (out.parent / "rd-results" / "bdrate.json").exists()
    png = out.with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    json.dumps(payload, allow_nan=False)  # standard JSON: no NaN
