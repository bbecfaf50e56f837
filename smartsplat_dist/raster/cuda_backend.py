"""CUDA rasterizer: gsplat tile binning + our own fused Triton sum-blend kernels (docs/design.md §1–2).

Pipeline (all on the tensors' device):

1. ``footprint.conics`` (torch, differentiable: autograd carries conic gradients to scales / rotations) and
   ``binning.tile_radii`` (int32 3.33-sigma half extents, rounded up).
2. Binning to 16x16 tiles, swappable: ``gsplat.isect_tiles(means2d [1, N, 2], radii [1, N, 2] int32,
   depths [1, N], tile_size=16, tile_width, tile_height)`` + ``gsplat.isect_offset_encode(isect_ids, 1, tw, th)``
   on CUDA; the identical pure-torch ``binning.isect_tiles`` / ``binning.isect_offset_encode`` elsewhere (how the
   kernels are tested on CPU with ``TRITON_INTERPRET=1``). Depths are all 0: sum blending has no order.
3. Forward kernel: one program per tile; it walks that tile's Gaussians ``BLOCK_G`` at a time as a dense
   ``[BLOCK_G, 256]`` block and writes the tile's pixels once.
4. Backward kernel: one program per tile; it reduces each Gaussian's 8 gradient values (2 mean, 3 conic,
   3 colour) over the tile's pixels and ``tl.atomic_add``-s them into per-Gaussian buffers (one add per
   Gaussian-tile pair and value; float atomics, so the summation order is not deterministic).

gsplat's intersection ids and offsets are int32: when an image would have more than 2^31 - 1 Gaussian-tile
pairs it is split into horizontal bands of tile rows (recursively halved) rendered separately and stacked;
a single tile row that is still over the limit raises ConfigError.
"""
from __future__ import annotations

import os
from typing import Callable

import torch

from ..errors import ConfigError
from ..model import SIGMA_MAX
from . import binning
from .footprint import conics

TILE = 16
#: Gaussians processed at once per tile program.
BLOCK_G = 32

_kernels = None


def _load_kernels():
    """Compile-on-demand Triton kernels (import triton lazily: TRITON_INTERPRET is read at import)."""
    global _kernels
    if _kernels is not None:
        return _kernels
    import triton  # lazy: triton is optional (CUDA only)
    import triton.language as tl  # lazy: triton is optional (CUDA only)

    @triton.jit
    def fwd_kernel(means_ptr, conic_ptr, colors_ptr, offsets_ptr, flat_ptr, n_isects, n_tiles, tile_w,
                   height, width, out_ptr, SMAX: tl.constexpr, T: tl.constexpr, BG: tl.constexpr):
        tid = tl.program_id(0)
        ty = tid // tile_w
        tx = tid % tile_w
        pix = tl.arange(0, T * T)
        py = ty * T + pix // T
        px = tx * T + pix % T
        inside = (py < height) & (px < width)
        fx = px.to(tl.float32) + 0.5
        fy = py.to(tl.float32) + 0.5
        start = tl.load(offsets_ptr + tid)
        end = tl.load(offsets_ptr + tid + 1, mask=tid + 1 < n_tiles, other=n_isects)
        acc0 = tl.zeros([T * T], dtype=tl.float32)
        acc1 = tl.zeros([T * T], dtype=tl.float32)
        acc2 = tl.zeros([T * T], dtype=tl.float32)
        for k0 in range(start, end, BG):
            k = k0 + tl.arange(0, BG)
            km = k < end
            gid = tl.load(flat_ptr + k, mask=km, other=0).to(tl.int64)
            mx = tl.load(means_ptr + gid * 2, mask=km, other=0.0)
            my = tl.load(means_ptr + gid * 2 + 1, mask=km, other=0.0)
            a = tl.load(conic_ptr + gid * 3, mask=km, other=0.0)
            b = tl.load(conic_ptr + gid * 3 + 1, mask=km, other=0.0)
            c = tl.load(conic_ptr + gid * 3 + 2, mask=km, other=0.0)
            c0 = tl.load(colors_ptr + gid * 3, mask=km, other=0.0)
            c1 = tl.load(colors_ptr + gid * 3 + 1, mask=km, other=0.0)
            c2 = tl.load(colors_ptr + gid * 3 + 2, mask=km, other=0.0)
            dx = fx[None, :] - mx[:, None]
            dy = fy[None, :] - my[:, None]
            sig = 0.5 * (a[:, None] * dx * dx + (2.0 * b)[:, None] * dx * dy + c[:, None] * dy * dy)
            keep = (sig <= SMAX) & km[:, None] & inside[None, :]
            w = tl.where(keep, tl.exp(-tl.where(keep, sig, 0.0)), 0.0)
            acc0 += tl.sum(w * c0[:, None], axis=0)
            acc1 += tl.sum(w * c1[:, None], axis=0)
            acc2 += tl.sum(w * c2[:, None], axis=0)
        o = (py.to(tl.int64) * width + px) * 3
        tl.store(out_ptr + o, acc0, mask=inside)
        tl.store(out_ptr + o + 1, acc1, mask=inside)
        tl.store(out_ptr + o + 2, acc2, mask=inside)

    @triton.jit
    def bwd_kernel(means_ptr, conic_ptr, colors_ptr, offsets_ptr, flat_ptr, n_isects, n_tiles, tile_w,
                   height, width, gout_ptr, gmeans_ptr, gconic_ptr, gcolors_ptr,
                   SMAX: tl.constexpr, T: tl.constexpr, BG: tl.constexpr):
        tid = tl.program_id(0)
        ty = tid // tile_w
        tx = tid % tile_w
        pix = tl.arange(0, T * T)
        py = ty * T + pix // T
        px = tx * T + pix % T
        inside = (py < height) & (px < width)
        fx = px.to(tl.float32) + 0.5
        fy = py.to(tl.float32) + 0.5
        o = (py.to(tl.int64) * width + px) * 3
        g0 = tl.load(gout_ptr + o, mask=inside, other=0.0)
        g1 = tl.load(gout_ptr + o + 1, mask=inside, other=0.0)
        g2 = tl.load(gout_ptr + o + 2, mask=inside, other=0.0)
        start = tl.load(offsets_ptr + tid)
        end = tl.load(offsets_ptr + tid + 1, mask=tid + 1 < n_tiles, other=n_isects)
        for k0 in range(start, end, BG):
            k = k0 + tl.arange(0, BG)
            km = k < end
            gid = tl.load(flat_ptr + k, mask=km, other=0).to(tl.int64)
            mx = tl.load(means_ptr + gid * 2, mask=km, other=0.0)
            my = tl.load(means_ptr + gid * 2 + 1, mask=km, other=0.0)
            a = tl.load(conic_ptr + gid * 3, mask=km, other=0.0)
            b = tl.load(conic_ptr + gid * 3 + 1, mask=km, other=0.0)
            c = tl.load(conic_ptr + gid * 3 + 2, mask=km, other=0.0)
            c0 = tl.load(colors_ptr + gid * 3, mask=km, other=0.0)
            c1 = tl.load(colors_ptr + gid * 3 + 1, mask=km, other=0.0)
            c2 = tl.load(colors_ptr + gid * 3 + 2, mask=km, other=0.0)
            dx = fx[None, :] - mx[:, None]
            dy = fy[None, :] - my[:, None]
            sig = 0.5 * (a[:, None] * dx * dx + (2.0 * b)[:, None] * dx * dy + c[:, None] * dy * dy)
            keep = (sig <= SMAX) & km[:, None] & inside[None, :]
            w = tl.where(keep, tl.exp(-tl.where(keep, sig, 0.0)), 0.0)
            # dL/dc_k = sum_p g_k w ; gw = sum_k g_k c_k w = -dL/dsigma
            gw = w * (g0[None, :] * c0[:, None] + g1[None, :] * c1[:, None] + g2[None, :] * c2[:, None])
            gdx = gw * dx
            gdy = gw * dy
            tl.atomic_add(gcolors_ptr + gid * 3, tl.sum(w * g0[None, :], axis=1), mask=km)
            tl.atomic_add(gcolors_ptr + gid * 3 + 1, tl.sum(w * g1[None, :], axis=1), mask=km)
            tl.atomic_add(gcolors_ptr + gid * 3 + 2, tl.sum(w * g2[None, :], axis=1), mask=km)
            sxx = tl.sum(gdx * dx, axis=1)
            sxy = tl.sum(gdx * dy, axis=1)
            syy = tl.sum(gdy * dy, axis=1)
            tl.atomic_add(gmeans_ptr + gid * 2, a * tl.sum(gdx, axis=1) + b * tl.sum(gdy, axis=1), mask=km)
            tl.atomic_add(gmeans_ptr + gid * 2 + 1, b * tl.sum(gdx, axis=1) + c * tl.sum(gdy, axis=1), mask=km)
            tl.atomic_add(gconic_ptr + gid * 3, -0.5 * sxx, mask=km)
            tl.atomic_add(gconic_ptr + gid * 3 + 1, -sxy, mask=km)
            tl.atomic_add(gconic_ptr + gid * 3 + 2, -0.5 * syy, mask=km)

    _kernels = (fwd_kernel, bwd_kernel)
    return _kernels


# ---------------------------------------------------------------- binning (swappable)

Binner = Callable[[torch.Tensor, torch.Tensor, int, int], tuple[torch.Tensor, torch.Tensor]]


def _bin_with(isect_tiles, isect_offset_encode, means: torch.Tensor, radii: torch.Tensor, tile_w: int,
              tile_h: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = means.shape[0]
    depths = torch.zeros(1, n, dtype=torch.float32, device=means.device)
    _, isect_ids, flatten_ids = isect_tiles(means.detach().contiguous()[None], radii.contiguous()[None], depths,
                                            TILE, tile_w, tile_h)
    offsets = isect_offset_encode(isect_ids, 1, tile_w, tile_h)
    return offsets.reshape(-1).to(torch.int32).contiguous(), flatten_ids.to(torch.int32).contiguous()


def bin_gsplat(means, radii, tile_w, tile_h):
    """gsplat CUDA binning. means [N, 2] f32, radii [N, 2] i32 -> (offsets [th*tw] i32, flatten_ids [M] i32)."""
    import gsplat  # lazy: gsplat is optional (its CUDA extension)

    return _bin_with(gsplat.isect_tiles, gsplat.isect_offset_encode, means, radii, tile_w, tile_h)


def bin_torch(means, radii, tile_w, tile_h):
    """Pure-torch binning (``binning.py``), same outputs as ``bin_gsplat``; runs on any device."""
    return _bin_with(binning.isect_tiles, binning.isect_offset_encode, means, radii, tile_w, tile_h)


BINNERS: dict[str, Binner] = {"gsplat": bin_gsplat, "torch": bin_torch}


# ---------------------------------------------------------------- autograd


class _TileRaster(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, conic, colors, offsets, flat, height, width):
        fwd, _ = _load_kernels()
        tile_w, tile_h = -(-width // TILE), -(-height // TILE)
        means_c, conic_c, colors_c = (t.detach().contiguous().float() for t in (means, conic, colors))
        out = torch.zeros(height, width, 3, dtype=torch.float32, device=means.device)
        if means.shape[0] and flat.shape[0]:
            fwd[(tile_w * tile_h,)](means_c, conic_c, colors_c, offsets, flat, flat.shape[0], tile_w * tile_h,
                                    tile_w, height, width, out, SMAX=SIGMA_MAX, T=TILE, BG=BLOCK_G)
        ctx.save_for_backward(means_c, conic_c, colors_c, offsets, flat)
        ctx.size = (height, width)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        _, bwd = _load_kernels()
        means, conic, colors, offsets, flat = ctx.saved_tensors
        height, width = ctx.size
        tile_w, tile_h = -(-width // TILE), -(-height // TILE)
        g_means, g_conic, g_colors = torch.zeros_like(means), torch.zeros_like(conic), torch.zeros_like(colors)
        if means.shape[0] and flat.shape[0]:
            bwd[(tile_w * tile_h,)](means, conic, colors, offsets, flat, flat.shape[0], tile_w * tile_h, tile_w,
                                    height, width, grad_out.contiguous().float(), g_means, g_conic, g_colors,
                                    SMAX=SIGMA_MAX, T=TILE, BG=BLOCK_G)
        return g_means, g_conic, g_colors, None, None, None, None


def rasterize(means: torch.Tensor, scales: torch.Tensor, rotations: torch.Tensor, colors: torch.Tensor,
              height: int, width: int, binning_name: str = "auto",
              max_pairs: int = binning.INT32_MAX) -> torch.Tensor:
    """Tile rasterizer with a chosen binning step (``auto``: gsplat on CUDA tensors, torch otherwise).

    Args:
        means: [N, 2] float32 px; scales: [N, 2] float32 px; rotations: [N] float32 rad; colors: [N, 3] float32.
        height, width: output size in pixels.
        binning_name: ``auto`` | ``gsplat`` | ``torch``.
        max_pairs: most Gaussian-tile pairs binned at once (gsplat's int32 limit); larger images are split
            into bands of tile rows.
    Returns:
        [height, width, 3] float32, differentiable w.r.t. all four inputs.
    """
    height, width = int(height), int(width)
    if binning_name == "auto":
        binning_name = "gsplat" if means.is_cuda else "torch"
    if binning_name not in BINNERS:
        raise ConfigError(f"unknown binning {binning_name!r}; choose one of auto, {', '.join(BINNERS)}")
    conic = conics(scales, rotations)
    radii = binning.tile_radii(scales, rotations)
    return _render_band(means, conic, colors, radii, 0, height, width, BINNERS[binning_name], max_pairs)


def _render_band(means, conic, colors, radii, y0, height, width, binner, max_pairs):
    """Rows [y0, y0 + height) of the image (y0 a multiple of TILE)."""
    tile_w, tile_h = -(-width // TILE), -(-height // TILE)
    shift = torch.tensor([0.0, float(y0)], dtype=means.dtype, device=means.device)
    local = means - shift if y0 else means
    pairs = binning.count_intersections(local.detach()[None], radii[None], TILE, tile_w, tile_h)
    if pairs > max_pairs:
        if tile_h <= 1:
            raise ConfigError(f"{pairs} Gaussian-tile pairs in one row of tiles exceed the limit of {max_pairs} "
                              "(gsplat's intersection ids are int32); use fewer or smaller Gaussians")
        top = (tile_h // 2) * TILE
        return torch.cat([_render_band(means, conic, colors, radii, y0, top, width, binner, max_pairs),
                          _render_band(means, conic, colors, radii, y0 + top, height - top, width, binner,
                                       max_pairs)], dim=0)
    if pairs == 0:  # nothing touches the band (or N = 0): skip the binning launch
        offsets = torch.zeros(tile_w * tile_h, dtype=torch.int32, device=means.device)
        flat = torch.zeros(0, dtype=torch.int32, device=means.device)
    else:
        offsets, flat = binner(local, radii, tile_w, tile_h)
    return _TileRaster.apply(local, conic, colors, offsets, flat, height, width)


def render_cuda(means: torch.Tensor, scales: torch.Tensor, rotations: torch.Tensor, colors: torch.Tensor,
                height: int, width: int) -> torch.Tensor:
    """Render N Gaussians by sum blending on the GPU (gsplat binning + Triton kernels).

    Args:
        means: [N, 2] float32 px; scales: [N, 2] float32 px, > 0; rotations: [N] float32 rad;
        colors: [N, 3] float32; CUDA tensors (CPU tensors work under ``TRITON_INTERPRET=1``, with torch binning).
        height, width: output size in pixels.
    Returns:
        [height, width, 3] float32, unclamped; differentiable w.r.t. all four inputs.
    """
    if not means.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise ConfigError("render backend 'cuda' needs CUDA tensors (or TRITON_INTERPRET=1 for testing on CPU)")
    return rasterize(means, scales, rotations, colors, height, width)


__all__ = ["render_cuda", "rasterize", "BINNERS", "bin_gsplat", "bin_torch", "TILE"]
