"""Tile binning in plain torch, a drop-in for ``gsplat.isect_tiles`` / ``gsplat.isect_offset_encode``.

Same argument conventions and outputs as gsplat (and as its pure-torch ``gsplat.cuda._torch_impl._isect_tiles``,
which it is tested against), but vectorised so that it is usable on CPU at real sizes:

* ``means2d: [I, N, 2]`` float32 pixels, ``radii: [I, N, 2]`` int32 pixels (a Gaussian with a radius <= 0 is
  skipped), ``depths: [I, N]`` float32; in this project ``I == 1`` (one image, a leading batch dim of 1).
* A Gaussian touches tiles ``floor((m - r) / T) <= t < ceil((m + r) / T)`` per axis, clipped to the grid.
* ``isect_ids: [M] int64 = image_id << (tile_bits + 32) | tile_id << 32 | bits(depth)`` with
  ``tile_id = ty * tile_width + tx`` and ``tile_bits = (tile_width * tile_height).bit_length()``;
  ``flatten_ids: [M] int32`` = ``image_id * N + gaussian_id``; sorted by ``isect_ids`` when ``sort``.
* ``isect_offset_encode -> [I, tile_height, tile_width] int32``: start of each tile's run in the sorted ids.

Also ``tile_radii`` (the int32 radii every backend bins with) and ``count_intersections`` (int64, used to guard
gsplat's int32 limit before calling it).
"""
from __future__ import annotations

import math

import torch

from .footprint import bbox_half_extent

#: gsplat stores intersection offsets and flatten ids as int32.
INT32_MAX = 2**31 - 1
#: Radii are clamped to this many pixels so that they fit int32 with room for the tile arithmetic.
MAX_RADIUS = 2**30


def tile_radii(scales: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Integer 3.33-sigma bounding-box half extents, rounded up (conservative), for binning.

    Args:
        scales: [N, 2] float pixels; rotations: [N] float radians.
    Returns:
        [N, 2] int32 in [1, MAX_RADIUS]; 0 where the extent is not finite (such a Gaussian is skipped).
    """
    ext = bbox_half_extent(scales.detach(), rotations.detach()).double()
    r = torch.ceil(ext * (1.0 + 1e-6) + 1e-3).clamp(1.0, float(MAX_RADIUS))
    r = torch.where(torch.isfinite(ext), r, torch.zeros_like(r))
    return r.to(torch.int32)


def _tile_ranges(means2d: torch.Tensor, radii: torch.Tensor, tile_size: int, tile_width: int,
                 tile_height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-Gaussian tile range [min, max) clipped to the grid; both [I, N, 2] int64 (x, y)."""
    tile_means = means2d / tile_size
    tile_r = radii / tile_size
    mins = torch.floor(tile_means - tile_r).int().long()
    maxs = torch.ceil(tile_means + tile_r).int().long()
    lim = torch.tensor([tile_width, tile_height], device=means2d.device)
    mins = torch.minimum(torch.clamp(mins, min=0), lim)
    maxs = torch.minimum(torch.clamp(maxs, min=0), lim)
    return mins, maxs


def count_intersections(means2d: torch.Tensor, radii: torch.Tensor, tile_size: int, tile_width: int,
                        tile_height: int) -> int:
    """Number of Gaussian-tile pairs ``isect_tiles`` would produce (computed in int64, never overflows)."""
    mins, maxs = _tile_ranges(means2d, radii, tile_size, tile_width, tile_height)
    per = (maxs - mins).prod(dim=-1) * (radii > 0).all(dim=-1)
    return int(per.sum().item())


@torch.no_grad()
def isect_tiles(means2d: torch.Tensor, radii: torch.Tensor, depths: torch.Tensor, tile_size: int,
                tile_width: int, tile_height: int, sort: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Map Gaussians to the tiles they touch (gsplat ``isect_tiles`` semantics).

    Args:
        means2d: [I, N, 2] float32 pixels; radii: [I, N, 2] int32; depths: [I, N] float32.
        tile_size: tile side in pixels; tile_width, tile_height: grid size in tiles.
        sort: sort the pairs by ``isect_ids`` (stable: ties keep Gaussian order).
    Returns:
        tiles_per_gauss [I, N] int32, isect_ids [M] int64, flatten_ids [M] int32.
    """
    image_dims = means2d.shape[:-2]
    n = means2d.shape[-2]
    n_images = math.prod(image_dims)
    device = means2d.device
    means2d = means2d.reshape(n_images, n, 2)
    radii = radii.reshape(n_images, n, 2)
    depths = depths.reshape(n_images, n)
    tile_bits = (tile_width * tile_height).bit_length()
    if n_images.bit_length() + tile_bits + 32 > 64:
        raise ValueError("too many images x tiles to encode intersection ids in 64 bits")

    mins, maxs = _tile_ranges(means2d, radii, tile_size, tile_width, tile_height)
    span = maxs - mins  # [I, N, 2]
    per = span.prod(dim=-1) * (radii > 0).all(dim=-1)  # [I, N] int64
    flat_per = per.flatten()
    total = int(flat_per.sum().item())
    if total > INT32_MAX:
        raise ValueError(f"{total} Gaussian-tile pairs exceed the int32 limit of {INT32_MAX}")

    src = torch.repeat_interleave(torch.arange(n_images * n, device=device), flat_per)  # [M] flat index
    starts = torch.cumsum(flat_per, 0) - flat_per
    k = torch.arange(total, device=device) - starts[src]  # index of the pair within its Gaussian
    span_x = span.reshape(-1, 2)[src, 0]
    tx = mins.reshape(-1, 2)[src, 0] + k % span_x.clamp(min=1)
    ty = mins.reshape(-1, 2)[src, 1] + k // span_x.clamp(min=1)
    image_id = src // n
    tile_id = ty * tile_width + tx
    depth_bits = depths.reshape(-1).contiguous().view(torch.int32)[src].long() & 0xFFFFFFFF
    isect_ids = (((image_id << tile_bits) | tile_id) << 32) | depth_bits
    flatten_ids = src.to(torch.int32)
    if sort:
        isect_ids, order = torch.sort(isect_ids, stable=True)
        flatten_ids = flatten_ids[order]
    return per.reshape(image_dims + (n,)).int(), isect_ids, flatten_ids


@torch.no_grad()
def isect_offset_encode(isect_ids: torch.Tensor, n_images: int, tile_width: int, tile_height: int) -> torch.Tensor:
    """Start offset of each tile's run of (sorted) intersection ids.

    Args:
        isect_ids: [M] int64, sorted. n_images, tile_width, tile_height: grid.
    Returns:
        [n_images, tile_height, tile_width] int32; a tile's pairs are ``offsets[t] : offsets[t + 1]``
        (the last tile's run ends at M).
    """
    tile_bits = (tile_width * tile_height).bit_length()
    key = isect_ids >> 32
    image_ids = key >> tile_bits
    tile_ids = key & ((1 << tile_bits) - 1)
    flat = image_ids * (tile_width * tile_height) + tile_ids
    counts = torch.bincount(flat, minlength=n_images * tile_width * tile_height)
    offsets = torch.cumsum(counts, 0) - counts
    return offsets.reshape(n_images, tile_height, tile_width).int()


__all__ = ["isect_tiles", "isect_offset_encode", "tile_radii", "count_intersections", "INT32_MAX"]
