"""pipelines/: the scripts parse their arguments; the DIV16K-like builder upsamples and resumes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from .conftest import write_tiny_photos

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


@pytest.mark.parametrize("script", ["div16k.py", "div8k.py", "decode_archive.py", "make_div16k_like.py"])
def test_scripts_show_help(script):
    r = subprocess.run([sys.executable, str(PIPELINES / script), "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "usage" in r.stdout


def test_sweeps_have_the_papers_crs():
    sys.path.insert(0, str(PIPELINES))
    try:
        import div8k
        import div16k
    finally:
        sys.path.remove(str(PIPELINES))
    assert div16k.CRS == (50.0, 100.0, 200.0, 500.0) and div8k.CRS == (20.0, 50.0, 100.0)


def test_make_div16k_like_upsamples_and_skips_existing(tmp_path):
    write_tiny_photos(tmp_path / "src", 2)
    cmd = [sys.executable, str(PIPELINES / "make_div16k_like.py"), str(tmp_path / "src"), str(tmp_path / "big"),
           "--factor", "3", "--compress-level", "1"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    with Image.open(tmp_path / "big" / "img1.png") as im:
        assert im.size == (144, 96) and im.mode == "RGB"
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.stdout.count("exists, skipped") == 2
