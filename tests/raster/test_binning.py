"""Our torch tile binning against gsplat's own pure-torch implementation (runs on CPU)."""
from __future__ import annotations

import pytest
import torch

from smartsplat_dist.raster import binning
from smartsplat_dist.raster.footprint import bbox_half_extent

_impl = pytest.importorskip("gsplat.cuda._torch_impl")

TILE = 16


def _case(n, h, w, seed, max_r=40):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(1, n, 2, generator=g) * torch.tensor([w + 60.0, h + 60.0]) - 30.0)
    radii = torch.randint(-2, max_r, (1, n, 2), generator=g, dtype=torch.int32)  # some <= 0: skipped
    return means, radii, -(-w // TILE), -(-h // TILE)


@pytest.mark.parametrize("n,h,w,seed", [(80, 37, 40, 0), (200, 100, 130, 1), (1, 16, 16, 2), (0, 20, 20, 3)])
def test_isect_tiles_matches_gsplat_reference(n, h, w, seed):
    means, radii, tw, th = _case(n, h, w, seed)
    depths = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).float()[None] + 1.0  # no ties
    want = _impl._isect_tiles(means, radii, depths, TILE, tw, th)
    got = binning.isect_tiles(means, radii, depths, TILE, tw, th)
    for name, a, b in zip(("tiles_per_gauss", "isect_ids", "flatten_ids"), got, want):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert torch.equal(a, b), name
    off_want = _impl._isect_offset_encode(want[1], 1, tw, th)
    off_got = binning.isect_offset_encode(got[1], 1, tw, th)
    assert off_got.dtype == off_want.dtype == torch.int32 and off_got.shape == (1, th, tw)
    assert torch.equal(off_got, off_want)


def test_zero_depths_same_pairs_per_tile():
    means, radii, tw, th = _case(150, 50, 61, 4)
    depths = torch.zeros(1, 150)
    want = _impl._isect_tiles(means, radii, depths, TILE, tw, th)
    got = binning.isect_tiles(means, radii, depths, TILE, tw, th)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    pairs = lambda r: sorted(zip((r[1] >> 32).tolist(), r[2].tolist()))  # noqa: E731
    assert pairs(got) == pairs(want)
    # stable sort: within a tile the Gaussians keep their order
    key = got[1] >> 32
    same = key[1:] == key[:-1]
    assert bool((got[2][1:][same] > got[2][:-1][same]).all())


def test_unsorted_and_count():
    means, radii, tw, th = _case(60, 40, 40, 5)
    depths = torch.arange(60.0)[None]
    got = binning.isect_tiles(means, radii, depths, TILE, tw, th, sort=False)
    want = _impl._isect_tiles(means, radii, depths, TILE, tw, th, sort=False)
    assert torch.equal(got[1], want[1]) and torch.equal(got[2], want[2])
    assert binning.count_intersections(means, radii, TILE, tw, th) == got[1].numel()


def test_tile_radii_conservative_int32():
    g = torch.Generator().manual_seed(6)
    scales = torch.exp(torch.randn(500, 2, generator=g) * 2)
    scales[0] = torch.tensor([1e-3, 1e-3])
    rot = torch.rand(500, generator=g) * 20 - 10
    r = binning.tile_radii(scales, rot)
    assert r.dtype == torch.int32 and r.shape == (500, 2)
    ext = bbox_half_extent(scales, rot)
    assert bool((r.float() >= ext).all()) and bool((r >= 1).all())
    assert bool((r.float() <= ext + 1.01).all())
    assert binning.tile_radii(torch.tensor([[float("inf"), 1.0]]), torch.zeros(1))[0, 0] == 0


def test_int32_limit_raises():
    # two Gaussians covering a grid of ~2^31 tiles: ~2^32 pairs, refused before anything is allocated
    means = torch.full((1, 2, 2), 2.0**19)
    radii = torch.full((1, 2, 2), 2**24, dtype=torch.int32)
    tw, th = 2**16, 2**15 - 1
    assert binning.count_intersections(means, radii, TILE, tw, th) == 2 * tw * th > binning.INT32_MAX
    with pytest.raises(ValueError, match="int32"):
        binning.isect_tiles(means, radii, torch.zeros(1, 2), TILE, tw, th)
