"""Relocation: the least-contributing Gaussians move to where the error is largest, N stays."""
from __future__ import annotations

import numpy as np
import torch

from smartsplat_dist.fitting import FitConfig, fit
from smartsplat_dist.fitting.optimize import loss_windows
from smartsplat_dist.fitting.relocate import block_size, contribution, plan, reset_adam_rows, victims
from smartsplat_dist.model import Gaussians
from smartsplat_dist.raster import get_backend

RENDER = get_backend("torch")


def _scene():
    """A 32x32 grey image with a bright 6x6 square at (22..27, 4..9) that no Gaussian covers; 12 Gaussians over
    the grey part, 3 of them (indices 2, 5, 9) nearly black."""
    h = w = 32
    image = np.full((h, w, 3), 100, np.uint8)
    image[4:10, 22:28] = 250
    gen = torch.Generator().manual_seed(1)
    means = torch.rand(12, 2, generator=gen) * torch.tensor([14.0, 30.0]) + torch.tensor([1.0, 1.0])
    scales = torch.full((12, 2), 3.0)
    colors = torch.full((12, 3), 0.3)
    colors[[2, 5, 9]] = 0.002
    return image, Gaussians(means, scales, torch.zeros(12), colors)


def test_victims_are_least_contributing():
    _, g = _scene()
    assert contribution(g).shape == (12,)
    assert sorted(victims(g, 3).tolist()) == [2, 5, 9]
    big = Gaussians(g.means, g.scales.clone(), g.rotations, g.colors)
    big.scales[5] = 40.0  # a faint but huge Gaussian adds a lot of colour mass: no longer a victim
    assert 5 not in victims(big, 3).tolist()


def test_plan_moves_victims_to_the_error():
    image, g = _scene()
    wins = loss_windows(torch.from_numpy(image), 0)
    idx, new = plan(g, wins, RENDER, 32, 32, fraction=0.25)
    assert sorted(idx.tolist()) == [2, 5, 9] and len(new) == 3
    b = block_size(32, 32, 12)
    # the best blocks are on the uncovered bright square (within a block of it), with bright colours
    x, y = new.means[:, 0], new.means[:, 1]
    on_square = (x > 22 - b) & (x < 28 + b) & (y > 4 - b) & (y < 10 + b)
    assert bool(on_square[:2].all()) and bool((new.colors[on_square] > 0.2).all())
    assert torch.allclose(new.scales, torch.full_like(new.scales, b / 2.0))


def test_relocation_in_fit_keeps_n_and_fits_better():
    image, g = _scene()
    cfg = FitConfig(steps=30, color_solve_iters=0, relocate_every=0, lr_schedule="constant")
    g_plain, s_plain = fit(g, image, cfg, backend="torch")
    g_reloc, s_reloc = fit(g, image, cfg.replace(relocate_every=10, relocate_fraction=0.25, relocate_until=0.5),
                           backend="torch")
    assert len(g_reloc) == len(g) == len(g_plain)
    moved = (g_reloc.means - g.means).norm(dim=1)
    assert int((moved[[2, 5, 9]] > 8.0).sum()) >= 2  # the faint ones went (towards) the bright square
    assert s_reloc["psnr"] > s_plain["psnr"] + 1.0


def test_reset_adam_rows_zeroes_only_those_rows():
    p = torch.ones(4, 2, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.1)
    p.grad = torch.ones(4, 2)
    opt.step()
    reset_adam_rows(opt, torch.tensor([1, 3]))
    st = opt.state[p]
    assert torch.equal(st["exp_avg"][[1, 3]], torch.zeros(2, 2)) and bool((st["exp_avg"][[0, 2]] != 0).all())
    assert torch.equal(st["exp_avg_sq"][[1, 3]], torch.zeros(2, 2))


def test_clamped_plan_ignores_error_the_clamp_hides():
    """Over-bright Gaussians on a white area: the raw residual there is large, the clamped one is 0."""
    image = np.full((32, 32, 3), 100, np.uint8)
    image[:12] = 255  # white band on top, covered by over-bright Gaussians
    image[22:28, 22:28] = 200  # an uncovered lighter square below
    means = torch.tensor([[4.0, 5.0], [12.0, 5.0], [20.0, 5.0], [28.0, 5.0], [8.0, 20.0], [4.0, 28.0]])
    scales = torch.full((6, 2), 4.0)
    colors = torch.full((6, 3), 2.5)
    colors[4:] = torch.tensor([0.39, 0.39, 0.39])
    colors[5] = 0.001  # the victim
    g = Gaussians(means, scales, torch.zeros(6), colors)
    wins = loss_windows(torch.from_numpy(image), 0)
    _, raw = plan(g, wins, RENDER, 32, 32, fraction=1 / 6, clamp=False)
    _, clamped = plan(g, wins, RENDER, 32, 32, fraction=1 / 6, clamp=True)
    assert float(raw.means[0, 1]) < 12 and float(raw.colors[0].mean()) < 0  # chases the hidden over-brightness
    assert float(clamped.means[0, 1]) > 16 and float(clamped.colors[0].mean()) > 0
