"""The colour solve: CG on the linear least-squares problem reaches the dense solution."""
from __future__ import annotations

import numpy as np
import torch

from smartsplat_dist.fitting import FitConfig, fit
from smartsplat_dist.fitting.colors import solve_colors
from smartsplat_dist.fitting.optimize import loss_windows
from smartsplat_dist.model import Gaussians
from smartsplat_dist.raster import get_backend, render

from .test_fit import _gaussians, _image

RENDER = get_backend("torch")


def _dense_lstsq(g: Gaussians, image: np.ndarray) -> torch.Tensor:
    h, w = image.shape[:2]
    n = len(g)
    cols = []
    for i in range(n):
        c = torch.zeros(n, 3)
        c[i] = 1.0
        cols.append(render(Gaussians(g.means, g.scales, g.rotations, c), h, w, "torch")[..., 0].reshape(-1))
    a = torch.stack(cols, dim=1).double()  # [HW, N]
    t = torch.from_numpy(image).double().reshape(-1, 3) / 255.0
    return torch.linalg.lstsq(a, t).solution.float()


def test_solve_matches_dense_least_squares():
    image = _image(24, 24)
    g = _gaussians(10, 24, 24, seed=3)
    wins = loss_windows(torch.from_numpy(image), 0)
    exact = _dense_lstsq(g, image)
    colors = solve_colors(g, wins, RENDER, iters=30)
    assert torch.allclose(colors, exact, atol=2e-3)
    # two iterations already remove most of the reducible squared error; 0 iterations change nothing
    t = torch.from_numpy(image).float() / 255.0
    err = lambda c: float(((render(Gaussians(g.means, g.scales, g.rotations, c), 24, 24, "torch") - t) ** 2).sum())  # noqa: E731
    best = err(exact)
    assert err(solve_colors(g, wins, RENDER, iters=2)) - best < 0.5 * (err(g.colors) - best)
    assert torch.equal(solve_colors(g, wins, RENDER, iters=0), g.colors)


def test_windowed_solve_equals_whole():
    image = _image(30, 30)
    g = _gaussians(12, 30, 30, seed=4)
    a = solve_colors(g, loss_windows(torch.from_numpy(image), 0), RENDER, iters=5)
    b = solve_colors(g, loss_windows(torch.from_numpy(image), 16), RENDER, iters=5)
    assert torch.allclose(a, b, atol=1e-4)


def test_fit_with_solve_starts_better_and_zero_steps_is_identity():
    image = _image(24, 24)
    g0 = _gaussians(10, 24, 24, seed=5)
    seen = {}
    base = FitConfig(steps=1, log_every=1, relocate_every=0, color_warmup_steps=0, lr_schedule="constant")
    fit(g0, image, base.replace(color_solve_iters=0), backend="torch", progress=lambda s, d: seen.update(a=d["psnr"]))
    fit(g0, image, base.replace(color_solve_iters=10), backend="torch", progress=lambda s, d: seen.update(b=d["psnr"]))
    assert seen["b"] > seen["a"] + 1.0
    g, _ = fit(g0, image, base.replace(steps=0, color_solve_iters=10), backend="torch")
    assert torch.equal(g.colors, g0.colors)
