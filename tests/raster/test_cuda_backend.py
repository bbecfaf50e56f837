"""The cuda backend: Triton kernels through TRITON_INTERPRET=1 (subprocess), binning dispatch, guards."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from smartsplat_dist.errors import ConfigError
from smartsplat_dist.raster import cuda_backend

ROOT = Path(__file__).resolve().parents[2]


def test_triton_kernels_match_reference_in_interpreter():
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-m", "tests.raster.triton_check"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "all cases match" in proc.stdout


def test_binner_choice_and_errors():
    assert set(cuda_backend.BINNERS) == {"gsplat", "torch"}
    with pytest.raises(ConfigError, match="unknown binning"):
        cuda_backend.rasterize(torch.zeros(1, 2), torch.ones(1, 2), torch.zeros(1), torch.ones(1, 3), 4, 4,
                               binning_name="nope")


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1" or torch.cuda.is_available(),
                    reason="only meaningful on a CPU-only process without the interpreter")
def test_render_cuda_refuses_cpu_tensors():
    with pytest.raises(ConfigError, match="CUDA"):
        cuda_backend.render_cuda(torch.zeros(1, 2), torch.ones(1, 2), torch.zeros(1), torch.ones(1, 3), 4, 4)


def test_torch_binner_matches_gsplat_binner_conventions():
    # bin_torch is what the CPU tests use in place of gsplat: same offsets/flatten ids as gsplat's torch impl
    impl = pytest.importorskip("gsplat.cuda._torch_impl")
    g = torch.Generator().manual_seed(0)
    means = torch.rand(40, 2, generator=g) * 50 - 5
    radii = torch.randint(1, 20, (40, 2), generator=g, dtype=torch.int32)
    offsets, flat = cuda_backend.bin_torch(means, radii, 3, 3)
    _, ids, want_flat = impl._isect_tiles(means[None], radii[None], torch.zeros(1, 40), 16, 3, 3)
    want_off = impl._isect_offset_encode(ids, 1, 3, 3).reshape(-1)
    assert torch.equal(offsets, want_off)
    tiles = torch.repeat_interleave(torch.arange(9), torch.diff(torch.cat([offsets, torch.tensor([flat.numel()])])))
    assert sorted(zip(tiles.tolist(), flat.tolist())) == sorted(zip((ids >> 32).tolist(), want_flat.tolist()))
