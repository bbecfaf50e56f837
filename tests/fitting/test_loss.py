"""The training SSIM: equals the metric, analytic backward equals autograd."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from smartsplat_dist.fitting.metrics_reference import ssim as metric_ssim
from smartsplat_dist.fitting.loss import SSIMTarget, differentiable_ssim, ssim_reference, ssim_sum


def _images(h=29, w=41, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    y = torch.rand(h, w, 3, generator=gen, dtype=dtype)
    x = (y + 0.2 * torch.randn(h, w, 3, generator=gen, dtype=dtype)).clamp(0, 1)
    return x, y


def test_training_ssim_equals_metric_ssim():
    x, y = _images()
    assert float(differentiable_ssim(x, y)) == pytest.approx(metric_ssim(x, y), abs=1e-10)
    xf, yf = x.float(), y.float()
    assert float(differentiable_ssim(xf, yf)) == pytest.approx(metric_ssim(x, y), abs=2e-5)
    # on uint8 images: the metric on uint8, the loss on the same values / 255
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (23, 30, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    ta, tb = torch.from_numpy(a).double() / 255, torch.from_numpy(b).double() / 255
    assert float(differentiable_ssim(ta, tb)) == pytest.approx(metric_ssim(a, b), abs=1e-10)


def test_identical_is_one_and_sum_count():
    x, _ = _images(15, 12)
    s, n = ssim_sum(x, x)
    assert n == 3 * 5 * 2
    assert float(s) / n == pytest.approx(1.0, abs=1e-12)


def test_analytic_backward_equals_autograd():
    x0, y = _images(24, 33, seed=2)
    x = x0.clone().requires_grad_()
    differentiable_ssim(x, y).backward()
    xr = x0.clone().requires_grad_()
    ssim_reference(xr, y).backward()
    assert torch.allclose(x.grad, xr.grad, rtol=1e-9, atol=1e-14)
    assert x.grad.abs().max() > 0


def test_gradcheck_small():
    x0, y = _images(13, 14, seed=3)
    target = SSIMTarget(y)
    x = x0.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: differentiable_ssim(t, target), (x,), eps=1e-6, atol=1e-8)


def test_float32_gradient_close_to_float64():
    x0, y = _images(30, 30, seed=4)
    x64 = x0.clone().requires_grad_()
    differentiable_ssim(x64, y).backward()
    x32 = x0.float().requires_grad_()
    differentiable_ssim(x32, SSIMTarget(y.float())).backward()
    assert torch.allclose(x32.grad.double(), x64.grad, rtol=1e-3, atol=1e-6)


def test_channel_first_input_and_shape_errors():
    x, y = _images(16, 18)
    a = differentiable_ssim(x, y)
    b = differentiable_ssim(x.permute(2, 0, 1).unsqueeze(0), y.permute(2, 0, 1).unsqueeze(0))
    assert float(a) == pytest.approx(float(b), abs=1e-14)
    with pytest.raises(ValueError):
        differentiable_ssim(x[:15], y)
    with pytest.raises(ValueError):
        SSIMTarget(y[:10])


@pytest.mark.parametrize("h,w,owned,map_hw", [
    (40, 57, (40, 57), (30, 47)),   # one whole-image window
    (46, 38, (36, 28), (36, 28)),   # an interior window: owned pixels, SSIM halo of 10 px
    (30, 25, (30, 25), (13, 9)),    # a bottom-right window: the map ends before the owned pixels do
    (20, 16, (20, 16), (0, 0)),     # no SSIM map in this window: L1 only
])
def test_fused_loss_value_and_gradient_equal_autograd(h, w, owned, map_hw):
    from smartsplat_dist.fitting.loss import l1_ssim_loss, l1_ssim_reference

    x0, y = _images(h, w, dtype=torch.float32, seed=5)
    x0 = x0 + 0.05 * torch.randn(h, w, 3, generator=torch.Generator().manual_seed(6))  # some outside [0, 1]
    mh, mw = map_hw
    st = SSIMTarget(y[:mh + 10, :mw + 10]) if mh > 0 else None
    w_l1, w_ssim = 0.9 / (3 * h * w), 0.1 / (3 * max(mh * mw, 1))
    x = x0.clone().requires_grad_()
    loss, l1, s, se = l1_ssim_loss(x, y, st, owned, w_l1, w_ssim)
    loss.backward()
    xr = x0.double().requires_grad_()
    yr = y.double()
    ref = l1_ssim_reference(xr, yr, owned, map_hw, w_l1, w_ssim)
    ref.backward()
    oh, ow = owned
    assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-5, abs=1e-7)
    assert l1 == pytest.approx(float((xr[:oh, :ow] - yr[:oh, :ow]).abs().sum()), rel=1e-5)
    assert se == pytest.approx(float(((xr[:oh, :ow].clamp(0, 1) - yr[:oh, :ow]) ** 2).sum()), rel=1e-5)
    if mh:
        assert s / (3 * mh * mw) == pytest.approx(metric_ssim(xr[:mh + 10, :mw + 10], yr[:mh + 10, :mw + 10]),
                                                  abs=2e-5)
    else:
        assert s == 0.0
    scale = float(xr.grad.abs().max())
    assert float((x.grad.double() - xr.grad).abs().max()) <= 1e-4 * scale
    # the same through the torch composition (the non-CPU path): identical parts
    xd = x0.double().requires_grad_()
    std = SSIMTarget(y.double()[:mh + 10, :mw + 10]) if mh > 0 else None
    loss_d, l1_d, s_d, se_d = l1_ssim_loss(xd, y.double(), std, owned, w_l1, w_ssim)
    loss_d.backward()
    assert float(loss_d.detach()) == pytest.approx(float(ref.detach()), rel=1e-9, abs=1e-12)
    assert torch.allclose(xd.grad, xr.grad, rtol=1e-7, atol=1e-12)


def test_fused_loss_gradient_is_finite_where_the_images_anticorrelate():
    """An 11x11 window of a real fit (a render 13 steps into a 300-step fit of a photos-768 image, and its target)
    where SSIM's ``a2 = 2 cov + C2`` is 0 in float32: the gradient was ``s / a2 = 0 / 0``, NaN for the 121 pixels
    and every Gaussian under them. It must be finite and equal the float64 autograd reference."""
    from pathlib import Path

    from smartsplat_dist.fitting.loss import l1_ssim_loss, l1_ssim_reference

    data = np.load(Path(__file__).parent / "data" / "ssim_anticorrelated_11x11.npz")
    x0, y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])
    x = x0.clone().requires_grad_()
    loss, *_ = l1_ssim_loss(x, y, SSIMTarget(y), (11, 11), 0.0, 1.0)
    loss.backward()
    assert bool(torch.isfinite(x.grad).all())
    xr = x0.double().requires_grad_()
    l1_ssim_reference(xr, y.double(), (11, 11), (1, 1), 0.0, 1.0).backward()
    assert float((x.grad.double() - xr.grad).abs().max()) <= 1e-3 * float(xr.grad.abs().max())
