"""The convergence benchmark's pieces on a tiny image (the benchmark itself is run by the lead)."""
from __future__ import annotations

import argparse

import pytest

from smartsplat_dist.bench import convergence
from smartsplat_dist.fitting import FitConfig

from .test_fit import _gaussians, _image


def test_run_curve_and_steps_to_reach():
    image = _image(24, 24)
    curve, _ = convergence.run_curve(image, _gaussians(8, 24, 24), FitConfig(steps=6), "torch", eval_every=3)
    assert curve["steps"] == [0, 3, 6]
    assert len(curve["psnr"]) == len(curve["ssim"]) == 3
    assert curve["psnr"][-1] > curve["psnr"][0]
    assert convergence.steps_to_reach(curve, -1.0) == 0
    assert convergence.steps_to_reach(curve, 1e9) is None
    mid = (curve["psnr"][0] + curve["psnr"][-1]) / 2
    assert convergence.steps_to_reach(curve, mid) in (3, 6)


def test_step_cost_times_each_part_of_the_fits_loss_path():
    image = _image(40, 56)
    fitted = _gaussians(30, 40, 56)
    cost = convergence.step_cost(image, fitted, "cpu", lambda_l1=0.9, repeats=2)
    parts = ("render_forward_s", "loss_s", "render_backward_s")
    assert all(cost[k] > 0 for k in parts)
    assert cost["parts_s"] == pytest.approx(sum(cost[k] for k in parts))
    assert all(t.grad is None for t in fitted.tensors())  # the caller's Gaussians are not touched


def test_arguments_and_example_fallback(tmp_path, monkeypatch):
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    convergence.add_arguments(p)
    monkeypatch.delenv("SMARTSPLAT_BENCH_DATA", raising=False)
    args = p.parse_args(["--quick"])
    files, folder, note = convergence._image_files(args)
    assert len(files) == 2 and folder == str(convergence.EXAMPLES) and "example photos" in note
    monkeypatch.setenv("SMARTSPLAT_BENCH_DATA", str(convergence.EXAMPLES.parent))  # no photos-768/: read as is
    with pytest.raises(SystemExit):
        convergence._image_files(p.parse_args(["--quick"]))  # a folder without PNGs
    files, folder, note = convergence._image_files(p.parse_args(["--quick", "--data", str(convergence.EXAMPLES)]))
    assert len(files) == 2 and folder == str(convergence.EXAMPLES) and note == ""


def test_variant_configs():
    base = convergence.variant_config("baseline", 40)
    assert base.steps == 40 and not base.clamp_render and base.relocate_every == 0 and base.max_scale == 0.0
    combo = convergence.variant_config("relocate+clamp+relocate_fraction=0.05", 40)
    assert combo.clamp_render and combo.relocate_every == 100 and combo.relocate_fraction == 0.05
    assert combo.lr_schedule == "constant"  # everything not named stays as in baseline
    assert convergence.variant_config("defaults", 40) == FitConfig(steps=40)
    assert convergence.variant_config("defaults+lr_means=0.2", 40) == FitConfig(steps=40, lr_means=0.2)
    import pytest

    from smartsplat_dist.errors import ConfigError
    with pytest.raises(ConfigError):
        convergence.variant_config("nonsense", 40)
    with pytest.raises(ConfigError):
        convergence.variant_config("bogus_field=1", 40)


def _curve(psnrs):
    return {"steps": [0, 100, 200, 300], "psnr": psnrs, "ssim": [0.5] * 4, "seconds_per_step": 0.1}


def test_ablation_summary_and_merge(tmp_path):
    import json

    a = {"per_image": [{"image": "a.png", "curves": {"baseline": _curve([10, 20, 25, 30])}},
                       {"image": "b.png", "curves": {"baseline": _curve([10, 22, 26, 28])}}]}
    b = {"per_image": [{"image": "a.png", "curves": {"x": _curve([10, 24, 30, 31])}},
                       {"image": "b.png", "curves": {"x": _curve([10, 21, 25, 27])}}]}
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    pa.write_text(json.dumps(a))
    pb.write_text(json.dumps(b))
    out = convergence.merge([str(pa), str(pb)], at=200)
    x = next(r for r in out["summary"] if r["variant"] == "x")
    assert x["images"] == 2 and x["to_base_end"] == [200, None]
    assert x["gain@200"] == (5 + -1) / 2 and x["gain@end"] == (1 + -1) / 2
    base = next(r for r in out["summary"] if r["variant"] == "baseline")
    assert base["gain@end"] == 0 and base["to_base_end"] == [300, 300]
