"""The float64 reference metrics (PSNR / SSIM / MS-SSIM): known values, an independent reference, tiled == whole."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from smartsplat_dist.errors import ImageError
from smartsplat_dist.fitting.metrics_reference import ms_ssim, psnr, ssim
from smartsplat_dist.fitting.metrics_reference import MS_SSIM_WEIGHTS, ms_ssim_scales


def _pair(h, w, noise=25, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 90 * np.sin(xx / 7.0) * np.cos(yy / 11.0), 2.0 * yy % 256,
                     (xx + yy) % 256], axis=-1)
    a = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
    b = np.clip(a + rng.normal(0, noise, a.shape), 0, 255).astype(np.uint8)
    return a, b


def _ref_maps(x, y):
    """Straightforward SSIM / CS maps: explicit 11x11 2-D window over every valid position (float64, 0..255)."""
    k = np.arange(11) - 5.0
    g = np.exp(-k * k / (2 * 1.5 ** 2))
    win = np.outer(g, g)
    win /= win.sum()

    def f(z):
        return np.einsum("ijkl,kl->ij", sliding_window_view(z, (11, 11)), win)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx ** 2, f(y * y) - my ** 2, f(x * y) - mx * my
    cs = (2 * cxy + c2) / (vx + vy + c2)
    return (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1) * cs, cs


def _ref_ssim(a, b):
    return float(np.mean([_ref_maps(a[..., c].astype(float), b[..., c].astype(float))[0].mean()
                          for c in range(a.shape[2])]))


def _ref_ms_ssim(a, b, levels):
    w = np.array(MS_SSIM_WEIGHTS[:levels])
    w = w / w.sum()
    out = []
    for c in range(a.shape[2]):
        x, y = a[..., c].astype(float), b[..., c].astype(float)
        vals = []
        for j in range(levels):
            if j:
                hh, ww = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
                x = x[:hh, :ww].reshape(hh // 2, 2, ww // 2, 2).mean(axis=(1, 3))
                y = y[:hh, :ww].reshape(hh // 2, 2, ww // 2, 2).mean(axis=(1, 3))
            s_map, cs_map = _ref_maps(x, y)
            vals.append(max(0.0, (s_map if j == levels - 1 else cs_map).mean()))
        out.append(np.prod(np.array(vals) ** w))
    return float(np.mean(out))


def test_psnr_known_values():
    a = np.zeros((20, 30, 3), np.uint8)
    b = a.copy()
    assert psnr(a, b) == math.inf
    b[...] = 1  # MSE = 1
    assert psnr(a, b) == pytest.approx(20 * math.log10(255.0), abs=1e-12)
    b[0, 0, 0] = 255  # MSE = (255^2 - 1 + 1800) / 1800
    mse = (255.0 ** 2 + 20 * 30 * 3 - 1) / (20 * 30 * 3)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255.0 ** 2 / mse), abs=1e-12)


def test_psnr_strips_and_float_inputs_agree():
    a, b = _pair(67, 45)
    ref = psnr(a, b, tile=10_000)
    assert psnr(a, b, tile=7) == pytest.approx(ref, abs=1e-12)
    ta, tb = torch.from_numpy(a).double() / 255, torch.from_numpy(b).float() / 255
    assert psnr(ta, tb) == pytest.approx(ref, abs=1e-5)
    assert psnr(a.astype(np.float64) / 255, b) == pytest.approx(ref, abs=1e-10)


def test_ssim_identical_is_one():
    a, _ = _pair(40, 33)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_straightforward_reference():
    a, b = _pair(37, 52)
    assert ssim(a, b) == pytest.approx(_ref_ssim(a, b), abs=1e-9)
    a2, b2 = _pair(24, 19, noise=60, seed=3)
    assert ssim(a2, b2) == pytest.approx(_ref_ssim(a2, b2), abs=1e-9)


def test_ssim_valid_map_size_is_documented_convention():
    # an 11x11 image has exactly one map value: the whole-window statistics
    a, b = _pair(11, 11)
    assert ssim(a, b) == pytest.approx(_ref_ssim(a, b), abs=1e-10)
    with pytest.raises(ImageError):
        ssim(a[:10], b[:10])


def test_ssim_tiled_equals_whole_on_larger_image():
    a, b = _pair(613, 517, noise=30, seed=1)
    whole = ssim(a, b, tile=100_000)
    for tile in (45, 128):
        assert ssim(a, b, tile=tile) == pytest.approx(whole, abs=1e-12)
    assert ssim(a[:150, :97], b[:150, :97], tile=16) == pytest.approx(ssim(a[:150, :97], b[:150, :97]), abs=1e-12)
    assert ssim(a[:120, :90], b[:120, :90]) == pytest.approx(_ref_ssim(a[:120, :90], b[:120, :90]), abs=1e-9)


def test_ms_ssim_tiled_equals_whole():
    a, b = _pair(451, 397, noise=30, seed=2)
    whole = ms_ssim(a, b, tile=100_000)
    for tile in (50, 200):  # rounded up to multiples of 16 (64, 208)
        assert ms_ssim(a, b, tile=tile) == pytest.approx(whole, abs=1e-12)


def test_ms_ssim_matches_reference_and_small_images_use_fewer_scales():
    a, b = _pair(200, 181, noise=30)
    assert ms_ssim_scales(200, 181) == 5
    assert ms_ssim(a, b) == pytest.approx(_ref_ms_ssim(a, b, 5), abs=1e-9)
    a, b = _pair(100, 130, noise=30)
    assert ms_ssim_scales(100, 130) == 4  # 100 >> 3 = 12 >= 11, 100 >> 4 = 6 < 11
    assert ms_ssim(a, b) == pytest.approx(_ref_ms_ssim(a, b, 4), abs=1e-9)
    assert ms_ssim(a, b, max_scales=1) == pytest.approx(ssim(a, b), abs=1e-12)
    with pytest.raises(ImageError):
        ms_ssim(a[:10], b[:10])


def test_ms_ssim_decreases_with_noise():
    a, b1 = _pair(180, 200, noise=5)
    _, b2 = _pair(180, 200, noise=40)
    assert 1.0 > ms_ssim(a, b1) > ms_ssim(a, b2) > 0.0


def test_float_tensor_inputs_equal_uint8():
    a, b = _pair(50, 60)
    ta, tb = torch.from_numpy(a).double() / 255, torch.from_numpy(b).double() / 255
    assert ssim(ta, tb) == pytest.approx(ssim(a, b), abs=1e-12)
    assert ms_ssim(ta, tb) == pytest.approx(ms_ssim(a, b), abs=1e-12)


def test_bad_inputs_raise_image_error():
    a, b = _pair(30, 30)
    with pytest.raises(ImageError):
        psnr(a, b[:, :29])
    with pytest.raises(ImageError):
        ssim(a[..., 0], b[..., 0])
    with pytest.raises(ImageError):
        psnr(a.astype(np.int32), b.astype(np.int32))


def test_tiles_on_several_threads_give_the_same_bits(monkeypatch):
    """The reference's tiles run on the process's CPUs; the value does not depend on how many."""
    from smartsplat_dist import threads
    from smartsplat_dist.fitting import metrics_reference as ref

    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (300, 420, 3), dtype=np.uint8)
    b = np.clip(a.astype(np.int16) + rng.integers(-12, 13, a.shape), 0, 255).astype(np.uint8)
    values = []
    for cpus in (1, 3):
        monkeypatch.setattr(threads, "_APPLIED", threads.plan(cpus))
        values.append((ref.ssim(a, b, tile=64), ref.ms_ssim(a, b, tile=64)))
    assert values[0] == values[1]
