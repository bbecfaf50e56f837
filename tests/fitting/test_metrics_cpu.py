"""The compiled CPU metrics kernel against the float64 reference: same PSNR and SSIM to float64 rounding."""
from __future__ import annotations

import math

import numpy as np
import pytest

from smartsplat_dist.errors import ImageError
from smartsplat_dist.fitting import metrics, metrics_cpu, metrics_reference as ref

from .test_metrics import _pair


@pytest.mark.parametrize("h, w, noise", [(11, 11, 8), (230, 197, 1), (64, 2 * metrics_cpu.CHUNK + 17, 8),
                                         (97, metrics_cpu.CHUNK + 10, 40)])
def test_matches_float64_reference(h, w, noise):
    """Sizes from the smallest (one map pixel) to several column chunks with a partial last one."""
    a, b = _pair(h, w, noise, seed=noise)
    q = metrics_cpu.quality_uint8(a, b)
    assert q["psnr"] == pytest.approx(ref.psnr(a, b), abs=1e-9)  # the brief's bound: 1e-4 dB
    assert q["ssim"] == pytest.approx(ref.ssim(a, b), abs=1e-12)  # the brief's bound: 1e-6
    assert metrics.quality(a, b) == q  # quality() takes the kernel for uint8 numpy on CPU


def test_identical_images_and_input_forms():
    a, b = _pair(40, 50, 10)
    assert metrics_cpu.quality_uint8(a, a) == {"psnr": math.inf, "ssim": pytest.approx(1.0, abs=1e-12)}
    a.flags.writeable = False  # e.g. np.asarray of a PIL image
    strided = np.ascontiguousarray(np.concatenate([b, b], axis=1))[:, ::2]  # not C-contiguous
    assert metrics_cpu.quality_uint8(a, strided)["ssim"] == pytest.approx(ref.ssim(a, strided), abs=1e-12)
    with pytest.raises(ImageError):
        metrics.quality(a[:10], b[:10])


def test_result_does_not_depend_on_the_thread_count(monkeypatch):
    a, b = _pair(150, 120, 8)
    runs = []
    for threads in (1, 2):
        monkeypatch.setattr("smartsplat_dist.raster.cpu_backend._threads", lambda t=threads: t)
        runs.append(metrics_cpu.quality_uint8(a, b))
    assert runs[0] == runs[1]
