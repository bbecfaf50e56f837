"""The torch reference against the literal formula, autograd gradcheck, and edge cases."""
from __future__ import annotations

import math

import pytest
import torch

from smartsplat_dist.model import SIGMA_MAX
from smartsplat_dist.raster import torch_backend
from smartsplat_dist.raster.torch_backend import render_torch
from tests.raster.render_helpers import dense_render, random_gaussians


@pytest.mark.parametrize("hw", [(45, 70), (16, 16), (1, 1), (33, 5)])
def test_matches_dense_formula(hw):
    h, w = hw
    p = random_gaussians(120, h, w, seed=1, n_thin=10)
    ref = dense_render(*p, h, w)  # same float32 arithmetic: the same cut decisions, even for needles
    out = render_torch(*p, h, w)
    assert out.shape == (h, w, 3) and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    q = [t[10:].double() for t in p]  # well-conditioned ones also agree with float64
    torch.testing.assert_close(render_torch(*[t[10:] for t in p], h, w), dense_render(*q, h, w).float(),
                               rtol=1e-5, atol=1e-5)


def test_single_gaussian_values_and_cut():
    # an axis-aligned Gaussian centred on pixel (3, 2)'s centre: w = exp(-dx^2 / (2 s^2)) along x
    means = torch.tensor([[3.5, 2.5]])
    scales = torch.tensor([[2.0, 1.0]])
    out = render_torch(means, scales, torch.zeros(1), torch.tensor([[1.0, 0.5, 0.0]]), 5, 12)
    for x in range(12):
        sigma = (x - 3) ** 2 / 8.0
        want = math.exp(-sigma) if sigma <= SIGMA_MAX else 0.0
        assert out[2, x, 0].item() == pytest.approx(want, abs=1e-7)
        assert out[2, x, 1].item() == pytest.approx(0.5 * want, abs=1e-7)
    assert out[2, 10, 0].item() == 0.0  # sigma = 49/8 > ln 255: cut
    assert out[2, 9, 0].item() > 0.0  # sigma = 36/8 <= ln 255: kept (w = 0.011)


def test_rotation_period_and_axis_swap():
    p = random_gaussians(30, 20, 24, seed=2)
    a = render_torch(*p, 20, 24)
    m, s, r, c = p
    torch.testing.assert_close(render_torch(m, s, r + 2 * math.pi, c, 20, 24), a, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(render_torch(m, s.flip(1), r + math.pi / 2, c, 20, 24), a, rtol=1e-4, atol=1e-5)


def test_empty_and_outside():
    z = torch.zeros
    out = render_torch(z(0, 2), z(0, 2), z(0), z(0, 3), 7, 9)
    assert out.shape == (7, 9, 3) and not out.any()
    means = torch.tensor([[-50.0, 3.0], [3.0, 500.0]], requires_grad=True)
    scales = torch.ones(2, 2, requires_grad=True)
    rot = torch.zeros(2, requires_grad=True)
    col = torch.ones(2, 3, requires_grad=True)
    out = render_torch(means, scales, rot, col, 7, 9)
    assert not out.any()
    out.sum().backward()
    assert all(t.grad is not None and not t.grad.any() for t in (means, scales, rot, col))


def test_chunking_does_not_change_result(monkeypatch):
    p = random_gaussians(200, 40, 50, seed=3)
    a = render_torch(*p, 40, 50)
    monkeypatch.setattr(torch_backend, "BLOCK", 7)
    monkeypatch.setattr(torch_backend, "CHUNK", 3)
    torch.testing.assert_close(render_torch(*p, 40, 50), a, rtol=1e-5, atol=1e-6)


def test_gradcheck_float64():
    # well-conditioned Gaussians, fully inside a small image, so that no pixel sits on the cut
    means = torch.tensor([[4.3, 5.1], [9.7, 3.2], [6.0, 7.7]], dtype=torch.float64)
    scales = torch.tensor([[1.3, 0.8], [0.9, 1.6], [2.0, 1.1]], dtype=torch.float64)
    rot = torch.tensor([0.3, -2.0, 4.0], dtype=torch.float64)
    col = torch.tensor([[0.2, 0.7, 1.0], [0.9, -0.1, 0.4], [0.5, 0.5, 0.3]], dtype=torch.float64)
    inputs = tuple(t.requires_grad_() for t in (means, scales, rot, col))
    assert torch.autograd.gradcheck(lambda *a: render_torch(*a, 11, 13), inputs, eps=1e-6, atol=1e-5,
                                    fast_mode=True)
