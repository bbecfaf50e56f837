import math

import numpy as np
import pytest
import torch

from smartsplat_dist.errors import ConfigError, ImageError
from smartsplat_dist.init import InitConfig, initialize
from smartsplat_dist.init.importance import base_scale
from smartsplat_dist.model import n_gaussians_for_cr


def _check(g, n, H, W):
    assert len(g) == n
    for t, shape in zip(g.tensors(), [(n, 2), (n, 2), (n,), (n, 3)]):
        assert t.dtype == torch.float32 and tuple(t.shape) == shape and t.device.type == "cpu"
        assert torch.isfinite(t).all()
    assert torch.all(g.rotations == 0)
    assert torch.all(g.scales > 0) and torch.equal(g.scales[:, 0], g.scales[:, 1])
    assert torch.all((g.colors >= 0) & (g.colors <= 1))
    assert torch.all(g.means >= 0) and torch.all(g.means[:, 0] <= W) and torch.all(g.means[:, 1] <= H)


@pytest.mark.parametrize("method", ["smart", "random"])
def test_photo_shapes_and_determinism(photo, method):
    H, W = photo.shape[:2]
    n = n_gaussians_for_cr(H, W, 50)
    cfg = InitConfig(method=method)
    a = initialize(photo, n, cfg, seed=3)
    _check(a, n, H, W)
    b = initialize(photo, n, cfg, seed=3)
    for x, y in zip(a.tensors(), b.tensors()):
        assert torch.equal(x, y)
    c = initialize(photo, n, cfg, seed=4)
    assert not torch.equal(a.means, c.means)


def test_weights_cache_gives_the_same_gaussians_for_any_n(photo, monkeypatch):
    """Budget mode initialises twice: the second call reads the tile weights the first one kept."""
    from smartsplat_dist.init import TileWeightsCache, importance

    H, W = photo.shape[:2]
    cfg = InitConfig(tile_size=128)  # several tiles
    ns = (n_gaussians_for_cr(H, W, 50), n_gaussians_for_cr(H, W, 40))
    plain = [initialize(photo, n, cfg, seed=1) for n in ns]
    cache = TileWeightsCache()
    for n, want in zip(ns, plain):
        for x, y in zip(initialize(photo, n, cfg, seed=1, weights_cache=cache).tensors(), want.tensors()):
            assert torch.equal(x, y)
        monkeypatch.setattr(importance, "tile_weights", None)  # later calls must not compute weights
    assert len(cache) > 1 and cache._buffer.dtype == np.float32  # noqa: SLF001  (one buffer for all tiles)


def test_smart_importance_means_are_pixel_centres(photo):
    g = initialize(photo, 500, InitConfig(), seed=0)
    m = g.means[: int(math.floor(0.7 * 500))].double()
    assert torch.all((m - 0.5) == torch.floor(m - 0.5))


def test_random_init(photo):
    H, W = photo.shape[:2]
    n = 700
    g = initialize(photo, n, InitConfig(method="random", color_normalization="none"), seed=1)
    _check(g, n, H, W)
    np.testing.assert_allclose(g.scales.numpy(), base_scale(H, W, n), rtol=1e-6)
    m = g.means.double().numpy()
    px = np.clip(np.floor(m[:, 0]), 0, W - 1).astype(int)
    py = np.clip(np.floor(m[:, 1]), 0, H - 1).astype(int)
    np.testing.assert_allclose(g.colors.numpy(), photo[py, px] / 255.0, atol=1e-6)
    # spread over the whole image
    assert m[:, 0].min() < 0.1 * W and m[:, 0].max() > 0.9 * W
    big = initialize(photo, n, InitConfig(method="random", random_scale_factor=2.0), seed=1)
    np.testing.assert_allclose(big.scales.numpy(), 2.0 * base_scale(H, W, n), rtol=1e-6)
    assert torch.equal(big.means, g.means)


def test_coverage_normalisation_only_darkens(photo):
    raw = initialize(photo, 800, InitConfig(color_normalization="none"), seed=0)
    cov = initialize(photo, 800, InitConfig(color_normalization="coverage"), seed=0)
    assert torch.equal(raw.means, cov.means) and torch.equal(raw.scales, cov.scales)
    assert torch.all(cov.colors <= raw.colors + 1e-7) and cov.colors.sum() < raw.colors.sum()


@pytest.mark.parametrize("method", ["smart", "random"])
@pytest.mark.parametrize("shape,n", [((5, 7), 1), ((5, 7), 2), ((5, 7), 35), ((5, 7), 100), ((1, 1), 1),
                                     ((1, 1), 3), ((2, 3), 4), ((3, 200), 50)])
def test_tiny_images_do_not_crash(method, shape, n):
    img = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    _check(initialize(img, n, InitConfig(method=method)), n, *shape)


def test_flat_image():
    img = np.full((48, 64, 3), 128, np.uint8)
    g = initialize(img, 200, InitConfig(color_normalization="none"))
    _check(g, 200, 48, 64)
    np.testing.assert_allclose(g.colors.numpy(), 128 / 255.0, atol=1e-6)


def test_grayscale_like_image(photo):
    gray = np.repeat(photo.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    g = initialize(gray, 300, InitConfig(color_normalization="none"))
    assert torch.equal(g.colors[:, 0], g.colors[:, 1]) and torch.equal(g.colors[:, 1], g.colors[:, 2])


def test_bad_inputs():
    with pytest.raises(ImageError):
        initialize(np.zeros((4, 4, 3), np.float32), 3)
    with pytest.raises(ImageError):
        initialize(np.zeros((4, 4), np.uint8), 3)
    with pytest.raises(ImageError):
        initialize(np.zeros((4, 4, 3), np.uint8), 0)


@pytest.mark.parametrize("kwargs", [{"method": "grid"}, {"lambda_m": 1.5}, {"lambda_g": -0.1},
                                    {"variance_window": 4}, {"median_grid": 2}, {"tile_size": 0},
                                    {"k_neighbors": 0}, {"color_normalization": "max"},
                                    {"knn_includes_self": 1}, {"epsilon": 0.0}, {"random_scale_factor": 0.0},
                                    {"variance_window": 17}])
def test_config_validation(kwargs):
    with pytest.raises(ConfigError):
        InitConfig(**kwargs)


def test_config_round_trip():
    cfg = InitConfig(method="random", tile_size=512)
    assert InitConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError):
        InitConfig.from_dict({"nope": 1})


def test_independent_of_thread_count(photo):
    import numba

    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = initialize(photo, 900, InitConfig(tile_size=128), seed=5)
        numba.set_num_threads(max(2, before))
        b = initialize(photo, 900, InitConfig(tile_size=128), seed=5)
    finally:
        numba.set_num_threads(before)
    for x, y in zip(a.tensors(), b.tensors()):
        assert torch.equal(x, y)
