"""The raster benchmark's building blocks on tiny inputs (the benchmark itself is run by hand)."""
from __future__ import annotations

import numpy as np
import torch

from smartsplat_dist.bench import raster
from smartsplat_dist.raster import render


def test_decode_in_strips_equals_whole_frame():
    h, w = 70, 45
    g = raster.synthetic_gaussians(300, h, w, seed=3)
    want = (render(g, h, w, backend="cpu").clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    got = np.zeros_like(want)
    seen = []

    def sink(y0, pix):
        seen.append((y0, pix.shape[0]))
        got[y0:y0 + pix.shape[0]] = pix

    d = raster.decode16k(g, h, w, strip_rows=16, backend="cpu", sink=sink)
    assert seen == [(0, 16), (16, 16), (32, 16), (48, 16), (64, 6)]
    assert np.array_equal(got, want) and d["checksum"] == int(want.sum())
    assert d["strips"] == 5 and d["megapixels_per_s"] > 0 and d["n_gaussians"] == 300


def test_raster_table_rows():
    rows = raster.raster_table([(32, 40, 50)], ["torch", "cpu"], iters=1)
    assert [r["backend"] for r in rows] == ["torch", "cpu"]
    assert rows[1]["x_vs_torch"] > 0 and rows[0]["fwd_ms"] > 0 and rows[1]["size"] == "40x32"
