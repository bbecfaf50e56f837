import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from smartsplat_dist.init import InitConfig, smart_points
from smartsplat_dist.init.importance import base_scale, importance_samples, sample_without_replacement
from smartsplat_dist.init.tiles import samples_per_tile, tile_layout
from smartsplat_dist.init.uniform import exclusion_samples, knn_scales


def test_sample_without_replacement_distinct_and_positive():
    rng = np.random.default_rng(0)
    w = rng.random(1000) ** 4
    w[::3] = 0
    idx = sample_without_replacement(w.copy(), 300, rng)
    assert idx.shape == (300,) and np.unique(idx).size == 300
    assert np.all(w[idx] > 0)


def test_sample_without_replacement_follows_weights():
    # two groups: weight 9 vs 1 per item; drawing 50 of 2000 should take ~90% from the heavy group
    w = np.ones(2000)
    w[:1000] = 9.0
    idx = sample_without_replacement(w.copy(), 50, np.random.default_rng(1))
    assert (idx < 1000).mean() > 0.75


def test_sample_without_replacement_few_positive_and_flat():
    w = np.zeros(50)
    w[[3, 17]] = [1.0, 2.0]
    idx = sample_without_replacement(w.copy(), 5, np.random.default_rng(0))
    assert {3, 17} <= set(idx.tolist()) and np.unique(idx).size == 5
    idx = sample_without_replacement(np.zeros(10), 10, np.random.default_rng(0))
    assert sorted(idx.tolist()) == list(range(10))
    with pytest.raises(ValueError):
        sample_without_replacement(np.ones(3), 4, np.random.default_rng(0))


def test_samples_per_tile_counts_match_eq13():
    # 32x40 with T = 8 tiles exactly (no overlaps, so no duplicates): 4 x 5 = 20 tiles
    img = np.random.default_rng(5).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    tiles = tile_layout(32, 40, 8)
    for n in (7, 20, 53, 300):
        means, scales, _ = importance_samples(img, n, 1.0, tile_size=8, seed=1)
        assert means.shape == (n, 2)
        x, y = means[:, 0] - 0.5, means[:, 1] - 0.5
        assert np.all(x == np.floor(x)) and np.all(y == np.floor(y))  # pixel centres
        got = [int(np.sum((x >= t.x0) & (x < t.x0 + t.w) & (y >= t.y0) & (y < t.y0 + t.h))) for t in tiles]
        assert got == samples_per_tile(n, 20).tolist()


@pytest.mark.parametrize("n", [1, 3, 19, 20, 21, 141, 1000])
def test_total_is_exactly_n(n):
    img = np.random.default_rng(6).integers(0, 256, (30, 40, 3), dtype=np.uint8)  # 4 x 5 = 20 tiles of 8
    pts = smart_points(img, n, InitConfig(tile_size=8), seed=0)
    assert pts["means"].shape == (n, 2) and pts["scales"].shape == (n,) and pts["colors"].shape == (n, 3)
    n_imp = int(pts["is_importance"].sum())
    assert n_imp <= math.floor(0.7 * n)
    if n <= 141:  # tiles are not saturated: every importance sample is distinct across tile overlaps
        assert n_imp >= math.floor(0.7 * n) - 5


def test_importance_points_concentrate_on_edges():
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, 32:] = 255  # a vertical edge between columns 31 and 32
    pts = smart_points(img, 200, InitConfig(), seed=0)
    imp = pts["means"][pts["is_importance"]]
    assert imp.shape[0] == 140
    # features are non-zero only within 2 pixels of the edge (Sobel 1, variance window 2)
    assert np.all((imp[:, 0] >= 29.5) & (imp[:, 0] <= 34.5))
    uni = pts["means"][~pts["is_importance"]]
    assert uni[:, 0].min() < 16 and uni[:, 0].max() > 48  # the uniform points cover the flat halves


def test_base_scale_and_importance_scales(photo):
    H, W = photo.shape[:2]
    n = 900
    s_base = base_scale(H, W, n)
    assert s_base == pytest.approx(math.sqrt(H * W / (math.pi * n)) / 3)
    pts = smart_points(photo, n, InitConfig(), seed=0)
    imp = pts["is_importance"]
    s = pts["scales"][imp]
    np.testing.assert_allclose(s, s_base * np.exp(-0.5 * pts["weights"].astype(np.float64)), rtol=1e-6)
    assert np.all(s <= s_base * (1 + 1e-9)) and np.all(s >= s_base * math.exp(-0.5) * (1 - 1e-9))
    assert float(pts["radius"]) == pytest.approx(max(s_base, float(np.median(s))))
    assert np.all(pts["scales"][~imp] > 0)


def test_exclusion_radius_respected(photo):
    H, W = photo.shape[:2]
    pts = smart_points(photo, 1200, InitConfig(), seed=2)
    assert int(pts["n_filled"]) == 0
    r = float(pts["radius"])
    imp = pts["means"][pts["is_importance"]]
    uni = pts["means"][~pts["is_importance"]]
    assert uni.shape[0] >= 1200 - 840
    assert cdist(uni, imp).min() > r
    d = cdist(uni, uni)
    np.fill_diagonal(d, np.inf)
    assert d.min() > r
    assert np.all((uni >= 0) & (uni < [W, H]))


def test_exclusion_fill_when_saturated():
    rng = np.random.default_rng(0)
    pts, filled = exclusion_samples(np.zeros((0, 2)), 50, 4, 4, radius=3.0, rng=rng, max_rounds=3)
    assert pts.shape == (50, 2) and filled > 0
    assert np.all((pts >= 0) & (pts < 4))


@pytest.mark.parametrize("includes_self", [True, False])
def test_knn_scales_against_brute_force(includes_self):
    rng = np.random.default_rng(7)
    pts = rng.random((300, 2)) * 100
    q = pts[::7]
    got = knn_scales(pts, q, k=3, includes_self=includes_self)
    d = np.sort(cdist(q, pts), axis=1)  # column 0 is the point itself (distance 0)
    near = d[:, :3] if includes_self else d[:, 1:4]
    np.testing.assert_allclose(got, np.sqrt((near ** 2).mean(axis=1)), rtol=1e-10)


def test_knn_scales_few_points():
    one = np.array([[1.0, 2.0]])
    assert knn_scales(one, one, 3, True, fallback=2.5).tolist() == [2.5]
    assert knn_scales(one, one, 3, False, fallback=2.5).tolist() == [2.5]
    two = np.array([[0.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(knn_scales(two, two, 3, False), [5.0, 5.0])
    np.testing.assert_allclose(knn_scales(two, two, 3, True), [5.0 / math.sqrt(2)] * 2)
