"""The torch metrics (float32, float64 sums) against the float64 reference, and their input forms."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from smartsplat_dist.errors import ImageError
from smartsplat_dist.fitting import metrics, metrics_reference as ref


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
