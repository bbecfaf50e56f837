"""The torch metrics (float32, float64 sums) against the float64 reference, and their input forms."""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_msssim
import torch
from PIL import Image

import smartsplat_dist

from smartsplat_dist.errors import ImageError
from smartsplat_dist.fitting import metrics, metrics_reference as ref
from smartsplat_dist.fitting.ssim_def import window_1d


def _pair(h, w, noise, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 90 * np.sin(xx / 7.0) * np.cos(yy / 11.0), 2.0 * yy % 256, (xx + yy) % 256], -1)
    a = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
    b = np.clip(a + rng.normal(0, noise, a.shape), 0, 255).astype(np.uint8)
    return a, b


@pytest.mark.parametrize("noise", [1, 8, 40])
def test_matches_float64_reference(noise):
    a, b = _pair(230, 197, noise, seed=noise)
    assert metrics.psnr(a, b) == pytest.approx(ref.psnr(a, b), abs=1e-4)
    assert metrics.ssim(a, b) == pytest.approx(ref.ssim(a, b), abs=2e-6)
    assert metrics.ms_ssim(a, b) == pytest.approx(ref.ms_ssim(a, b), abs=2e-6)
    q = metrics.quality(a, b, ms=True, tile=64)
    assert q["psnr"] == pytest.approx(ref.psnr(a, b), abs=1e-4)
    assert q["ssim"] == pytest.approx(ref.ssim(a, b), abs=2e-6)
    assert q["ms_ssim"] == pytest.approx(ref.ms_ssim(a, b), abs=2e-6)


def test_float_inputs_and_tiles():
    a, b = _pair(120, 150, 10)
    fb = torch.from_numpy(b).float() / 255 + 0.001 * torch.randn(b.shape, generator=torch.Generator().manual_seed(0))
    assert metrics.psnr(a, fb) == pytest.approx(ref.psnr(a, fb), abs=1e-4)
    assert metrics.ssim(a, fb) == pytest.approx(ref.ssim(a, fb), abs=2e-6)
    assert metrics.ssim(a, b, tile=37) == pytest.approx(metrics.ssim(a, b, tile=10_000), abs=1e-9)
    assert metrics.psnr(a, a) == math.inf and metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-6)


def test_bad_inputs_raise_image_error():
    a, b = _pair(30, 30, 5)
    with pytest.raises(ImageError):
        metrics.psnr(a, b[:, :29])
    with pytest.raises(ImageError):
        metrics.ssim(a[:10], b[:10])
    with pytest.raises(ImageError):
        metrics.psnr(a.astype(np.int32), b.astype(np.int32))


def _photo_and_jpeg(name: str = "Bamboo.png", quality: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """A shipped photo (384 x 256) and its JPEG round trip at ``quality``: uint8 [H, W, 3] each."""
    path = Path(smartsplat_dist.__file__).parent / "examples" / name
    with Image.open(path) as im:
        photo = np.asarray(im.convert("RGB"))
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "JPEG", quality=quality)
    return photo, np.asarray(Image.open(buf).convert("RGB"))


def _nchw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img.astype(np.float64)).permute(2, 0, 1).unsqueeze(0)


@pytest.mark.parametrize("name", ["Bamboo.png", "Mountain.png"])
def test_ssim_and_ms_ssim_match_pytorch_msssim(name):
    """pytorch-msssim as an independent oracle, at our definition: 11x11 window, sigma 1.5, data_range 255, its
    'valid' filtering (no padding); MS-SSIM on a side divisible by 16, where its odd-size pooling pad never
    applies."""
    a, b = _photo_and_jpeg(name)
    assert a.shape[0] % 16 == 0 and a.shape[1] % 16 == 0
    # its own window is built in float32 (~1e-6 off ours); the same 11-tap sigma-1.5 window in float64:
    win = torch.from_numpy(window_1d()).view(1, 1, 1, 11).repeat(3, 1, 1, 1)
    want_ssim = float(pytorch_msssim.ssim(_nchw(a), _nchw(b), data_range=255, win=win))
    # our scale weights are the published five normalised to sum to 1 (they sum to 1.0001); its are not
    weights = [w / sum(ref.MS_SSIM_WEIGHTS) for w in ref.MS_SSIM_WEIGHTS]
    want_ms = float(pytorch_msssim.ms_ssim(_nchw(a), _nchw(b), data_range=255, win=win, weights=weights))
    assert float(pytorch_msssim.ssim(_nchw(a), _nchw(b), data_range=255, win_size=11, win_sigma=1.5)) == (
        pytest.approx(want_ssim, abs=1e-5))  # its defaults: the same definition
    assert 0.5 < want_ssim < 0.99  # a real, imperfect pair
    assert ref.ssim(a, b) == pytest.approx(want_ssim, abs=1e-9)
    assert metrics.ssim(a, b) == pytest.approx(want_ssim, abs=2e-5)
    assert ref.ms_ssim(a, b) == pytest.approx(want_ms, abs=1e-7)  # its weights are float32
    assert metrics.ms_ssim(a, b) == pytest.approx(want_ms, abs=2e-5)
