"""The numba CPU backend against the torch reference: values and gradients of all four tensors."""
from __future__ import annotations

import threading

import pytest
import torch

from smartsplat_dist.raster.cpu_backend import STRIP, render_cpu
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
