"""``render()`` dispatch: auto, explicit names, errors."""
from __future__ import annotations

import pytest
import torch

from smartsplat_dist.errors import ConfigError
from smartsplat_dist.model import Gaussians
from smartsplat_dist.raster import get_backend, render, resolve_backend
from smartsplat_dist.raster.cpu_backend import render_cpu
from smartsplat_dist.raster.torch_backend import render_torch
from tests.raster.render_helpers import random_gaussians


def test_auto_and_named_backends_agree():
    g = Gaussians(*random_gaussians(80, 20, 27, seed=7))
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_backend("auto") == want
    if want == "cpu":
        assert get_backend("auto") is render_cpu
    assert get_backend("torch") is render_torch
    ref = render(g, 20, 27, backend="torch")
    for name in ("auto", "cpu"):
        torch.testing.assert_close(render(g, 20, 27, backend=name).cpu(), ref, rtol=1e-4, atol=1e-5)


def test_window_of_a_larger_image():
    g = Gaussians(*random_gaussians(150, 40, 50, seed=8))
    full = render(g, 40, 50, backend="cpu")
    torch.testing.assert_close(render(g.shifted(13, 21), 11, 17, backend="cpu"), full[21:32, 13:30])


def test_errors():
    g = Gaussians.empty()
    with pytest.raises(ConfigError, match="unknown render backend"):
        render(g, 4, 4, backend="opengl")
    with pytest.raises(ConfigError, match="size"):
        render(g, 0, 4, backend="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            render(g, 4, 4, backend="cuda")
