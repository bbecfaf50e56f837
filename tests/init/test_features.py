import numpy as np
import pytest
from scipy import ndimage

from smartsplat_dist.init.features import tile_features, tile_weights
from smartsplat_dist.init.tiles import Tile, tile_layout


def _reference(img: np.ndarray, window: int = 5):
    f = img.astype(np.float64) / 255.0
    gx = ndimage.correlate1d(ndimage.correlate1d(f, [-1, 0, 1], axis=1, mode="reflect"), [1, 2, 1], axis=0, mode="reflect")
    gy = ndimage.correlate1d(ndimage.correlate1d(f, [-1, 0, 1], axis=0, mode="reflect"), [1, 2, 1], axis=1, mode="reflect")
    m = np.sqrt(gx * gx + gy * gy).mean(axis=2)
    mu = ndimage.uniform_filter(f, (window, window, 1), mode="reflect")
    mu2 = ndimage.uniform_filter(f * f, (window, window, 1), mode="reflect")
    return m, (mu2 - mu * mu).mean(axis=2)


@pytest.mark.parametrize("window", [3, 5, 7])
def test_tile_features_equal_whole_image_features(window):
    img = np.random.default_rng(3).integers(0, 256, (45, 61, 3), dtype=np.uint8)
    m_ref, v_ref = _reference(img, window)
    for tile in tile_layout(45, 61, 16) + [Tile(0, 0, 0, 0, 0, 45, 61)]:
        m, v = tile_features(img, tile, window)
        assert m.dtype == np.float32 and m.shape == (tile.h, tile.w)
        sl = (slice(tile.y0, tile.y0 + tile.h), slice(tile.x0, tile.x0 + tile.w))
        np.testing.assert_allclose(m, m_ref[sl], atol=1e-5)
        np.testing.assert_allclose(v, v_ref[sl], atol=1e-6)


def test_weights_normalised_per_tile():
    img = np.random.default_rng(4).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    tile = Tile(0, 0, 0, 8, 8, 20, 24)
    m, v = tile_features(img, tile)
    w = tile_weights(img, tile, lambda_m=0.9, epsilon=1e-8)
    np.testing.assert_allclose(w, 0.9 * m / (m.max() + 1e-8) + 0.1 * v / (v.max() + 1e-8), rtol=1e-5, atol=1e-7)
    assert 0 <= w.min() and w.max() <= 1.0 + 1e-6


def test_flat_and_tiny_tiles():
    flat = np.full((10, 12, 3), 77, np.uint8)
    w = tile_weights(flat, Tile(0, 0, 0, 0, 0, 10, 12))
    assert np.all(w == 0)
    one = np.full((1, 1, 3), 5, np.uint8)
    m, v = tile_features(one, Tile(0, 0, 0, 0, 0, 1, 1))
    assert m.shape == (1, 1) and m[0, 0] == 0 and v[0, 0] == 0
