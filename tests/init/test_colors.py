import numpy as np
import pytest

from smartsplat_dist.init.colors import (coverage, median_grid_offsets, nearest_pixel_colors,
                                         normalize_by_coverage, weighted_median_colors)


def _brute_median(img, means, scales, grid=9):
    H, W = img.shape[:2]
    t = np.linspace(-1, 1, grid)
    out = np.empty((means.shape[0], 3), np.float32)
    for i, ((mx, my), s) in enumerate(zip(means, scales)):
        vals, wts = [], []
        for dy in t:
            for dx in t:
                if dx * dx + dy * dy <= 1 + 1e-12:
                    x = min(max(int(np.floor(mx + s * dx)), 0), W - 1)
                    y = min(max(int(np.floor(my + s * dy)), 0), H - 1)
                    vals.append(img[y, x].astype(np.float64))
                    wts.append(np.exp(-0.5 * (dx * dx + dy * dy)))
        vals, wts = np.array(vals), np.array(wts)
        for c in range(3):
            o = np.argsort(vals[:, c], kind="stable")
            cw = np.cumsum(wts[o])
            out[i, c] = vals[o, c][np.argmax(cw >= 0.5 * wts.sum())] / 255.0
    return out


def test_grid_offsets():
    off, w = median_grid_offsets(9)
    assert off.shape == (49, 2)  # (a/4)^2 + (b/4)^2 <= 1 for a, b in -4..4
    assert np.all((off ** 2).sum(1) <= 1 + 1e-12)
    np.testing.assert_allclose(w, np.exp(-0.5 * (off ** 2).sum(1)))


@pytest.mark.parametrize("grid", [5, 9])
def test_weighted_median_against_brute_force(grid):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    means = rng.random((400, 2)) * [40, 30]
    scales = rng.random(400) * 6 + 0.2
    got = weighted_median_colors(img, means, scales, grid)
    assert got.dtype == np.float32 and got.shape == (400, 3)
    np.testing.assert_array_equal(got, _brute_median(img, means, scales, grid))


def test_weighted_median_prefers_centre_side():
    # a disc mostly of value 200 with a minority of 10 -> median 200; flat image -> its value
    img = np.full((21, 21, 3), 200, np.uint8)
    img[:, :3] = 10
    got = weighted_median_colors(img, np.array([[10.5, 10.5]]), np.array([8.0]))
    assert np.all(got == np.float32(200 / 255))


def test_nearest_pixel_colors():
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    c = nearest_pixel_colors(img, np.array([[0.2, 0.9], [4.99, 3.5], [2.5, 1.0]]))
    np.testing.assert_array_equal(c * 255, img[[0, 3, 1], [0, 4, 2]].astype(np.float32))


def test_coverage_against_brute_force():
    rng = np.random.default_rng(2)
    means = rng.random((600, 2)) * [120, 80]
    scales = rng.random(600) * 5 + 0.3
    got = coverage(means, scales)
    d2 = ((means[:, None] - means[None]) ** 2).sum(-1)
    e = 0.5 * d2 / scales[None, :] ** 2
    want = np.maximum(np.where(e <= np.log(255.0), np.exp(-e), 0).sum(1), 1.0)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.all(got >= 1.0)
    colors = rng.random((600, 3)).astype(np.float32)
    np.testing.assert_allclose(normalize_by_coverage(colors, means, scales), colors / want[:, None], rtol=1e-6)


def test_coverage_isolated_points_is_one():
    means = np.array([[0.0, 0.0], [100.0, 0.0]])
    np.testing.assert_array_equal(coverage(means, np.array([1.0, 1.0])), [1.0, 1.0])
