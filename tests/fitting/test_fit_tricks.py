"""Fit settings: the clamped loss, the scale cap, their validation, and the shipped defaults on a real crop."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import smartsplat_dist
from smartsplat_dist.errors import ConfigError
from smartsplat_dist.fitting import FitConfig, fit, psnr
from smartsplat_dist.fitting.loss import differentiable_ssim as train_ssim
from smartsplat_dist.fitting.optimize import loss_and_grad, loss_windows
from smartsplat_dist.init import initialize
from smartsplat_dist.model import Gaussians
from smartsplat_dist.raster import get_backend, render

from .test_fit import _gaussians, _image

RENDER = get_backend("torch")


def _grads(g, image, clamp):
    wins = loss_windows(torch.from_numpy(image), 0)
    return loss_and_grad(g, wins, image.shape[0], image.shape[1], 0.9, RENDER, clamp)


def test_clamp_changes_nothing_inside_range():
    image = _image(24, 24)
    g = _gaussians(8, 24, 24)
    g = Gaussians(g.means, g.scales, g.rotations, g.colors * 0.5)
    out = render(g, 24, 24, "torch")
    assert float(out.max()) < 1.0 and float(out.min()) >= 0.0
    ga, la, _ = _grads(g, image, False)
    gb, lb, _ = _grads(g, image, True)
    assert la == pytest.approx(lb, rel=1e-6)
    for a, b in zip(ga.tensors(), gb.tensors()):
        assert torch.allclose(a, b, atol=1e-7)


def test_clamp_loss_is_that_of_the_clamped_render():
    image = _image(24, 24)
    g = _gaussians(8, 24, 24)
    colors = g.colors.clone()
    colors[0] = 3.0  # saturates the pixels around Gaussian 0
    bright = Gaussians(g.means, g.scales, g.rotations, colors)
    out = render(bright, 24, 24, "torch")
    assert float(out.max()) > 1.0
    _, l_raw, _ = _grads(bright, image, False)
    grads, l_clamped, _ = _grads(bright, image, True)
    t = torch.from_numpy(image).float() / 255
    c = out.clamp(0, 1)
    direct = 0.9 * (c - t).abs().mean() + 0.1 * (1 - train_ssim(c, t))
    assert l_clamped == pytest.approx(float(direct), rel=1e-5)
    assert l_clamped < l_raw
    # a Gaussian that saturates every pixel of its footprint gets no gradient
    alone = Gaussians(torch.tensor([[12.0, 12.0]]), torch.tensor([[2.0, 2.0]]), torch.zeros(1),
                      torch.tensor([[300.0, 300.0, 300.0]]))  # > 1 down to the 1/255 cut
    g1, _, _ = _grads(alone, image, True)
    assert all(torch.equal(t, torch.zeros_like(t)) for t in g1.tensors())


def test_max_scale_caps_every_scale():
    image = _image(24, 24)
    g0 = _gaussians(8, 24, 24)
    big = Gaussians(g0.means, g0.scales * torch.tensor([[20.0, 1.0]]), g0.rotations, g0.colors)
    cap = 0.2 * math.hypot(24, 24)
    g, _ = fit(big, image, FitConfig(steps=5, max_scale=0.2, lr_scales=0.5), backend="torch")
    assert float(g.scales.max()) <= cap * (1 + 1e-5)
    g_free, _ = fit(big, image, FitConfig(steps=5, max_scale=0.0, lr_scales=0.5), backend="torch")
    assert float(g_free.scales.max()) > cap


@pytest.mark.parametrize("field,value", [
    ("clamp_render", 1), ("lr_schedule", "linear"), ("lr_final", 0.0), ("lr_final", 1.5), ("color_warmup_steps", -1),
    ("color_solve_iters", 2.5), ("relocate_every", -3), ("relocate_fraction", 0.0), ("relocate_fraction", 0.9),
    ("relocate_until", 0.0), ("max_scale", -1.0), ("max_scale", float("nan")),
])
def test_trick_settings_are_validated(field, value):
    with pytest.raises(ConfigError):
        FitConfig(**{field: value})


def test_defaults_improve_a_real_crop():
    """The shipped FitConfig defaults, every trick they turn on, on a crop of a shipped photo (cpu backend)."""
    path = Path(smartsplat_dist.__file__).parent / "examples" / "Bamboo.png"
    with Image.open(path) as im:
        image = np.asarray(im.convert("RGB"), dtype=np.uint8)[64:160, 96:224].copy()  # 96x128
    n = 3 * 96 * 128 // (7 * 20)
    g0 = initialize(image, n, seed=0)
    cfg = FitConfig(steps=200, relocate_every=50)
    g, stats = fit(g0, image, cfg, backend="cpu")
    with torch.no_grad():
        before = (render(g0, 96, 128, "cpu").clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    assert len(g) == n
    assert stats["psnr"] > psnr(before, image) + 8.0
    assert stats["psnr"] > 24.0


def test_short_fits_relocate_as_often_as_a_1000_step_fit():
    assert [FitConfig(steps=s).relocate_interval for s in (50, 300, 1000, 5000, 50_000)] == [10, 30, 100, 100, 100]
    assert FitConfig(steps=300, relocate_every=20).relocate_interval == 20
    assert FitConfig(steps=300, relocate_every=0).relocate_interval == 0
