"""GPU check: the CUDA backend against the cpu backend, and what a DIV16K fit costs on this GPU.

On a CUDA machine:

1. **parity** — the same synthetic Gaussians rendered by the ``cuda`` and ``cpu`` backends (512x512 / 20k and
   2048x2048 / 200k): max |image difference|, and the relative error of the gradients of ``sum(image * G)``
   w.r.t. means, scales, rotations and colours; each checked against a tolerance (PASS / FAIL);
2. **fit step** — :func:`smartsplat_dist.fitting.fit` on the ``cuda`` backend at 768x512, 3840x2160 (4K) and
   16320x9184 (DIV16K-like size), CR ``--cr``: a real photo resized to the size when one is at hand (else a
   synthetic image), N Gaussians from the nominal CR, the default fit config (4096 px loss windows): seconds
   per step (after a warm-up fit that compiles the kernels), peak GPU memory (``torch.cuda.max_memory_allocated``)
   and the number of loss windows;
3. **projection** — hours per DIV16K image at ``--target-steps`` (50,000, the paper's) steps:
   ``seconds_per_step(16K) * steps / 3600``.

Without CUDA (or with ``--dry-run``) it prints what it would run, and checks nothing. ``pipelines/gpu-check.sh``
runs it with the defaults.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..model import n_gaussians_for_cr
from ..raster import get_backend
from .common import add_data_argument, data_root, format_table
from .raster import synthetic_gaussians

DESCRIPTION = ("GPU check: cuda vs cpu backend (image, gradients), fit step time and peak GPU memory at 768x512, "
               "4K and 16K, projected hours per DIV16K image; --dry-run (or no CUDA) says what it would do")

PARITY_CASES = [(512, 512, 20000), (2048, 2048, 200000)]
SIZES = [(768, 512), (3840, 2160), (16320, 9184)]
#: max |cuda - cpu| of an image (float32 sums of the same terms in another order) and max relative gradient error.
IMAGE_TOL = 1e-4
GRAD_TOL = 1e-3


def add_arguments(p) -> None:
    p.add_argument("--dry-run", action="store_true", help="print the plan only (the default without CUDA)")
    add_data_argument(p)
    p.add_argument("--cr", type=float, default=100.0, help="nominal CR of the fit-step cases (default: %(default)s)")
    p.add_argument("--steps", type=int, default=20, help="timed fit steps per size (default: %(default)s)")
    p.add_argument("--target-steps", type=int, default=50000, help="steps of the projection (default: %(default)s)")
    p.add_argument("--sizes", default=",".join(f"{w}x{h}" for w, h in SIZES),
                   help="WxH fit-step sizes, comma-separated (default: %(default)s)")


def _sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        w, h = (int(v) for v in part.lower().strip().split("x"))
        out.append((w, h))
    return out


def plan(args) -> list[str]:
    """The steps the check runs, as lines of text."""
    lines = [f"parity: render + backward of the same synthetic Gaussians with backends cuda and cpu at "
             f"{', '.join(f'{w}x{h}/{n}' for h, w, n in PARITY_CASES)}; pass if max |image diff| <= {IMAGE_TOL:g} "
             f"and every gradient's max relative error <= {GRAD_TOL:g}"]
    for w, h in _sizes(args.sizes):
        n = n_gaussians_for_cr(h, w, args.cr)
        lines.append(f"fit step: {w}x{h}, CR {args.cr:g} (N = {n}), backend cuda, default fit config: warm-up fit "
                     f"of 2 steps, then {args.steps} timed steps; report s/step and peak GPU memory")
    lines.append(f"projection: hours per DIV16K image = s/step at the largest size x {args.target_steps} / 3600")
    return lines


def _max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = max(float(b.abs().max()), 1e-12)
    return float((a - b).abs().max()) / scale


def parity(cases=PARITY_CASES) -> list[dict[str, Any]]:
    """cuda vs cpu backend on the same inputs: image and gradient errors per case."""
    rows = []
    for h, w, n in cases:
        g = synthetic_gaussians(n, h, w)
        grad = torch.rand(h, w, 3, generator=torch.Generator().manual_seed(1))
        out = {}
        for name, dev in (("cpu", "cpu"), ("cuda", "cuda")):
            params = [t.to(dev).clone().requires_grad_() for t in g.tensors()]
            img = get_backend(name)(*params, h, w)
            (img * grad.to(dev)).sum().backward()
            out[name] = (img.detach().cpu(), [p.grad.detach().cpu() for p in params])
        img_err = float((out["cuda"][0] - out["cpu"][0]).abs().max())
        errs = [_max_rel(a, b) for a, b in zip(out["cuda"][1], out["cpu"][1])]
        ok = img_err <= IMAGE_TOL and max(errs) <= GRAD_TOL
        rows.append({"size": f"{w}x{h}", "N": n, "image_max_abs": img_err, "grad_means": errs[0],
                     "grad_scales": errs[1], "grad_rotations": errs[2], "grad_colors": errs[3],
                     "result": "PASS" if ok else "FAIL"})
    return rows


def _image(w: int, h: int, data: str | None = None) -> tuple[np.ndarray, str]:
    root = data_root(data)
    folder = root / "photos-2k" if root else None
    files = sorted(folder.glob("*.png")) if folder and folder.is_dir() else []
    if files:
        with Image.open(files[0]) as im:
            return np.asarray(im.convert("RGB").resize((w, h), Image.Resampling.LANCZOS)), files[0].name
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([128 + 100 * np.sin(xx / 37.0) * np.cos(yy / 23.0), (xx + yy) % 256, 255 * yy / h], -1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8), "synthetic"


def fit_step(w: int, h: int, cr: float, steps: int, data: str | None = None) -> dict[str, Any]:
    """Seconds per fit step and peak GPU memory of a CUDA fit at w x h."""
    from ..fitting import FitConfig, fit  # lazy: fitting pulls in numba; keeps --help fast

    image, source = _image(w, h, data)
    n = n_gaussians_for_cr(h, w, cr)
    g = synthetic_gaussians(n, h, w, seed=3)
    config = FitConfig()
    fit(g, image, dataclasses.replace(config, steps=2, log_every=10**9), backend="cuda")  # compile, warm up
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    _, stats = fit(g, image, dataclasses.replace(config, steps=steps, log_every=10**9), backend="cuda")
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    return {"size": f"{w}x{h}", "N": n, "image": source, "windows": stats["windows"], "steps": steps,
            "s_per_step": stats["seconds_per_step"], "fit_wall_s": wall,
            "peak_gpu_gb": torch.cuda.max_memory_allocated() / 2**30}


def run(args) -> dict[str, Any]:
    lines = plan(args)
    dry = args.dry_run or not torch.cuda.is_available()
    if dry:
        why = "--dry-run" if args.dry_run else "no CUDA device here"
        print(f"gpu check, dry run ({why}): on a CUDA machine it would run")
        for line in lines:
            print(f"  - {line}")
        return {"dry_run": True, "reason": why, "plan": lines}
    print(f"gpu check on {torch.cuda.get_device_name(0)}")
    par = parity()
    print(format_table(par))
    rows = []
    for w, h in _sizes(args.sizes):
        row = fit_step(w, h, args.cr, args.steps, args.data)
        rows.append(row)
        print(f"  {row['size']}: {row['s_per_step'] * 1e3:.1f} ms/step, peak {row['peak_gpu_gb']:.2f} GB, "
              f"{row['windows']} window(s)", flush=True)
    print(format_table(rows))
    biggest = max(rows, key=lambda r: int(r["size"].split("x")[0]) * int(r["size"].split("x")[1]))
    hours = biggest["s_per_step"] * args.target_steps / 3600.0
    print(f"projected: {hours:.2f} h per {biggest['size']} image at {args.target_steps} steps "
          f"({biggest['s_per_step'] * 1e3:.1f} ms/step)")
    ok = all(r["result"] == "PASS" for r in par)
    print("parity:", "PASS" if ok else "FAIL")
    return {"dry_run": False, "gpu": torch.cuda.get_device_name(0), "parity": par, "parity_ok": ok,
            "fit": rows, "projection": {"size": biggest["size"], "steps": args.target_steps, "hours": hours}}


__all__ = ["DESCRIPTION", "add_arguments", "run", "plan", "parity", "fit_step"]
