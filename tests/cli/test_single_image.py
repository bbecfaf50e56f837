"""The single-image CLI as a user runs it: `smartsplat encode` and `smartsplat render`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from smartsplat_dist.cli import main
from smartsplat_dist.errors import EXIT_ERROR

EXAMPLES = Path(__file__).resolve().parents[2] / "smartsplat_dist" / "examples"


@pytest.fixture(scope="module")
def small_photo(tmp_path_factory) -> Path:
    """A 192x128 crop of a real example photo: small enough to fit fast, N >= 1000 at CR 10."""
    path = tmp_path_factory.mktemp("img") / "photo.png"
    Image.open(EXAMPLES / "Bamboo.png").convert("RGB").crop((100, 80, 292, 208)).save(path)
    return path


def smartsplat(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smartsplat_dist", *args], capture_output=True, text=True, timeout=600)


def test_encode_prints_stats_and_render_restores_size(small_photo, tmp_path, capsys):
    out = tmp_path / "photo.ssplat"
    assert main(["encode", str(small_photo), "-o", str(out), "--cr", "10", "--steps", "30", "--quiet"]) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("height", "width", "n_gaussians", "bytes", "nominal_cr", "real_cr", "psnr", "ssim",
                "psnr_unquantized", "steps", "seconds"):
        assert key in stats, key
    assert (stats["height"], stats["width"]) == (128, 192)
    assert stats["bytes"] == out.stat().st_size
    assert stats["real_cr"] >= stats["nominal_cr"]
    assert stats["steps"] == 30
    assert stats["psnr"] > 15

    png = tmp_path / "back.png"
    assert main(["render", str(out), "-o", str(png)]) == 0
    back = np.asarray(Image.open(png))
    assert back.shape == (128, 192, 3)
    half = tmp_path / "half.png"
    assert main(["render", str(out), "-o", str(half), "--scale", "0.5"]) == 0
    assert np.asarray(Image.open(half)).shape == (64, 96, 3)
    double = tmp_path / "double.png"
    assert main(["render", str(out), "-o", str(double), "--scale", "2"]) == 0
    assert np.asarray(Image.open(double)).shape == (256, 384, 3)


def test_encode_is_deterministic(small_photo, tmp_path):
    a, b = tmp_path / "a.ssplat", tmp_path / "b.ssplat"
    for out in (a, b):
        assert main(["encode", str(small_photo), "-o", str(out), "--cr", "10", "--steps", "10", "--quiet",
                     "--backend", "cpu"]) == 0
    assert a.read_bytes() == b.read_bytes()


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == EXIT_ERROR, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_inputs_get_one_line_errors(tmp_path, small_photo):
    missing = tmp_path / "nope.png"
    _one_line_error(smartsplat("encode", str(missing), "-o", str(tmp_path / "x.ssplat")), "nope.png")

    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    _one_line_error(smartsplat("encode", str(text), "-o", str(tmp_path / "x.ssplat")), "notes.png")

    truncated = tmp_path / "cut.png"
    truncated.write_bytes(small_photo.read_bytes()[:400])
    _one_line_error(smartsplat("encode", str(truncated), "-o", str(tmp_path / "x.ssplat")), "cut.png")

    _one_line_error(smartsplat("encode", str(small_photo), "-o", str(tmp_path / "x.ssplat"), "--max-pixels", "1000"),
                    "photo.png", "1000")
    assert not (tmp_path / "x.ssplat").exists()


def test_damaged_record_is_refused(small_photo, tmp_path):
    out = tmp_path / "photo.ssplat"
    assert main(["encode", str(small_photo), "-o", str(out), "--cr", "10", "--steps", "5", "--quiet"]) == 0
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x40
    bad = tmp_path / "bad.ssplat"
    bad.write_bytes(bytes(data))
    _one_line_error(smartsplat("render", str(bad), "-o", str(tmp_path / "bad.png")), "bad.ssplat")
    assert not (tmp_path / "bad.png").exists()
    _one_line_error(smartsplat("render", str(tmp_path / "absent.ssplat"), "-o", str(tmp_path / "a.png")),
                    "absent.ssplat")


def test_small_things_a_user_meets(tmp_path, capsys):
    """Strict JSON (a perfect PSNR is null, not Infinity), the file named in errors, outputs follow the umask."""
    import json
    import os

    from PIL import Image

    from smartsplat_dist.cli import main

    old = os.umask(0o022)
    try:
        black = tmp_path / "black.png"
        Image.new("RGB", (16, 16), (0, 0, 0)).save(black)
        out = tmp_path / "b.ssplat"
        assert main(["encode", str(black), "-o", str(out), "--steps", "0", "--cr", "2", "--quiet"]) == 0
        line = capsys.readouterr().out.strip().splitlines()[-1]
        stats = json.loads(line, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))
        assert stats["psnr"] is None  # a perfect reconstruction
        assert (out.stat().st_mode & 0o777) == 0o644
        png = tmp_path / "b.png"
        assert main(["render", str(out), "-o", str(png)]) == 0
        assert (png.stat().st_mode & 0o777) == 0o644
        one = tmp_path / "one.png"
        Image.new("RGB", (1, 1)).save(one)
        assert main(["encode", str(one), "-o", str(tmp_path / "o.ssplat"), "--quiet"]) == 2
        assert str(one) in capsys.readouterr().err
    finally:
        os.umask(old)
