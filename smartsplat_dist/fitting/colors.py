"""Colour warm start: least-squares colours for fixed geometry, by conjugate gradients on the render.

Under sum blending the render is linear in the colours: ``render(c) = A c`` with ``A`` the [HW, N] matrix of the
Gaussians' weights (the same for the three channels). For fixed means, scales and rotations the colours that
minimise ``||A c - t||^2`` solve the normal equations ``A^T A c = A^T t``; ``solve_colors`` runs a few iterations
of conjugate gradients on them (one CG per channel, the three run together), starting from the given colours.
Each iteration costs two renders and one render backward (no SSIM), window by window, so memory is one window:

    g = A^T (A x - t)    (the render's backward of the L2 loss)
    d = -g;  repeat: alpha = |g|^2 / |A d|^2;  x += alpha d;  g' = A^T (A x - t);  d = -g' + |g'|^2 / |g|^2 d
"""
from __future__ import annotations

import torch

from ..model import Gaussians


def _l2_grad(g: Gaussians, colors: torch.Tensor, wins, render_fn) -> torch.Tensor:
    """[N, 3] ``A^T (A colors - t)`` over the owned pixels of every window."""
    leaf = colors.detach().requires_grad_()
    with torch.enable_grad():
        for win in wins:
            target, _ = win.target()
            oh, ow = win.y1 - win.y0, win.x1 - win.x0
            sg = g.shifted(float(win.x0), float(win.y0))
            img = render_fn(sg.means, sg.scales, sg.rotations, leaf, oh, ow)
            (0.5 * ((img - target[:oh, :ow]) ** 2).sum()).backward()
    return leaf.grad if leaf.grad is not None else torch.zeros_like(colors)


def _norm2_render(g: Gaussians, colors: torch.Tensor, wins, render_fn) -> torch.Tensor:
    """[3] ``|A colors|^2`` per channel over the owned pixels of every window."""
    total = torch.zeros(3, dtype=torch.float64, device=colors.device)
    with torch.no_grad():
        for win in wins:
            oh, ow = win.y1 - win.y0, win.x1 - win.x0
            sg = g.shifted(float(win.x0), float(win.y0))
            img = render_fn(sg.means, sg.scales, sg.rotations, colors, oh, ow)
            total += (img.double() ** 2).sum(dim=(0, 1))
    return total


def solve_colors(g: Gaussians, wins, render_fn, iters: int) -> torch.Tensor:
    """[N, 3] colours after ``iters`` CG iterations on ``min_c ||render(g with colours c) - image||^2``.

    Args:
        g: Gaussians in pixel units [N]; its colours are the starting point (not modified).
        wins: loss windows (:class:`..optimize.LossWindow`) covering the image.
        iters: CG iterations (0 returns g's colours).
    """
    geo = Gaussians(g.means.detach(), g.scales.detach(), g.rotations.detach(), g.colors.detach())
    x = geo.colors.clone()
    if iters <= 0 or len(geo) == 0:
        return x
    grad = _l2_grad(geo, x, wins, render_fn)
    gamma = (grad.double() ** 2).sum(dim=0)  # [3]
    d = -grad
    for _ in range(iters):
        ad2 = _norm2_render(geo, d, wins, render_fn)
        ok = (ad2 > 0) & (gamma > 0)
        if not bool(ok.any()):
            break
        alpha = torch.where(ok, gamma / torch.where(ok, ad2, torch.ones_like(ad2)), torch.zeros_like(ad2))
        x = x + alpha.to(x.dtype) * d
        grad = _l2_grad(geo, x, wins, render_fn)
        gamma_new = (grad.double() ** 2).sum(dim=0)
        beta = torch.where(gamma > 0, gamma_new / torch.where(gamma > 0, gamma, torch.ones_like(gamma)),
                           torch.zeros_like(gamma))
        d = -grad + beta.to(x.dtype) * d
        gamma = gamma_new
    return x.detach()


__all__ = ["solve_colors"]
