"""Learned rounding of the colours onto a record's grid (AdaRound, Nagel et al. 2020, "Up or Down? Adaptive
Rounding for Post-Training Quantization").

Rounding every colour to its nearest grid level throws away what the colour fine-tune learned: 0.2-1.0 dB on
fitted photos. The render is a sum over overlapping Gaussians, so whether a colour goes up or down matters
together with its neighbours'. For fixed geometry, each colour channel ``x`` (in levels of its own step) is
written ``floor(x) + h`` with ``h = clip(sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0, 1)``, ``v`` starting where h is
the fractional part; ``v`` is fitted by Adam on the fit's own loss (``lambda_l1 * L1 + (1 - lambda_l1) *
(1 - SSIM)`` of the clamped render) plus ``REG * loss0 * mean(1 - |2h - 1|**beta)``, which, with beta falling from
20 to 2 after the first ``WARMUP`` of the iterations, pushes every h to 0 or 1. The result rounds each channel
down or up (never further than the neighbouring level), each channel's smallest value stays on level 0 so that
the grid's origin does not move; the squared errors of both roundings come back, for keeping the better.

Shapes: N Gaussians; ``lo`` [3] the grid's origin per channel, ``step`` [N, 1] each Gaussian's colour step.
"""
from __future__ import annotations

import torch

from ..model import Gaussians

#: Rectified sigmoid stretch (AdaRound's gamma, zeta).
GAMMA, ZETA = -0.1, 1.1
#: Weight of the rounding regulariser, relative to the loss of the first pass.
REG = 1.0
#: Share of the iterations before the regulariser starts.
WARMUP = 0.2
#: Adam's learning rate on v (logits).
LR = 0.2


def _h(v: torch.Tensor) -> torch.Tensor:
    return (torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)


def learn_rounding(g: Gaussians, lo: torch.Tensor, step: torch.Tensor, loss_fn, iters: int
                   ) -> tuple[torch.Tensor, float, float]:
    """Colours of ``g`` rounded onto the grid ``lo + level * step`` by learned rounding.

    Args:
        g: N Gaussians (their colours: the float values to round; at or above ``lo``).
        lo: [3] float64 grid origin per channel (each channel's smallest colour).
        step: [N, 1] float64 colour step of each Gaussian.
        loss_fn: ``Gaussians -> (gradients as Gaussians, loss, sse)`` (:func:`.optimize.image_loss`): the loss
            the colours are rounded for, and the squared error of the [0, 1]-clamped render.
        iters: Adam iterations (0: nearest rounding).
    Returns:
        (the learned colours [N, 3] float32 on the grid, the squared error of nearest rounding, that of the
        learned one: the caller keeps the better).
    """
    x = ((g.colors.double() - lo) / step).clamp(min=0.0)
    floor = torch.floor(x)
    pin = torch.zeros_like(x, dtype=torch.bool)
    pin[x.argmin(dim=0), torch.arange(3)] = True  # the origin stays on level 0
    colors_of = lambda levels: (lo + step * levels).float()  # noqa: E731
    with_colors = lambda c: Gaussians(g.means, g.scales, g.rotations, c)  # noqa: E731
    nearest = torch.where(pin, floor, torch.round(x))
    v = torch.logit(((x - floor - GAMMA) / (ZETA - GAMMA)).clamp(1e-4, 1 - 1e-4)).float().requires_grad_()
    opt = torch.optim.Adam([v], lr=LR)
    loss0 = None
    for k in range(iters):
        h = torch.where(pin, 0.0, _h(v))
        colors = colors_of(floor + h.double())
        grads, loss, _ = loss_fn(with_colors(colors))
        loss0 = loss if loss0 is None else loss0
        opt.zero_grad(set_to_none=True)
        total = (colors * grads.colors).sum()
        if k >= WARMUP * iters:
            beta = 20.0 - 18.0 * (k - WARMUP * iters) / ((1.0 - WARMUP) * iters)
            total = total + REG * loss0 * (1.0 - (2.0 * h - 1.0).abs() ** beta).mean()
        total.backward()
        opt.step()
    learned = colors_of(torch.where(pin, floor, floor + (_h(v.detach()).double() >= 0.5).double()))
    return learned, loss_fn(with_colors(colors_of(nearest)))[2], loss_fn(with_colors(learned))[2]
