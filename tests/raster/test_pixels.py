"""Gaussians to decoded uint8 pixels: strips, windows and the in-place conversion give the one-shot values."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from smartsplat_dist.model import Gaussians
from smartsplat_dist.raster import render
from smartsplat_dist.raster.pixels import render_uint8, render_window_uint8, to_uint8

from .render_helpers import random_gaussians


@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_strips_and_windows_equal_the_whole_render(backend):
    h, w = 70, 53
    g = Gaussians(*random_gaussians(300, h, w, seed=1))  # colours in [-0.5, 1.5]: both clamps are hit
    with torch.no_grad():
        whole = to_uint8(render(g, h, w, backend=backend))
    assert np.array_equal(render_uint8(g, h, w, backend), whole)
    assert np.array_equal(render_uint8(g, h, w, backend, strip_bytes=1), whole)  # 16-row strips, a partial one
    out = np.full((h, w, 3), 7, np.uint8)
    got = render_window_uint8(g, 11, 5, 30, 40, backend, out=out[5:45, 11:41])
    assert np.shares_memory(got, out)
    assert np.array_equal(out[5:45, 11:41], whole[5:45, 11:41]) and (out[:5] == 7).all()
    assert np.array_equal(render_window_uint8(g, 11, 5, 30, 40, backend), whole[5:45, 11:41])


def test_to_uint8_rounds_half_to_even_and_clamps():
    img = torch.tensor([[[-0.5, 0.0, 0.5 / 255], [1.5 / 255, 2.5 / 255, 1.0]], [[2.0, float("inf"), -float("inf")],
                                                                           [0.999, 0.5, 0.25]]])
    want = np.array([[[0, 0, 0], [2, 2, 255]], [[255, 255, 0], [255, 128, 64]]], np.uint8)
    assert np.array_equal(to_uint8(img), want)
