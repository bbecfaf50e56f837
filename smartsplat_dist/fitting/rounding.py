"""Learned rounding onto a record's grid (AdaRound, Nagel et al. 2020, "Up or Down? Adaptive Rounding for
Post-Training Quantization"): of the tuned shapes (log-scales, then rotations) and of the tuned colours.

Rounding every value to its nearest grid level throws away what the fine-tunes learned (on fitted photos, 0.2-1.0
dB for the colours, more for the shapes). The render is a sum over overlapping Gaussians, so whether a value goes
up or down matters together with its neighbours'. Each value ``x`` (in levels of its own step) is written
``floor(x) + h`` with ``h = clip(sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0, 1)``, ``v`` starting where h is the
fractional part; ``v`` is fitted by Adam on the fit's own loss (``lambda_l1 * L1 + (1 - lambda_l1) *
(1 - SSIM)`` of the clamped render) plus ``REG * loss0 * mean(1 - |2h - 1|**beta)``, which, with beta falling
from 20 to 2 after the first ``WARMUP`` of the iterations, pushes every h to 0 or 1. The result rounds each value
down or up (never further than the neighbouring level); a grid's origin (its smallest value) stays on level 0.
Other parameters can be fitted along (the colours while the shapes are rounded: they absorb what the rounding
moves). The squared errors of nearest and learned rounding come back, for keeping the better.

Shapes: N Gaussians; levels [N, C] float64 (C values per Gaussian on one grid each).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..codec.grid import rotation_bits
from ..codec.quantize import canonicalize
from ..model import Gaussians

#: Rectified sigmoid stretch (AdaRound's gamma, zeta).
GAMMA, ZETA = -0.1, 1.1
#: Weight of the rounding regulariser, relative to the loss of the first pass.
REG = 1.0
#: Share of the iterations before the regulariser starts.
WARMUP = 0.2
#: Adam's learning rate on v (logits).
LR = 0.2

#: ``Gaussians -> (gradients as Gaussians, loss, sse of the clamped render)`` (:func:`.optimize.image_loss`).
LossFn = Callable[[Gaussians], tuple[Gaussians, float, float]]


def _h(v: torch.Tensor) -> torch.Tensor:
    return (torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)


def learn_rounding(x: torch.Tensor, pin: torch.Tensor, decode: Callable[[torch.Tensor, torch.Tensor | None], Gaussians],
                   loss_fn: LossFn, iters: int, free: torch.Tensor | None = None, free_lr: float = 0.0
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Levels rounded down or up so that the loss of what they decode to is low.

    Args:
        x: [N, C] float64 levels to round (>= 0).
        pin: [N, C] bool: levels that stay at ``floor(x)`` (a grid's origin).
        decode: ``(levels [N, C] float64, free or None) -> Gaussians``, differentiable in both.
        loss_fn: the loss the levels are rounded for.
        iters: Adam iterations (0: nearest rounding, ``free`` as it is).
        free: [N, K] float32 parameters fitted along (Adam at ``free_lr``; 0: held), or None.
    Returns:
        (levels [N, C] float64, whole numbers, each floor(x) or floor(x) + 1; ``free`` after the fit).
    """
    floor = torch.floor(x)
    if iters <= 0:
        return torch.where(pin, floor, torch.round(x)), free
    v = torch.logit(((x - floor - GAMMA) / (ZETA - GAMMA)).clamp(1e-4, 1 - 1e-4)).float().requires_grad_()
    groups = [{"params": [v], "lr": LR}]
    moving = free is not None and free_lr > 0
    if moving:
        free = free.detach().clone().requires_grad_()
        groups.append({"params": [free], "lr": free_lr})
    opt = torch.optim.Adam(groups)
    loss0 = None
    for k in range(iters):
        h = torch.where(pin, 0.0, _h(v))
        g = decode(floor + h.double(), free)
        grads, loss, _ = loss_fn(Gaussians(*(t.detach() for t in g.tensors())))
        loss0 = loss if loss0 is None else loss0
        opt.zero_grad(set_to_none=True)
        total = sum((t * d).sum() for t, d in zip(g.tensors(), grads.tensors()) if t.requires_grad)
        if k >= WARMUP * iters:
            beta = 20.0 - 18.0 * (k - WARMUP * iters) / ((1.0 - WARMUP) * iters)
            total = total + REG * loss0 * (1.0 - (2.0 * h - 1.0).abs() ** beta).mean()
        total.backward()
        opt.step()
    levels = torch.where(pin, floor, floor + (_h(v.detach()).double() >= 0.5).double())
    return levels, (free.detach() if moving else free)


def round_colors(g: Gaussians, lo: torch.Tensor, step: torch.Tensor, loss_fn: LossFn, iters: int
                 ) -> tuple[torch.Tensor, float, float]:
    """Colours of ``g`` rounded onto the grid ``lo + level * step`` by learned rounding.

    Args:
        g: N Gaussians (their colours: the float values to round; at or above ``lo``).
        lo: [3] float64 grid origin per channel (each channel's smallest colour: it stays on level 0).
        step: [N, 1] float64 colour step of each Gaussian.
    Returns:
        (the learned colours [N, 3] float32 on the grid, the squared error of nearest rounding, that of the
        learned one: the caller keeps the better).
    """
    x = ((g.colors.double() - lo) / step).clamp(min=0.0)
    pin = torch.zeros_like(x, dtype=torch.bool)
    pin[x.argmin(dim=0), torch.arange(3)] = True
    decode = lambda levels, _: Gaussians(g.means, g.scales, g.rotations, (lo + step * levels).float())  # noqa: E731
    nearest = decode(learn_rounding(x, pin, decode, loss_fn, 0)[0], None)
    learned = decode(learn_rounding(x, pin, decode, loss_fn, iters)[0], None)
    return learned.colors, loss_fn(nearest)[2], loss_fn(learned)[2]


def round_shapes(g: Gaussians, scale_lo: float, scale_step: float, rotation_tolerance: float, loss_fn: LossFn,
                 iters: int, colors_lr: float) -> tuple[Gaussians, float, float]:
    """Log-scales of ``g`` rounded onto the grid ``scale_lo + level * scale_step`` by learned rounding, then
    its rotations onto the levels that the rounded scales give them (:func:`~..codec.grid.rotation_bits`), the
    colours fitted along at ``colors_lr`` (both times).

    Args:
        g: N Gaussians (means where the record puts them; scales, rotations and colours the float values).
        scale_lo, scale_step, rotation_tolerance: the record's scale grid and rotation tolerance (float32 values).
    Returns:
        (g with its scales and rotations on the grid, in canonical form, and the fitted colours; the squared
        error of nearest rounding with g's colours; that of the learned one: the caller keeps the better).
    """
    scales, theta = canonicalize(g.scales.detach(), g.rotations.detach())
    x = ((torch.log(scales.double()) - scale_lo) / scale_step).clamp(min=0.0)
    pin = torch.zeros_like(x, dtype=torch.bool)
    pin.view(-1)[int(x.argmin())] = True  # the grid's origin: the smallest log-scale of either axis

    def on_grid(levels: torch.Tensor) -> torch.Tensor:
        levels = levels.clone()
        levels[:, 1] = torch.minimum(levels[:, 1], levels[:, 0])  # the record keeps sx >= sy
        return levels

    def angles(sl: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(angle levels [N, 1], pin [N, 1]: no angle stored, levels per half turn [N]) for scale levels sl."""
        bits = torch.from_numpy(rotation_bits(sl.long().numpy(), scale_lo, scale_step, rotation_tolerance))
        unit = torch.ldexp(torch.ones_like(theta, dtype=torch.float64), bits)
        return (theta.double() * unit / math.pi)[:, None], (bits == 0)[:, None], unit

    def shaped(sl: torch.Tensor, rotations: torch.Tensor, colors: torch.Tensor) -> Gaussians:
        return Gaussians(g.means, torch.exp(scale_lo + scale_step * sl).float(), rotations, colors)

    def turned(levels: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        return (torch.remainder(levels[:, 0], unit) * math.pi / unit).float()

    sl, colors = learn_rounding(x, pin, lambda levels, c: shaped(levels, theta, c), loss_fn, iters,
                                g.colors, colors_lr)
    sl = on_grid(sl)
    xr, pin_r, unit = angles(sl)
    rl, colors = learn_rounding(xr, pin_r, lambda levels, c: shaped(sl, turned(levels, unit), c), loss_fn, iters,
                                colors, colors_lr)
    learned = shaped(sl, turned(rl, unit), colors)
    near_sl = on_grid(torch.round(x))
    near_r, _, near_unit = angles(near_sl)
    nearest = shaped(near_sl, turned(torch.round(near_r), near_unit), g.colors)
    return learned, loss_fn(nearest)[2], loss_fn(learned)[2]
