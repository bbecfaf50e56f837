"""Pure-PyTorch tiled reference rasterizer: the oracle every other backend is tested against (docs/design.md §1).

It implements the model literally: pixel (x, y) is sampled at ``p = (x + 0.5, y + 0.5)``,
``sigma_i(p) = 1/2 (p - m_i)^T Sigma_i^-1 (p - m_i)``, the term ``c_i exp(-sigma_i)`` is kept iff
``sigma_i(p) <= SIGMA_MAX`` (i.e. ``w >= 1/255``), and the image is the plain, unclamped sum of the kept terms.

Memory is bounded by chunking: the image is cut into ``BLOCK x BLOCK`` pixel blocks; for each block only the
Gaussians whose 3.33-sigma bounding box (``footprint.bbox_half_extent``, widened by one pixel so that the cull
can never drop a kept term) touches the block are evaluated, ``CHUNK`` Gaussians at a time as a dense
``[chunk, pixels]`` array. When gradients are needed each (block, chunk) evaluation runs under
``torch.utils.checkpoint``, so autograd keeps only the gathered parameters of each chunk, not the dense
intermediates; the backward pass recomputes them. Gradients are plain autograd through torch ops.

Works for any floating dtype (float64 for ``gradcheck``) and any device; slow by design.
"""
from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

from ..model import SIGMA_MAX
from .footprint import bbox_half_extent, conics

#: Pixel block side (pixels).
BLOCK = 32
#: Gaussians evaluated at once against one block (dense [CHUNK, BLOCK*BLOCK] intermediates).
CHUNK = 512
#: Extra pixels added to each bounding box before culling (the sigma test decides exactly).
CULL_MARGIN = 1.0


def _block_sum(px: torch.Tensor, py: torch.Tensor, means: torch.Tensor, conic: torch.Tensor,
               colors: torch.Tensor) -> torch.Tensor:
    """Sum of the kept terms of K Gaussians over P pixel centres.

    Args:
        px, py: [P] pixel-centre coordinates (x + 0.5, y + 0.5).
        means: [K, 2]; conic: [K, 3] (a, b, c) of Sigma^-1; colors: [K, 3].
    Returns:
        [P, 3] sum over the K Gaussians of colors * exp(-sigma), terms with sigma > SIGMA_MAX dropped.
    """
    dx = px[None, :] - means[:, 0:1]  # [K, P]
    dy = py[None, :] - means[:, 1:2]
    a, b, c = conic[:, 0:1], conic[:, 1:2], conic[:, 2:3]
    sigma = 0.5 * (a * dx * dx + 2.0 * b * dx * dy + c * dy * dy)
    keep = sigma <= SIGMA_MAX
    w = torch.where(keep, torch.exp(-torch.where(keep, sigma, torch.zeros_like(sigma))), torch.zeros_like(sigma))
    return w.transpose(0, 1) @ colors  # [P, 3]


def render_torch(means: torch.Tensor, scales: torch.Tensor, rotations: torch.Tensor, colors: torch.Tensor,
                 height: int, width: int) -> torch.Tensor:
    """Render N Gaussians by sum blending (reference implementation).

    Args:
        means: [N, 2] float, pixels (x = column, y = row).
        scales: [N, 2] float, pixels, > 0.
        rotations: [N] float, radians.
        colors: [N, 3] float.
        height, width: output size in pixels.
    Returns:
        [height, width, 3] of the inputs' dtype/device, unclamped; differentiable w.r.t. all four inputs.
    """
    height, width = int(height), int(width)
    dtype, device = means.dtype, means.device
    conic = conics(scales, rotations)  # [N, 3], differentiable
    with torch.no_grad():
        ext = bbox_half_extent(scales, rotations) + CULL_MARGIN  # [N, 2]
        lo = means.detach() - ext  # bbox in continuous coordinates
        hi = means.detach() + ext
    need_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (means, scales, rotations, colors))

    rows = []
    for y0 in range(0, height, BLOCK):
        y1 = min(y0 + BLOCK, height)
        # pixel centres y0 + 0.5 .. y1 - 0.5 lie inside the continuous span [y0, y1]
        in_row = torch.nonzero((hi[:, 1] >= y0) & (lo[:, 1] <= y1)).flatten()
        row_lo, row_hi = lo[in_row, 0], hi[in_row, 0]
        blocks = []
        for x0 in range(0, width, BLOCK):
            x1 = min(x0 + BLOCK, width)
            ids = in_row[(row_hi >= x0) & (row_lo <= x1)]
            ys = torch.arange(y0, y1, dtype=dtype, device=device) + 0.5
            xs = torch.arange(x0, x1, dtype=dtype, device=device) + 0.5
            py, px = torch.meshgrid(ys, xs, indexing="ij")
            px, py = px.reshape(-1), py.reshape(-1)
            acc = torch.zeros(px.shape[0], 3, dtype=dtype, device=device)
            for k0 in range(0, ids.shape[0], CHUNK):
                sel = ids[k0:k0 + CHUNK]
                args = (px, py, means[sel], conic[sel], colors[sel])
                if need_grad:
                    acc = acc + checkpoint(_block_sum, *args, use_reentrant=False)
                else:
                    acc = acc + _block_sum(*args)
            blocks.append(acc.reshape(y1 - y0, x1 - x0, 3))
        rows.append(torch.cat(blocks, dim=1) if blocks else torch.zeros(y1 - y0, 0, 3, dtype=dtype, device=device))
    if not rows:
        return torch.zeros(0, width, 3, dtype=dtype, device=device)
    out = torch.cat(rows, dim=0)
    if not out.requires_grad and need_grad:
        # no Gaussian touched the image: keep the graph so that backward() gives zero gradients
        out = out + 0.0 * (means.sum() + scales.sum() + rotations.sum() + colors.sum())
    return out


__all__ = ["render_torch"]
