"""The convergence benchmark's pieces on a tiny image (the benchmark itself is run by the lead)."""
from __future__ import annotations

import argparse

from smartsplat_dist.bench import convergence
from smartsplat_dist.fitting import FitConfig

from .test_fit import _gaussians, _image


def test_run_curve_and_steps_to_reach():
    image = _image(24, 24)
    curve = convergence.run_curve(image, _gaussians(8, 24, 24), FitConfig(steps=6), "torch", eval_every=3)
    assert curve["steps"] == [0, 3, 6]
    assert len(curve["psnr"]) == len(curve["ssim"]) == 3
    assert curve["psnr"][-1] > curve["psnr"][0]
    assert convergence.steps_to_reach(curve, -1.0) == 0
    assert convergence.steps_to_reach(curve, 1e9) is None
    mid = (curve["psnr"][0] + curve["psnr"][-1]) / 2
    assert convergence.steps_to_reach(curve, mid) in (3, 6)


def test_arguments_and_example_fallback(tmp_path, monkeypatch):
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    convergence.add_arguments(p)
    monkeypatch.setattr(convergence, "SHARED_PHOTOS", tmp_path / "absent")
    args = p.parse_args(["--quick"])
    files, folder, note = convergence._image_files(args)
    assert len(files) == 2 and folder == str(convergence.EXAMPLES) and "not found" in note
