"""Distortion-driven relocation at fixed N: move the Gaussians that contribute least to where the error is largest.

Every ``FitConfig.relocate_every`` steps (until ``relocate_until`` of the steps), as 3DGS-MCMC's relocation
(dead Gaussians teleported, their Adam moments zeroed) and Image-GS's error-guided placement do in their own way:

1. *victims*: the ``k = round(relocate_fraction * N)`` Gaussians with the smallest contribution
   ``|colour|_1 * scale_x * scale_y`` (proportional to the colour mass they add to the image, ``2 pi |c| sx sy``);
2. the image is rendered without them (their colours set to 0) and the residual ``r = target - render`` (of the
   render clamped to [0, 1] when the loss sees it clamped: error that the clamp hides is not chased) is cut
   into square blocks of ``B`` px (``B`` about 3/4 of the mean spacing ``sqrt(HW/N)`` of the Gaussians);
3. each block is scored by the squared error one isotropic Gaussian of scale ``B / 2`` at its centre removes
   when its colour is the least-squares one, ``c = sum(r w) / sum(w^2)`` per channel (gain
   ``sum_ch (sum r w)^2 / sum w^2``);
4. the victims become Gaussians at the centres of the ``k`` best blocks, with that scale, rotation 0 and that
   colour; their Adam moments are zeroed (each parameter tensor's row), the others are untouched.

The render and the block statistics are computed window by window (the fit's loss windows), so memory stays
that of one window.
"""
from __future__ import annotations

import math

import torch

from ..model import Gaussians


def contribution(g: Gaussians) -> torch.Tensor:
    """[N] contribution score ``|colour|_1 * scale_x * scale_y`` (px^2)."""
    return g.colors.abs().sum(dim=1) * g.scales[:, 0] * g.scales[:, 1]


def victims(g: Gaussians, count: int) -> torch.Tensor:
    """[count] indices (int64) of the ``count`` Gaussians with the smallest :func:`contribution`."""
    count = max(0, min(count, len(g)))
    return torch.topk(contribution(g), count, largest=False).indices


def block_size(height: int, width: int, n: int) -> int:
    """Block edge in px: about 3/4 of the mean spacing of N Gaussians over the image, at least 2."""
    return max(2, int(round(0.75 * math.sqrt(height * width / max(1, n)))))


def _kernel(block: int, device: torch.device) -> torch.Tensor:
    """[B, B] weights of an isotropic Gaussian of scale B/2 at the block centre, at the pixel centres."""
    off = torch.arange(block, dtype=torch.float32, device=device) + 0.5 - block / 2.0
    sigma = block / 2.0
    d2 = off[:, None] ** 2 + off[None, :] ** 2
    return torch.exp(-0.5 * d2 / sigma ** 2)


def best_blocks(g: Gaussians, wins, render_fn, block: int, count: int, clamp: bool = False) -> Gaussians:
    """The ``count`` Gaussians (one per block) that each remove the most squared error of ``g``'s render.

    Args:
        g: Gaussians in pixel units (already without the victims' contribution).
        wins: loss windows (:class:`..optimize.LossWindow`) covering the image.
        block: block edge B in px.
        clamp: the residual is that of the render clamped to [0, 1].
    Returns:
        Gaussians of length min(count, number of blocks): means at block centres (px), scales B/2, rotation 0,
        least-squares colours.
    """
    device = g.means.device
    kern = _kernel(block, device)
    k2 = float((kern * kern).sum())
    cand_gain, cand_xy, cand_col = [], [], []
    with torch.no_grad():
        for win in wins:
            target, _ = win.target()
            oh, ow = win.y1 - win.y0, win.x1 - win.x0
            img = render_fn(*g.shifted(float(win.x0), float(win.y0)).tensors(), oh, ow)
            if clamp:
                img = img.clamp(0.0, 1.0)
            r = target[:oh, :ow] - img  # [oh, ow, 3]
            hb, wb = -(-oh // block), -(-ow // block)
            pad = torch.zeros(hb * block, wb * block, 3, dtype=r.dtype, device=device)
            pad[:oh, :ow] = r
            blocks = pad.view(hb, block, wb, block, 3)
            rw = torch.einsum("ibjcz,bc->ijz", blocks, kern)  # [hb, wb, 3]: sum r w per block
            gain = (rw * rw).sum(dim=2) / k2  # [hb, wb]
            keep = min(count, hb * wb)
            top = torch.topk(gain.reshape(-1), keep)
            iy, ix = top.indices // wb, top.indices % wb
            cand_gain.append(top.values)
            cand_xy.append(torch.stack([win.x0 + (ix.to(torch.float32) + 0.5) * block,
                                        win.y0 + (iy.to(torch.float32) + 0.5) * block], dim=1))
            cand_col.append(rw[iy, ix] / k2)
        gains = torch.cat(cand_gain)
        order = torch.topk(gains, min(count, len(gains))).indices
        means = torch.cat(cand_xy)[order]
        colors = torch.cat(cand_col)[order]
    m = len(order)
    scales = torch.full((m, 2), block / 2.0, dtype=torch.float32, device=device)
    return Gaussians(means, scales, torch.zeros(m, dtype=torch.float32, device=device), colors)


def plan(g: Gaussians, wins, render_fn, height: int, width: int, fraction: float,
         clamp: bool = False) -> tuple[torch.Tensor, Gaussians]:
    """Which Gaussians move and what they become.

    Args:
        g: the current Gaussians in pixel units [N].
        fraction: share of N to move.
        clamp: score the blocks on the render clamped to [0, 1] (as the loss does with ``clamp_render``).
    Returns:
        (idx [k] int64: the victims, Gaussians [k]: their replacements in pixel units, in the same order).
    """
    n = len(g)
    count = int(round(fraction * n))
    if count == 0:
        return torch.zeros(0, dtype=torch.int64, device=g.means.device), Gaussians.empty(g.means.device)
    with torch.no_grad():
        idx = victims(g, count)
        colors = g.colors.clone()
        colors[idx] = 0.0
        rest = Gaussians(g.means, g.scales, g.rotations, colors)
        new = best_blocks(rest, wins, render_fn, block_size(height, width, n), count, clamp)
    return idx[:len(new)], new


def reset_adam_rows(opt: torch.optim.Optimizer, idx: torch.Tensor) -> None:
    """Zero Adam's first and second moments of rows ``idx`` of every parameter (dim 0 indexes the Gaussians)."""
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state.get(p)
            if not state:
                continue
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    state[key][idx] = 0.0


__all__ = ["contribution", "victims", "block_size", "best_blocks", "plan", "reset_adam_rows"]
