import numpy as np
from PIL import Image

from smartsplat_dist.bench import init as bench_init


def test_bench_child_reports_time_and_memory(tmp_path):
    path = tmp_path / "small.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(path)
    res = bench_init._child({"kind": "png", "path": str(path), "cr": 20, "method": "smart", "seed": 0,
                             "factor": 2})
    assert (res["height"], res["width"]) == (80, 120)
    assert res["n"] == 3 * 80 * 120 // (7 * 20)
    assert res["seconds"] >= 0 and res["peak_mb"] >= res["rss_before_mb"] > 0
    assert abs(res["extra_mb"] - (res["peak_mb"] - res["rss_before_mb"])) <= 0.11


def test_bench_upsample_cache(tmp_path):
    src = tmp_path / "s.png"
    Image.fromarray(np.full((5, 7, 3), 9, np.uint8)).save(src)
    dst = tmp_path / "big.npy"
    bench_init._make_upsample(str(src), str(dst), 3)
    big = np.load(dst)
    assert big.shape == (15, 21, 3) and big.dtype == np.uint8 and np.all(big == 9)
