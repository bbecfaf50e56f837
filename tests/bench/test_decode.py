"""The decode benchmark: synthetic 16K-like Gaussians and a measured decode in a subprocess."""
import math

import pytest

from smartsplat_dist.bench import decode
from smartsplat_dist.model import n_gaussians_for_cr


def test_synthetic_gaussians_have_fit_like_statistics():
    h, w = 1088, 1632  # a 10x smaller 16K frame
    n = n_gaussians_for_cr(h, w, 100)
    g = decode.synthetic_gaussians(h, w, n, seed=1)
    assert len(g) == n
    assert float(g.means[:, 0].min()) >= 0 and float(g.means[:, 0].max()) < w
    assert float(g.means[:, 1].min()) >= 0 and float(g.means[:, 1].max()) < h
    s_base = math.sqrt(h * w / (math.pi * n)) / 3
    med = float(g.scales.median())
    assert 0.5 * s_base < med < 2 * s_base and float(g.scales.min()) > 0
    assert float(g.colors.min()) >= 0 and float(g.colors.max()) <= 1
    g2 = decode.synthetic_gaussians(h, w, n, seed=1)
    assert bool((g.means == g2.means).all())  # deterministic per seed


def test_measure_decode_in_a_subprocess():
    h, w = 192, 256
    g = decode.synthetic_gaussians(h, w, n_gaussians_for_cr(h, w, 50))
    record = decode.make_record(g, h, w)
    res = decode.measure_decode(record, "cpu", repeat=1, timeout=600)
    assert res["status"] == "ok", res
    assert (res["height"], res["width"]) == (h, w)
    assert res["seconds"] > 0 and res["megapixels_per_second"] > 0
    assert res["peak_rss_mb"] >= res["rss_before_mb"] > 10
    assert 0 < res["mean_pixel"] < 255


def test_measure_decode_reports_a_failure():
    res = decode.measure_decode(b"not a record", "cpu")
    assert res["status"] == "failed" and res["error"]
