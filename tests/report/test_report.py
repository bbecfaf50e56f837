"""The HTML report: content, escaping, self-containment, crops, a running archive, missing sources, --rd."""
import html
import json
import re
import shutil

import numpy as np
import pytest

from smartsplat_dist.report import build_report
from smartsplat_dist.report.build import ReportData, pick_samples, source_candidates
from smartsplat_dist.report.crops import decode_window, detail_window
from smartsplat_dist.report.page import render_page

from .conftest import HOSTILE


@pytest.fixture(scope="module")
def page(small_archive):
    return build_report(small_archive["url"], samples=3, backend="cpu", source_root=str(small_archive["src"]))


def _rows(html):
    return re.findall(r'<tr class="[^"]*" data-status="([^"]*)" data-id="([^"]*)"', html)


def test_table_has_committed_failed_and_staged_rows(page):
    rows = dict((i, s) for s, i in _rows(page))
    assert rows == {"bamboo": "ok", "mountain": "ok", "broken": "failed", "seeding": "ok"}
    assert ">staged</td>" in page and "staged but not yet in a committed shard" in page
    assert "4 of 4 input images" not in page  # all 4 are done (3 committed + 1 staged)


def test_manifest_text_is_escaped(page):
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in page
    assert html.escape(HOSTILE, quote=True) in page
    assert page.count("<script") == 1  # only the report's own script


def test_page_is_self_contained(page):
    assert not re.search(r'(?:src|href)\s*=\s*"(?!data:|#)', page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert "default-src 'none'" in page  # the CSP forbids any fetch even if something slipped through


def test_settings_distributions_and_samples(page):
    assert "config.cr" in page and "config.fit.steps" in page and "listing_digest" in page
    assert page.count("<svg") == 3
    samples = re.findall(r'<div class="sample" data-id="([^"]+)"', page)
    assert len(samples) == 3 and set(samples) <= {"bamboo", "mountain", "seeding"}
    # original + decoded for each sample, as inline PNGs
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 6
    assert "crop PSNR" in page and "100% zoom" in page


def test_missing_source_is_noted_not_fatal(small_archive, tmp_path):
    url = tmp_path / "archive"
    shutil.copytree(small_archive["url"], url)
    moved = tmp_path / "moved"
    shutil.copytree(small_archive["src"], moved)
    # Sources are gone for this copy: point the rows at a folder that does not exist.
    page = build_report(str(url), samples=4, backend="cpu", source_root=str(tmp_path / "gone"))
    assert "original not available" in page
    assert page.count("original not available") >= 3
    assert len(re.findall(r'<img src="data:image/png', page)) == 3  # decoded crops still shown
    # --source-root finds them again by relative path / name.
    page = build_report(str(url), samples=4, backend="cpu", source_root=str(moved))
    assert "original not available" not in page
    assert len(re.findall(r'<img src="data:image/png', page)) == 6


def test_source_candidates():
    assert source_candidates("s3://b/in/a/x.png", None, None) == []  # never the archive's own URI
    assert source_candidates("s3://b/in/a/x.png", "/local", "b/in") == ["/local/a/x.png", "/local/x.png"]


def test_decode_window_equals_decode_image_crop(small_archive):
    from smartsplat_dist.api import decode_image

    record = small_archive["records"]["bamboo"]
    full = decode_image(record, backend="cpu")
    for x0, y0, w, h in ((0, 0, 64, 48), (100, 70, 120, 90), (200, 130, 40, 30)):
        win = decode_window(record, x0, y0, w, h, backend="cpu")
        ref = full[y0:y0 + h, x0:x0 + w]
        diff = np.abs(win.astype(int) - ref.astype(int))
        assert win.shape == ref.shape and diff.max() <= 1 and (diff == 0).mean() > 0.99


def test_detail_window_finds_the_texture():
    rng = np.random.default_rng(0)
    img = np.full((600, 900, 3), 120, np.uint8)
    img[300:556, 500:756] = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    assert detail_window(img, 256) == (500, 300, 256, 256)
    small = img[::4, ::4]  # a 4x smaller proxy gives the same window, to proxy precision
    x0, y0, w, h = detail_window(small, 256, scale=0.25)
    assert (w, h) == (256, 256) and abs(x0 - 500) <= 8 and abs(y0 - 300) <= 8
    assert detail_window(img[:100, :120], 256) == (0, 0, 120, 100)  # smaller than the crop


def test_pick_samples_spread_over_psnr():
    rows = [{"id": f"i{k}", "status": "ok", "psnr": float(k)} for k in range(10)] + [{"id": "f", "status": "failed"}]
    assert [r["id"] for r in pick_samples(rows, 3)] == ["i0", "i5", "i9"] or \
        [r["id"] for r in pick_samples(rows, 3)] == ["i0", "i4", "i9"]
    assert len(pick_samples(rows, 50)) == 10 and pick_samples(rows, 0) == []


def test_rd_section(small_archive, tmp_path):
    pytest.importorskip("matplotlib")
    rd = {"images": "real photographs", "steps": 300,
          "curves": {"photos-768": {"SmartSplat": {"bpp": [0.1, 0.2, 0.5], "psnr": [27, 29, 31],
                                                   "ms_ssim": [0.9, 0.93, 0.96]},
                                    "JPEG": {"bpp": [0.2, 0.5], "psnr": [26, 30], "ms_ssim": [0.88, 0.95]}}},
          "bd_rate": [{"dataset": "photos-768", "codec": "JPEG", "bd_rate_psnr_pct": -12.5,
                       "bd_rate_msssim_pct": None, "bd_psnr_db": 0.8, "note": ""}]}
    path = tmp_path / "rd.json"
    path.write_text(json.dumps(rd))
    page = build_report(small_archive["url"], samples=0, rd_path=str(path))
    assert 'alt="rate-distortion plot"' in page and "-12.5%" in page and "+0.8 dB" in page
    # A CompressAI-layout file works too.
    path.write_text(json.dumps({"name": "JPEG", "results": {"bpp": [0.2, 0.5], "psnr-rgb": [26, 30]}}))
    assert 'alt="rate-distortion plot"' in build_report(small_archive["url"], samples=0, rd_path=str(path))
    path.write_text("[1, 2]")
    from smartsplat_dist.errors import ConfigError

    with pytest.raises(ConfigError, match="neither"):
        build_report(small_archive["url"], samples=0, rd_path=str(path))


def test_cli_report(small_archive, tmp_path, capsys):
    import argparse

    from smartsplat_dist.cli import report as cli_report

    parser = argparse.ArgumentParser()
    cli_report.register(parser.add_subparsers(dest="command"))
    out = tmp_path / "r.html"
    args = parser.parse_args(["report", small_archive["url"], "-o", str(out), "--samples", "1",
                              "--storage-options", "{}", "--backend", "cpu"])
    assert args.func(args) == 0
    assert out.read_text().startswith("<!DOCTYPE html>") and "wrote" in capsys.readouterr().out
    from smartsplat_dist.errors import ConfigError

    bad = parser.parse_args(["report", small_archive["url"], "-o", str(out), "--storage-options", "[1"])
    with pytest.raises(ConfigError, match="not valid JSON"):
        bad.func(bad)


def synthetic_report(n: int = 800) -> str:
    """A page for an n-image archive (no samples), for the browser tests."""
    rng = np.random.default_rng(0)
    rows = []
    for k in range(n):
        failed = k % 37 == 5
        rows.append({"id": f"img-{k:04d}", "_state": "committed", "source": f"s3://bucket/div16k/img-{k:04d}.png",
                     "height": 10880, "width": 16320, "n_gaussians": None if failed else 760986,
                     "length": None if failed else int(rng.integers(4_000_000, 5_300_000)),
                     "real_cr": None if failed else float(rng.uniform(100, 130)),
                     "psnr": None if failed else float(rng.normal(33, 1.5)),
                     "ssim": None if failed else float(rng.uniform(0.85, 0.95)),
                     "seconds": float(rng.uniform(8000, 14000)), "status": "failed" if failed else "ok",
                     "error": "ImageError: img: truncated PNG" if failed else None})
    run = {"format": "smartsplat-archive", "version": 1, "listing_size": n,
           "config": {"cr": 100, "fit": {"steps": 50000}}}
    return render_page(ReportData(url="s3://bucket/archive", run=run, rows=rows, listing_size=n, samples=[],
                                  rd=None, rd_png=None, notes=[]))


def test_800_rows_render_server_side():
    page = synthetic_report()
    assert len(_rows(page)) == 800
    assert len(page) < 2_000_000


def test_report_of_an_s3_archive_with_s3_sources(small_archive, s3):
    """Archive and originals on (fake) S3, reached through --storage-options."""
    from smartsplat_dist.archive import ArchiveWriter, open_archive
    from smartsplat_dist.io.storage import read_uri, write_uri

    local = open_archive(small_archive["url"])
    base = s3.url()
    sources = {}
    for image_id in ("bamboo", "mountain"):
        row = local.row(image_id)
        uri = f"{base}/in/{row['source'].rsplit('/', 1)[-1]}"
        write_uri(uri, read_uri(row["source"]), s3.storage_options)
        sources[image_id] = (uri, row)
    writer = ArchiveWriter(f"{base}/archive", local.run_config, sorted(u for u, _ in sources.values()),
                           storage_options=s3.storage_options)
    writer.open()
    for image_id, (uri, row) in sources.items():
        keep = {k: row[k] for k in ("height", "width", "n_gaussians", "psnr", "ssim", "seconds")}
        writer.stage(image_id, small_archive["records"][image_id], {**keep, "source": uri})
    writer.commit_shard(0, ["bamboo", "mountain"])
    page = build_report(f"{base}/archive", samples=2, storage_options=s3.storage_options, backend="cpu",
                        source_root=f"{base}/in")
    assert {i for _s, i in _rows(page)} == {"bamboo", "mountain"}
    assert len(re.findall(r'<img src="data:image/png', page)) == 4 and "original not available" not in page


def test_report_reads_only_sources_the_user_vouches_for(small_archive, tmp_path):
    """A hostile archive's rows point at files outside the source root: none is read, and the page says so."""
    import json

    from smartsplat_dist.io.storage import Folder

    secret = tmp_path / "private"
    secret.mkdir()
    shutil.copy(small_archive["sources"][0], secret / "mine.png")
    url = tmp_path / "archive"
    shutil.copytree(small_archive["url"], url)
    folder = Folder(str(url))
    for name in folder.list("shards", ".json"):
        marker = json.loads(folder.read_bytes(name))
        for row in marker["rows"]:
            row["source"] = str(secret / "mine.png")
        folder.write_bytes(name, json.dumps(marker).encode())
    page = build_report(str(url), samples=3, backend="cpu")  # no --source-root: no original read at all
    assert "originals not read for 3 sample(s)" in page
    assert len(re.findall(r'<img src="data:image/png', page)) == 3  # decoded crops only
    root = tmp_path / "root"
    root.mkdir()
    (root / "escape").symlink_to(secret)
    for source in (str(secret / "mine.png"), "../private/mine.png"):
        assert all(str(root) in c for c in source_candidates(source, str(root), str(tmp_path)))
    page = build_report(str(url), samples=3, backend="cpu", source_root=str(root))
    assert len(re.findall(r'<img src="data:image/png', page)) == 3
    # A link inside the root that leads out of it is not followed.
    (root / "mine.png").symlink_to(secret / "mine.png")
    page = build_report(str(url), samples=3, backend="cpu", source_root=str(root))
    assert len(re.findall(r'<img src="data:image/png', page)) == 3
    assert "skipped sources leading outside --source-root" in page
