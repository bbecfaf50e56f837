import numpy as np
import pytest

from smartsplat_dist.init.tiles import samples_per_tile, tile_layout, tile_starts


def test_single_tile_is_whole_image_when_smaller_than_T():
    # N = 1: p = max(0, (H - T) / 2) = 0 and T_h = min(T, H) = H
    (t,) = tile_layout(500, 700, 1024)
    assert (t.y0, t.x0, t.h, t.w, t.index) == (0, 0, 500, 700, 0)
    (t,) = tile_layout(1024, 1024, 1024)
    assert (t.y0, t.x0, t.h, t.w) == (0, 0, 1024, 1024)


def test_multi_tile_hand_checked():
    # H = 2500: N = 3, stride (2500 - 1024) / 2 = 738; W = 2040: N = 2, stride 1016
    assert tile_starts(2500, 1024) == [0, 738, 1476]
    assert tile_starts(2040, 1024) == [0, 1016]
    # H = 1530: N = 2, stride 506 (tiles overlap by 518 rows)
    assert tile_starts(1530, 1024) == [0, 506]
    # W = 16320: N = 16, stride 15296 / 15 = 1019.73..., floored; last one clipped to W - T
    s = tile_starts(16320, 1024)
    assert len(s) == 16 and s[1] == 1019 and s[2] == 2039 and s[-1] == 16320 - 1024
    tiles = tile_layout(2500, 2040, 1024)
    assert len(tiles) == 6
    assert [(t.i, t.j, t.index) for t in tiles] == [(i, j, 2 * i + j) for i in range(3) for j in range(2)]
    assert all(t.h == 1024 and t.w == 1024 for t in tiles)


def test_clipped_sizes_with_small_tiles():
    # H = 20, T = 8: N = 3, stride 6 -> [0, 6, 12], sizes min(8, 20 - p) = 8
    assert tile_starts(20, 8) == [0, 6, 12]
    tiles = tile_layout(20, 9, 8)  # W = 9: N = 2, stride 1 -> [0, 1]
    assert [(t.y0, t.x0, t.h, t.w) for t in tiles[:2]] == [(0, 0, 8, 8), (0, 1, 8, 8)]


@pytest.mark.parametrize("h,w,t", [(37, 53, 8), (1530, 2040, 1024), (10840, 16320, 1024), (5, 7, 1024)])
def test_tiles_cover_image_and_stay_inside(h, w, t):
    tiles = tile_layout(h, w, t)
    rows = np.zeros(h, bool)
    cols = np.zeros(w, bool)
    for tile in tiles:
        assert 0 <= tile.y0 and tile.y0 + tile.h <= h and 0 <= tile.x0 and tile.x0 + tile.w <= w
        assert tile.h == min(t, h - tile.y0) and tile.w == min(t, w - tile.x0)
        rows[tile.y0:tile.y0 + tile.h] = True
        cols[tile.x0:tile.x0 + tile.w] = True
    assert rows.all() and cols.all()


def test_samples_per_tile_eq13():
    assert samples_per_tile(5, 4).tolist() == [2, 1, 1, 1]
    assert samples_per_tile(3, 4).tolist() == [1, 1, 1, 0]
    assert samples_per_tile(0, 3).tolist() == [0, 0, 0]
    for total in (0, 1, 7, 176, 530726):
        c = samples_per_tile(total, 176)
        assert c.sum() == total and c.max() - c.min() <= 1
        assert (np.diff(c) <= 0).all()  # the residual goes to the first tiles
