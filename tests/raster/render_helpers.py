"""Shared inputs and a dense oracle for the render tests."""
from __future__ import annotations

import torch

from smartsplat_dist.model import SIGMA_MAX
from smartsplat_dist.raster.footprint import conics


def random_gaussians(n: int, height: int, width: int, seed: int = 0, border: float = 12.0, n_thin: int = 0,
                     dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """[means [N,2], scales [N,2], rotations [N], colors [N,3]] with means spread ``border`` px past every edge,
    log-normal scales around 2 px, rotations in [-10, 10] rad (beyond +-pi), colors in [-0.5, 1.5]; the first
    ``n_thin`` Gaussians have one scale of 1e-3 px (degenerate, needle-like)."""
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 2, generator=g) * torch.tensor([width + 2 * border, height + 2 * border]) - border
    scales = 2.0 * torch.exp(0.6 * torch.randn(n, 2, generator=g))
    scales[:n_thin, 0] = 1e-3
    rotations = torch.rand(n, generator=g) * 20.0 - 10.0
    colors = torch.rand(n, 3, generator=g) * 2.0 - 0.5
    return [t.to(dtype) for t in (means, scales, rotations, colors)]


def dense_render(means, scales, rotations, colors, height: int, width: int) -> torch.Tensor:
    """Every Gaussian at every pixel, no culling: the literal docs/design.md §1 formula. [H, W, 3]."""
    q = conics(scales, rotations)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=means.dtype) + 0.5,
                            torch.arange(width, dtype=means.dtype) + 0.5, indexing="ij")
    dx = xs[..., None] - means[:, 0]
    dy = ys[..., None] - means[:, 1]
    sigma = 0.5 * (q[:, 0] * dx * dx + 2.0 * q[:, 1] * dx * dy + q[:, 2] * dy * dy)
    w = torch.where(sigma <= SIGMA_MAX, torch.exp(-sigma), torch.zeros_like(sigma))
    return w @ colors


def grads(fn, params, height: int, width: int, grad_out: torch.Tensor) -> tuple[torch.Tensor, list]:
    """(image, [d<image, grad_out>/d param for the four params]) of ``fn``; params are cloned."""
    ps = [p.detach().clone().requires_grad_() for p in params]
    img = fn(*ps, height, width)
    (img * grad_out).sum().backward()
    return img.detach(), [p.grad for p in ps]


def assert_close_rel(a: torch.Tensor, b: torch.Tensor, rtol: float, what: str) -> None:
    """|a - b| <= rtol * (|b| + 1e-2 * max|b|) elementwise (relative, with a floor for tiny entries)."""
    floor = 1e-2 * float(b.abs().max()) + 1e-12
    err = ((a - b).abs() / (b.abs() + floor)).max().item() if b.numel() else 0.0
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol}"
