"""Run as ``TRITON_INTERPRET=1 python -m tests.raster.triton_check``: the Triton kernels of the cuda backend on
CPU (interpreter) against the torch reference. Exits non-zero with a message on the first mismatch.

A separate process because TRITON_INTERPRET must be set before triton is imported.
"""
from __future__ import annotations

import os
import sys

import torch


def main() -> int:
    if os.environ.get("TRITON_INTERPRET") != "1":
        print("set TRITON_INTERPRET=1", file=sys.stderr)
        return 2
    from smartsplat_dist.errors import ConfigError
    from smartsplat_dist.raster import cuda_backend
    from smartsplat_dist.raster.torch_backend import render_torch
    from tests.raster.render_helpers import assert_close_rel, grads, random_gaussians

    cases = [(50, 37, 40, 0, 0), (30, 16, 16, 1, 0), (25, 21, 35, 2, 25)]
    for n, h, w, seed, n_thin in cases:
        p = random_gaussians(n, h, w, seed=seed, border=8.0, n_thin=n_thin)
        go = torch.randn(h, w, 3, generator=torch.Generator().manual_seed(seed))
        ref, ref_g = grads(render_torch, p, h, w, go)
        out, out_g = grads(cuda_backend.render_cuda, p, h, w, go)
        assert out.shape == (h, w, 3) and out.dtype == torch.float32
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5, msg=lambda m: f"case {n},{h},{w}: {m}")
        names = ("means", "scales", "rotations", "colors")
        for name, a, b in zip(names, out_g, ref_g):
            if n_thin and name in ("scales", "rotations"):  # ill-conditioned in float32: finite is all we ask
                assert torch.isfinite(a).all(), name
                continue
            assert_close_rel(a, b, 1e-3 if n_thin else 1e-4, f"case {n},{h},{w} {name}")

    # band splitting under a (tiny) pair limit gives the same image and gradients
    n, h, w = 60, 40, 37
    p = random_gaussians(n, h, w, seed=3, border=8.0)
    go = torch.randn(h, w, 3, generator=torch.Generator().manual_seed(3))
    ref, ref_g = grads(render_torch, p, h, w, go)
    from smartsplat_dist.raster import binning

    radii = binning.tile_radii(p[1], p[2])
    total = binning.count_intersections(p[0][None], radii[None], 16, 3, 3)
    assert total > 100, total  # so that the limit below forces a split
    split = lambda *a: cuda_backend.rasterize(*a, binning_name="torch", max_pairs=100)  # noqa: E731
    out, out_g = grads(split, p, h, w, go)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    for a, b in zip(out_g, ref_g):
        assert_close_rel(a, b, 1e-4, "split")
    try:
        cuda_backend.rasterize(*p, h, w, binning_name="torch", max_pairs=5)
    except ConfigError as err:
        assert "int32" in str(err)
    else:
        raise AssertionError("no ConfigError over the pair limit")

    # N = 0: zeros and empty gradients
    z = [torch.zeros(0, 2), torch.zeros(0, 2), torch.zeros(0), torch.zeros(0, 3)]
    out, gz = grads(cuda_backend.render_cuda, z, 5, 6, torch.ones(5, 6, 3))
    assert out.shape == (5, 6, 3) and not out.any() and gz[0].shape == (0, 2)
    print("triton interpreter: all cases match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
