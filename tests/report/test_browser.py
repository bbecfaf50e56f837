"""The report in a real headless browser (Debian's Chromium): it renders, the script runs, 800 rows stay usable.

Skipped only when no chromium binary is installed (CI installs Debian's ``chromium`` package)."""
import io
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

from smartsplat_dist.report import build_report

from .test_report import synthetic_report

CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")


def _chromium(args, timeout=120):
    with tempfile.TemporaryDirectory() as profile:
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "HOME": profile})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def dump_dom(path, fragment=""):
    return _chromium(["--dump-dom", f"file://{path}{fragment}"])


def _visible_ids(dom):
    """Ids of the table rows without the ``hidden`` attribute, in DOM order."""
    return [i for i, attrs in re.findall(r'<tr class="[^"]*" data-status="[^"]*" data-id="([^"]*)"([^>]*)>', dom)
            if "hidden" not in attrs]


def _info(dom):
    m = re.search(r'<span id="info"[^>]*data-visible="(\d+)"[^>]*data-matching="(\d+)"[^>]*>([^<]*)<', dom)
    assert m, "the table script did not run (no pagination info)"
    return int(m.group(1)), int(m.group(2)), m.group(3)


@pytest.fixture(scope="module")
def report_file(small_archive, tmp_path_factory):
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(build_report(small_archive["url"], samples=2, backend="cpu"))
    return path


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("html800") / "report800.html"
    path.write_text(synthetic_report(800))
    return path


def test_small_report_renders_and_script_runs(report_file):
    dom = dump_dom(report_file)
    assert 'data-js="ready"' in dom
    assert set(_visible_ids(dom)) == {"bamboo", "mountain", "broken", "seeding"}
    visible, matching, text = _info(dom)
    assert (visible, matching) == (4, 4) and text.startswith("Showing 1–4 of 4")
    assert "&lt;script&gt;alert" in dom and "<script>alert" not in dom


def test_screenshot_is_not_blank(report_file, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    _chromium([f"--screenshot={shot}", "--window-size=1280,2000", f"file://{report_file}"])
    img = np.asarray(Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")).astype(np.float32)
    assert img.shape[:2] == (2000, 1280)
    assert img.std() > 20  # text, charts and crops, not an empty page
    # The crops are drawn: some region far from white and far from the page's grey tones.
    assert (np.abs(img - 255).sum(axis=2) > 200).mean() > 0.02
    if os.environ.get("SMARTSPLAT_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["SMARTSPLAT_KEEP_SCREENSHOT"])


def test_800_rows_are_paginated(big_file):
    dom = dump_dom(big_file)
    assert 'data-js="ready"' in dom
    assert len(re.findall(r'<tr class="(?:ok|failed)"', dom)) == 800
    visible = _visible_ids(dom)
    assert visible == [f"img-{k:04d}" for k in range(50)]
    assert _info(dom)[:2] == (50, 800) and "page 1 of 16" in _info(dom)[2]


def test_800_rows_filter_sort_and_page_from_the_fragment(big_file):
    dom = dump_dom(big_file, "#q=img-0123")
    assert _visible_ids(dom) == ["img-0123"] and _info(dom)[:2] == (1, 1)
    dom = dump_dom(big_file, "#status=failed&size=100")
    failed = [k for k in range(800) if k % 37 == 5]
    assert _visible_ids(dom) == [f"img-{k:04d}" for k in failed] and _info(dom)[1] == len(failed)
    dom = dump_dom(big_file, "#sort=psnr&desc=1&page=2&size=25")
    vis = _visible_ids(dom)
    assert len(vis) == 25 and "page 2 of 32" in _info(dom)[2]
    # Second page of a descending PSNR sort: values decrease and are below every value on page 1.
    ps = [float(v) for v in re.findall(r'data-id="(?:%s)"[^>]*>(?:<td[^>]*>[^<]*</td>){7}<td class="n" data-v="([^"]+)"'
                                       % "|".join(vis), dom)]
    assert len(ps) == 25 and ps == sorted(ps, reverse=True)
