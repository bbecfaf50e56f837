"""``smartsplat bench init``: initialisation time and peak memory from 2K photos to DIV16K-like images.

Each case runs in its own child process (``python -m smartsplat_dist.bench.init --child JSON``) so that peak
memory is per case: the child loads the image, warms the compiled kernels up on a tiny image, records its
resident memory (``rss_before``), initialises, and reports ``ru_maxrss`` of itself. "extra" = peak − the
resident memory before initialising (the input image, Python, torch, numpy already counted in ``rss_before``).

Images: 2K cases are photos-2k PNGs of the data folder (``--data``, else ``$SMARTSPLAT_BENCH_DATA``) when present, else the shipped
examples upsampled 5× (reported as such). A DIV16K-like image is an 8× Lanczos upsample of a photos-2k image
(flowers.png: 2040×1355 → 16320×10840), built once in a child and cached as .npy under ``--cache-dir``.

A second table measures the initial PSNR (no fitting) with and without the colour coverage normalisation on
photos-768 images at CR 50 (render backend ``cpu`` when available, else ``torch``).
"""
from __future__ import annotations

import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..model import n_gaussians_for_cr
from ..raster import render
from .common import EXAMPLES as _EXAMPLES
from .common import add_data_argument, data_root, format_table

DESCRIPTION = ("initialisation time and peak memory, 2K photos to DIV16K-like (8x Lanczos upsample), CR 50-500; "
               "initial PSNR with/without colour coverage normalisation")

_16K_SOURCE = "flowers.png"


def add_arguments(parser) -> None:
    add_data_argument(parser)
    parser.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "smartsplat-bench-init"),
                        help="where the DIV16K-like .npy is cached (default: %(default)s)")
    parser.add_argument("--method", default="smart", choices=("smart", "random"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-coverage-study", action="store_true", help="skip the initial-PSNR table")


# ----------------------------------------------------------------------------------------------- child side
def _rss_mb(field: str = "VmRSS") -> float:
    """Resident memory (``VmRSS``) or its high-water mark (``VmHWM``) of this process, MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _load(spec: dict[str, Any]) -> np.ndarray:
    if spec["kind"] == "npy":
        return np.load(spec["path"])

    with Image.open(spec["path"]) as im:
        im = im.convert("RGB")
        factor = int(spec.get("factor", 1))
        if factor != 1:
            im = im.resize((im.width * factor, im.height * factor), Image.LANCZOS)
        return np.asarray(im, dtype=np.uint8).copy()


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    import numba  # lazy: numba is slow to import

    from ..init import InitConfig, initialize  # lazy: init pulls in numba; keeps --help fast

    config = InitConfig(method=spec["method"])
    initialize(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8), 50, config)  # warm up
    image = _load(spec)
    H, W = image.shape[:2]
    n = n_gaussians_for_cr(H, W, spec["cr"])
    before = _rss_mb()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    g = initialize(image, n, config, seed=spec["seed"])
    seconds = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    # ru_maxrss is updated lazily and can lag VmRSS by a few pages: take the largest reading.
    peak = max(r1.ru_maxrss / 1024.0, _rss_mb("VmHWM"), _rss_mb("VmRSS"), before)
    return {"height": H, "width": W, "n": len(g), "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
            "threads": numba.get_num_threads(), "load_avg_1m": round(os.getloadavg()[0], 2), "image_mb": round(image.nbytes / 2**20, 1),
            "rss_before_mb": round(before, 1), "peak_mb": round(peak, 1), "extra_mb": round(peak - before, 1)}


def _make_upsample(src: str, dst: str, factor: int) -> None:
    image = _load({"kind": "png", "path": src, "factor": factor})
    tmp = dst + ".tmp.npy"
    np.save(tmp, image)
    os.replace(tmp, dst)


def _run_child(args: list[str], timeout: float = 1800) -> dict[str, Any]:
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "smartsplat_dist.bench.init", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"bench child failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}


# ---------------------------------------------------------------------------------------------- parent side
def _div16k_like(args, source: Path) -> Path:
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    dst = cache / f"div16k-like-{source.stem}-x8.npy"
    if not dst.exists():
        print(f"building DIV16K-like image: 8x Lanczos upsample of {source.name} -> {dst}", flush=True)
        _run_child(["--upsample", str(source), str(dst), "8"])
    return dst


def _cases(args) -> list[dict[str, Any]]:
    root = data_root(args.data)
    photos2k = root / "photos-2k" if root else None
    real = sorted(photos2k.glob("*.png")) if photos2k and photos2k.is_dir() else []
    if real:
        two_k = [{"kind": "png", "path": str(p), "label": f"2K {p.stem}", "images": "real"} for p in real]
        src16 = photos2k / _16K_SOURCE if (photos2k / _16K_SOURCE).exists() else real[0]
    else:
        ex = sorted(_EXAMPLES.glob("*.png"))
        two_k = [{"kind": "png", "path": str(p), "factor": 5, "label": f"2K-like {p.stem} (5x example)",
                  "images": "example upsampled 5x"} for p in ex]
        src16 = ex[0]
    crs_2k = (50, 100) if args.quick else (50, 100, 200, 500)
    imgs_2k = two_k[:1] if args.quick else two_k[:3]
    cases = [dict(c, cr=cr) for c in imgs_2k for cr in crs_2k]
    factor16 = 8 if real else 40
    path16 = _div16k_like(args, src16) if factor16 == 8 else None
    if path16 is None:  # no photos-2k: 40x upsample of an example (384 -> 15360 wide)
        cache = Path(args.cache_dir)
        cache.mkdir(parents=True, exist_ok=True)
        path16 = cache / f"div16k-like-{src16.stem}-x40.npy"
        if not path16.exists():
            _run_child(["--upsample", str(src16), str(path16), "40"])
    label16 = f"DIV16K-like {src16.stem} x{factor16}"
    for cr in ((100,) if args.quick else (50, 100, 200, 500)):
        cases.append({"kind": "npy", "path": str(path16), "label": label16, "images": "DIV16K-like", "cr": cr})
    return cases


def _coverage_study(args) -> list[dict[str, Any]]:
    from ..init import InitConfig, initialize  # lazy: init pulls in numba; keeps --help fast

    root = data_root(args.data)
    folder = root / "photos-768" if root else None
    paths = sorted(folder.glob("*.png")) if folder and folder.is_dir() else []
    images = "real photos-768"
    if not paths:
        paths, images = sorted(_EXAMPLES.glob("*.png")), "shipped examples 384x256"
    paths = paths[:5] if args.quick else paths
    try:
        from ..raster import cpu_backend  # noqa: F401  # lazy: numba kernel module (compiles on first use)

        backend = "cpu"
    except Exception:  # noqa: BLE001 - the fast backend is optional here
        backend = "torch"
    variants = [("smart", False), ("smart", True), ("random", True)]
    rows = []

    for p in paths:
        with Image.open(p) as im:
            img = np.asarray(im.convert("RGB"), dtype=np.uint8)
        H, W = img.shape[:2]
        n = n_gaussians_for_cr(H, W, 50)
        ref = img.astype(np.float32) / 255.0
        for method, knn_self in variants:
            row: dict[str, Any] = {"image": p.stem, "method": method,
                                   "knn_self": knn_self if method == "smart" else "-"}
            for norm in ("none", "coverage"):
                cfg = InitConfig(method=method, knn_includes_self=knn_self, color_normalization=norm)
                g = initialize(img, n, cfg, seed=args.seed)
                with torch.no_grad():
                    out = render(g, H, W, backend=backend).clamp(0, 1).numpy()
                mse = float(np.mean((out.astype(np.float64) - ref) ** 2))
                row[f"psnr_{norm}"] = round(10 * np.log10(1.0 / max(mse, 1e-12)), 2)
                row[f"bright_{norm}"] = round(float(out.mean() / max(ref.mean(), 1e-6)), 2)
            rows.append(row)
    for method, knn_self in variants:
        sel = [r for r in rows if r["method"] == method and r["knn_self"] == (knn_self if method == "smart" else "-")]
        if sel:
            rows.append({"image": "MEAN", "method": method, "knn_self": sel[0]["knn_self"],
                         **{k: round(float(np.mean([r[k] for r in sel])), 2)
                            for k in ("psnr_none", "bright_none", "psnr_coverage", "bright_coverage")}})
    print(f"\ninitial PSNR (dB, no fitting) at CR 50, {images}, render backend {backend}; "
          "bright = mean(render)/mean(image)")
    print(format_table(rows))
    return [dict(r, images=images, backend=backend) for r in rows]


def run(args) -> dict[str, Any]:
    from ..init import InitConfig  # lazy: init pulls in numba; keeps --help fast

    rows = []
    for case in _cases(args):
        spec = {k: case[k] for k in ("kind", "path", "cr") if k in case}
        spec.update(method=args.method, seed=args.seed, factor=case.get("factor", 1))
        res = _run_child(["--child", json.dumps(spec)])
        row = {"case": case["label"], "images": case["images"], "size": f"{res['width']}x{res['height']}",
               "cr": case["cr"], "n": res["n"], "seconds": res["seconds"], "cpu_s": res["cpu_seconds"],
               "threads": res["threads"], "load": res["load_avg_1m"], "image_mb": res["image_mb"],
               "rss_before_mb": res["rss_before_mb"], "peak_mb": res["peak_mb"], "extra_mb": res["extra_mb"]}
        rows.append(row)
        print(f"  {row['case']} CR {row['cr']}: {row['seconds']} s, +{row['extra_mb']} MB", flush=True)
    print(f"\ninit method={args.method} (DIV16K-like = 8x Lanczos upsample of a photos-2k image); "
          "extra = peak RSS - RSS before initialise (image loaded); cpu_s = user+system CPU seconds; "
          "load = 1-min load average when the case ended (other processes share the cores)")
    print(format_table(rows))
    payload: dict[str, Any] = {"method": args.method, "quick": bool(args.quick), "cases": rows,
                               "images": sorted({r["images"] for r in rows}),
                               "init_config": dataclasses.asdict(InitConfig(method=args.method))}
    if not args.no_coverage_study:
        payload["coverage_study"] = _coverage_study(args)
    return payload


if __name__ == "__main__":  # child entry points
    if sys.argv[1] == "--child":
        print(json.dumps(_child(json.loads(sys.argv[2]))))
    elif sys.argv[1] == "--upsample":
        _make_upsample(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        raise SystemExit(f"unknown child mode {sys.argv[1]!r}")
