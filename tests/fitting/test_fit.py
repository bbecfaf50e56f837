"""The fitting loop: convergence on a tiny image, windowed == whole gradients, QAT, progress, config."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from smartsplat_dist.errors import ConfigError, ImageError
from smartsplat_dist.fitting import FitConfig, fit, psnr
from smartsplat_dist.fitting.config import LR_PRESETS
from smartsplat_dist.fitting.loss import differentiable_ssim as train_ssim
from smartsplat_dist.fitting.optimize import loss_and_grad, loss_windows, target_tensor, windows
from smartsplat_dist.model import Gaussians
from smartsplat_dist.raster import get_backend, render

RENDER = get_backend("torch")


def _image(h=32, w=32):
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([128 + 100 * np.sin(xx / 5.0), 40 + 5 * yy, 90 + 60 * np.cos((xx + yy) / 6.0)], axis=-1)
    return np.clip(img, 0, 255).astype(np.uint8)


def _gaussians(n=16, h=32, w=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 2, generator=gen) * torch.tensor([w, h], dtype=torch.float32)
    scales = 2.0 + 3.0 * torch.rand(n, 2, generator=gen)
    rot = torch.rand(n, generator=gen) * 3.0
    colors = 0.2 + 0.3 * torch.rand(n, 3, generator=gen)
    return Gaussians(means, scales, rot, colors)


def _loss_direct(g, image, lam):
    """Whole-image loss straight from the definition (no windows)."""
    h, w = image.shape[:2]
    img = render(g, h, w, "torch")
    t = torch.from_numpy(image).float() / 255
    return lam * (img - t).abs().mean() + (1 - lam) * (1 - train_ssim(img, t))


def test_fit_reduces_loss_and_raises_psnr():
    image = _image()
    g0 = _gaussians()
    seen = []
    cfg = FitConfig(steps=20, log_every=8)
    g, stats = fit(g0, image, cfg, backend="torch", progress=lambda s, d: seen.append((s, d)))
    assert [s for s, _ in seen] == [8, 16, 20]
    assert set(seen[0][1]) >= {"step", "loss", "psnr", "seconds"}
    assert seen[-1][1]["loss"] < seen[0][1]["loss"]
    with torch.no_grad():
        before = float(_loss_direct(g0, image, cfg.lambda_l1))
        after = float(_loss_direct(g, image, cfg.lambda_l1))
        out0 = (render(g0, 32, 32, "torch").clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        out1 = (render(g, 32, 32, "torch").clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    print("loss", before, after, "psnr", psnr(out0, image), psnr(out1, image))
    assert after < 0.8 * before
    assert psnr(out1, image) > psnr(out0, image) + 2.0
    assert stats["psnr"] == pytest.approx(psnr(out1, image), abs=1e-9)
    assert stats["steps"] == 20 and stats["seconds"] > 0 and stats["seconds_per_step"] > 0
    assert len(g) == len(g0) and not g.means.requires_grad and g.means.device.type == "cpu"
    assert bool(torch.all(g.scales > 0))
    assert seen[-1][1]["gaussians"]().means.shape == (16, 2)


@pytest.mark.parametrize("lam", [1.0, 0.0, 0.9])
def test_windowed_gradient_equals_whole_image_gradient(lam):
    image = _image(40, 45)
    g = _gaussians(20, 40, 45, seed=1)
    target = torch.from_numpy(image)
    whole = loss_windows(target, 0)
    tiled = loss_windows(target, 16)
    assert len(whole) == 1 and len(tiled) == 9
    gw, lw, sw = loss_and_grad(g, whole, 40, 45, lam, RENDER)
    gt, lt, st = loss_and_grad(g, tiled, 40, 45, lam, RENDER)
    assert lt == pytest.approx(lw, rel=1e-6, abs=1e-7)
    assert st == pytest.approx(sw, rel=1e-5)
    for a, b in zip(gt.tensors(), gw.tensors()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7 * float(b.abs().max()) + 1e-9)
    # and both equal autograd through the direct definition
    leaves = [t.clone().requires_grad_() for t in g.tensors()]
    direct = _loss_direct(Gaussians(*leaves), image, lam)
    direct.backward()
    assert float(direct.detach()) == pytest.approx(lw, rel=1e-5, abs=1e-7)
    for a, leaf in zip(gw.tensors(), leaves):  # float32 fused kernel vs float32 autograd: other summation order
        assert torch.allclose(a, leaf.grad, rtol=1e-4, atol=1e-5 * float(leaf.grad.abs().max()) + 1e-9)


def test_window_layout_and_halo():
    assert windows(40, 45, 0) == [(0, 40, 0, 45)]
    assert windows(40, 45, 64) == [(0, 40, 0, 45)]
    boxes = windows(40, 45, 16)
    assert boxes[0] == (0, 16, 0, 16) and boxes[-1] == (32, 40, 32, 45)
    wins = loss_windows(torch.zeros(40, 45, 3, dtype=torch.uint8), 16)
    last = wins[-1]
    assert (last.ry1, last.rx1) == (40, 45)
    assert not last.has_ssim  # rows 32.. are past the last SSIM map row (40 - 10 = 30)
    assert wins[0].ry1 == 26 and wins[0].map_h == 16


def test_windowed_fit_matches_whole_fit():
    image = _image(30, 30)
    g0 = _gaussians(12, 30, 30, seed=2)
    cfg = FitConfig(steps=3)
    g1, s1 = fit(g0, image, cfg, backend="torch")
    g2, s2 = fit(g0, image, replace(cfg, tile_size=16), backend="torch")
    assert s2["windows"] == 4 and s1["windows"] == 1
    assert s2["loss"] == pytest.approx(s1["loss"], rel=1e-5)
    for a, b in zip(g1.tensors(), g2.tensors()):
        assert torch.allclose(a, b, atol=1e-4)


def test_quantizer_only_in_final_qat_steps():
    image = _image(24, 24)
    g0 = _gaussians(8, 24, 24)
    calls = []

    def quantizer(g):
        calls.append(len(calls))
        # straight-through rounding of the means to whole pixels
        return Gaussians(g.means + (torch.round(g.means) - g.means).detach(), g.scales, g.rotations, g.colors)

    per_step = []
    cfg = FitConfig(steps=6, qat_steps=3, log_every=1)
    g, _ = fit(g0, image, cfg, backend="torch", quantizer=quantizer, progress=lambda s, d: per_step.append(len(calls)))
    assert per_step == [0, 0, 0, 1, 2, 3]
    assert not torch.equal(g.means, torch.round(g.means))  # the returned parameters are unquantised
    calls.clear()
    fit(g0, image, FitConfig(steps=2, qat_steps=0), backend="torch", quantizer=quantizer)
    assert calls == []
    with pytest.raises(ConfigError):
        fit(g0, image, FitConfig(steps=2, qat_steps=1), backend="torch", quantizer=lambda g: g.means)


def test_zero_steps_returns_input_and_normalized_means():
    image = _image(20, 30)
    g0 = _gaussians(6, 20, 30)
    for unit in ("pixel", "normalized"):
        g, stats = fit(g0, image, FitConfig(steps=0, means_lr_unit=unit), backend="torch")
        for a, b in zip(g.tensors(), g0.tensors()):
            assert torch.allclose(a, b, atol=1e-5)
        assert stats["steps"] == 0
    # moving the means in normalised units with lr 1e-4 moves them by ~1e-4 * W/2 px per step
    g, _ = fit(g0, image, FitConfig(steps=1, means_lr_unit="normalized", lr_means=1e-2, lr_scales=0,
                                    lr_rotations=0, lr_colors=0), backend="torch")
    dx = (g.means - g0.means).abs()
    assert torch.allclose(dx[:, 0], torch.full((6,), 1e-2 * 15), rtol=0.05)
    assert torch.allclose(dx[:, 1], torch.full((6,), 1e-2 * 10), rtol=0.05)
    assert torch.equal(g.colors, g0.colors)


def test_fit_rejects_bad_inputs():
    g0 = _gaussians(4)
    with pytest.raises(ImageError):
        fit(g0, _image().astype(np.float32), FitConfig(steps=1), backend="torch")
    with pytest.raises(ImageError):
        fit(g0, _image(8, 8), FitConfig(steps=1), backend="torch")
    bad = Gaussians(g0.means, -g0.scales, g0.rotations, g0.colors)
    with pytest.raises(ConfigError):
        fit(bad, _image(), FitConfig(steps=1), backend="torch")
    with pytest.raises(ConfigError):
        fit(g0, _image(), {"steps": 1}, backend="torch")


@pytest.mark.parametrize("field,value", [
    ("steps", -1), ("steps", 1.5), ("log_every", 0), ("lambda_l1", 1.5), ("lambda_l1", "x"), ("lr_means", -1.0),
    ("lr_colors", float("inf")), ("tile_size", 8), ("qat_steps", -2), ("means_lr_unit", "cm"), ("adam_eps", 0.0),
    ("steps", True),
])
def test_config_validation(field, value):
    with pytest.raises(ConfigError):
        FitConfig(**{field: value})


def test_config_roundtrip_and_presets():
    cfg = FitConfig(steps=7, lambda_l1=0.8)
    assert FitConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError):
        FitConfig.from_dict({"steps": 3, "bogus": 1})
    for name, values in LR_PRESETS.items():
        p = cfg.with_preset(name)
        assert p.steps == 7 and all(getattr(p, k) == v for k, v in values.items())
    with pytest.raises(ConfigError):
        cfg.with_preset("nope")


def test_progress_psnr_is_clamped_render_psnr():
    image = _image(24, 24)
    g0 = _gaussians(8, 24, 24)
    seen = {}
    fit(g0, image, FitConfig(steps=1, log_every=1, clamp_render=False), backend="torch",
        progress=lambda s, d: seen.update(d))
    with torch.no_grad():
        out = render(g0, 24, 24, "torch").clamp(0, 1)
    assert seen["psnr"] == pytest.approx(psnr(out, image), abs=1e-3)
    assert seen["loss"] == pytest.approx(float(_loss_direct(g0, image, 0.9)), rel=1e-5)


def test_read_only_image_is_shared_without_a_warning():
    """np.asarray of a PIL image is read-only: the fit's target shares it (no copy) and torch does not warn."""
    import warnings

    image = np.zeros((16, 24, 3), np.uint8)
    image.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = target_tensor(image, torch.device("cpu"))
    assert t.data_ptr() == image.ctypes.data and tuple(t.shape) == (16, 24, 3) and t.dtype == torch.uint8


def test_non_finite_gradients_stop_the_fit_at_once(monkeypatch):
    """A Gaussian whose update is NaN renders nothing, so the loss stays finite: the fit must say so at that step
    rather than hand NaN Gaussians to the encoder at the end."""
    from smartsplat_dist.errors import SmartsplatError
    from smartsplat_dist.fitting import optimize

    real = optimize.loss_and_grad

    def nan_row(*args, **kwargs):
        grads, value, sse = real(*args, **kwargs)
        grads.colors[3, 1] = float("nan")
        return grads, value, sse

    monkeypatch.setattr(optimize, "loss_and_grad", nan_row)
    with pytest.raises(SmartsplatError, match="step 1: non-finite gradients for 1 of 16 Gaussians"):
        fit(_gaussians(), _image(), FitConfig(steps=5), backend="torch")
