"""The decode benchmark: synthetic 16K-like Gaussians and a measured decode in a subprocess."""
import math

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


def test_run_with_init_of_an_upsampled_image(tmp_path, capsys):
    """The --from-init path end to end on a tiny image (8x upsample -> smart init -> record -> decode)."""
    import argparse

    import numpy as np

    from smartsplat_dist.io.images import save_image

    rng = np.random.default_rng(0)
    small = (rng.random((24, 32, 3)) * 255).astype(np.uint8)
    save_image(small, tmp_path / "tiny.png")
    args = argparse.Namespace(quick=True, out=str(tmp_path / "d.json"), width=None, height=None, cr=[50],
                              backends=["cpu"], repeat=1, from_init=str(tmp_path / "tiny.png"), seed=0)
    payload = decode.run(args)
    (row,) = payload["rows"]
    assert row["status"] == "ok", row
    assert (row["height"], row["width"]) == (192, 256)
    assert row["n_gaussians"] == n_gaussians_for_cr(192, 256, 50)
    assert "DIV16K-like" in payload["images"] and "megapixels_per_second" in capsys.readouterr().out
