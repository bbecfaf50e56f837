"""The numba CPU backend against the torch reference: values and gradients of all four tensors."""
from __future__ import annotations

import threading

import pytest
import torch

from smartsplat_dist.model import SIGMA_MAX
from smartsplat_dist.raster.cpu_backend import STRIP, render_cpu
from smartsplat_dist.raster.footprint import conics
from smartsplat_dist.raster.torch_backend import render_torch
from tests.raster.render_helpers import assert_close_rel, grads, random_gaussians


@pytest.mark.parametrize("n,h,w,seed", [(300, 45, 70, 0), (60, 16, 16, 1), (40, 1, 1, 2), (150, 3 * STRIP + 5, 23, 3)])
def test_values_and_gradients_match_reference(n, h, w, seed):
    p = random_gaussians(n, h, w, seed=seed, border=10.0)
    go = torch.randn(h, w, 3, generator=torch.Generator().manual_seed(seed))
    ref, ref_g = grads(render_torch, p, h, w, go)
    out, out_g = grads(render_cpu, p, h, w, go)
    assert out.shape == (h, w, 3) and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    for name, a, b in zip(("means", "scales", "rotations", "colors"), out_g, ref_g):
        assert_close_rel(a, b, 1e-4, name)


def test_degenerate_thin_gaussians():
    # needles (one scale 1e-3 px): sigma is ill-conditioned, but both backends make the same float32 decisions
    h, w = 30, 41
    p = random_gaussians(80, h, w, seed=4, n_thin=80)
    go = torch.randn(h, w, 3, generator=torch.Generator().manual_seed(4))
    ref, ref_g = grads(render_torch, p, h, w, go)
    out, out_g = grads(render_cpu, p, h, w, go)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    assert out.abs().sum() > 0  # they do draw something
    assert all(torch.isfinite(g).all() for g in out_g)
    assert_close_rel(out_g[3], ref_g[3], 1e-4, "colors")
    assert_close_rel(out_g[0], ref_g[0], 1e-3, "means")


def test_empty_outside_and_big():
    z = torch.zeros
    p = [z(0, 2, requires_grad=True), z(0, 2, requires_grad=True), z(0, requires_grad=True),
         z(0, 3, requires_grad=True)]
    out = render_cpu(*p, 9, 7)
    assert out.shape == (9, 7, 3) and not out.any()
    out.sum().backward()
    assert p[0].grad.shape == (0, 2)
    # fully outside on every side, and one Gaussian much larger than the image
    means = torch.tensor([[-40.0, 5.0], [50.0, 5.0], [5.0, -40.0], [5.0, 60.0], [4.0, 4.0]])
    scales = torch.tensor([[2.0, 2.0]] * 4 + [[300.0, 200.0]])
    rot, col = torch.tensor([0.0, 1.0, 2.0, 3.0, 0.4]), torch.ones(5, 3)
    ref = render_torch(means, scales, rot, col, 9, 7)
    out = render_cpu(means, scales, rot, col, 9, 7)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    assert out.min() > 0.99  # the big one covers everything with w ~ 1
    # absurdly far means must neither crash nor draw (no overflow in the pixel-range arithmetic)
    far = torch.tensor([[1e30, 3.0], [3.0, -1e30], [-1e25, 1e25]])
    out = render_cpu(far, torch.ones(3, 2), torch.zeros(3), torch.ones(3, 3), 9, 7)
    assert not out.any()


def test_concurrent_calls_from_threads():
    p = random_gaussians(200, 40, 40, seed=5)
    want = render_cpu(*p, 40, 40)
    results = []
    threads = [threading.Thread(target=lambda: results.append(render_cpu(*p, 40, 40))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and all(torch.equal(r, want) for r in results)



def _float64_weights_float32_cut(means, conic, colors, height, width):
    """The kernel's model with every weight in float64 (the terms kept are decided in float32 as the kernel does,
    on the float32 conic it is given): [H, W, 3] float64, differentiable w.r.t. means and colours."""
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    m32 = means.detach()
    dx, dy = xs[..., None] - m32[:, 0], ys[..., None] - m32[:, 1]
    a, b, c = conic.unbind(1)
    keep = 0.5 * (a * dx * dx + (2 * b) * dx * dy + c * dy * dy) <= SIGMA_MAX
    a, b, c = conic.double().unbind(1)
    dx = xs.double()[..., None] - means[:, 0]
    dy = ys.double()[..., None] - means[:, 1]
    w = torch.exp(-0.5 * (a * dx * dx + 2 * b * dx * dy + c * dy * dy))
    return torch.where(keep, w, torch.zeros_like(w)) @ colors


def test_long_rows_follow_the_recurrence_accurately():
    # big, elongated Gaussians: their rows of tens to hundreds of pixels take the weight recurrence, whose float64
    # weights must stay closer to exact than float32 exps can (numba's float() of a float32 stays float32: a
    # recurrence run in float32 by mistake drifts by ~1e-4 over such rows)
    h, w, n = 64, 300, 40
    gen = torch.Generator().manual_seed(5)
    means = torch.rand(n, 2, generator=gen) * torch.tensor([float(w), float(h)])
    scales = torch.stack([20 + 80 * torch.rand(n, generator=gen), 1 + 4 * torch.rand(n, generator=gen)], 1)
    rotations, colors = torch.rand(n, generator=gen) * 3.1, torch.rand(n, 3, generator=gen) - 0.3
    conic = conics(scales, rotations).detach()
    go = torch.randn(h, w, 3, generator=gen)
    m64, c64 = means.double().requires_grad_(), colors.double().requires_grad_()
    ref = _float64_weights_float32_cut(m64, conic, c64, h, w)
    (ref * go.double()).sum().backward()
    out, out_g = grads(render_cpu, [means, scales, rotations, colors], h, w, go)
    torch.testing.assert_close(out.double(), ref.detach(), rtol=1e-5, atol=1e-5)  # float32 sums of ~40 terms
    assert_close_rel(out_g[0].double(), m64.grad, 5e-6, "means")  # float32 exps everywhere: 7e-5
    assert_close_rel(out_g[3].double(), c64.grad, 1.5e-5, "colors")  # and 3e-5


def test_thin_diagonal_gaussians_in_small_boxes():
    # a bounding box of 6-8 px around a thin diagonal Gaussian: the box's corners are far outside the ellipse
    # (exp(-sigma) underflows there), so no weight may be derived from them
    h, w, n = 24, 40, 30
    gen = torch.Generator().manual_seed(6)
    means = torch.rand(n, 2, generator=gen) * torch.tensor([float(w), float(h)])
    scales = torch.stack([1.2 + 0.4 * torch.rand(n, generator=gen), 0.03 + 0.05 * torch.rand(n, generator=gen)], 1)
    rotations = 0.785 + 0.2 * torch.randn(n, generator=gen)
    p = [means, scales, rotations, torch.rand(n, 3, generator=gen)]
    go = torch.randn(h, w, 3, generator=gen)
    ref, ref_g = grads(render_torch, p, h, w, go)
    out, out_g = grads(render_cpu, p, h, w, go)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    for name, a, b in zip(("means", "scales", "rotations", "colors"), out_g, ref_g):
        assert_close_rel(a, b, 1e-3, name)
