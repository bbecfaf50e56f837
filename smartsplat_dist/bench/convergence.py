"""Convergence benchmark: PSNR / SSIM vs step for smart and random initialisation (or LR presets).

Default run: for each image, fit from ``init=smart`` and ``init=random`` (same image, CR, seed, FitConfig) and
evaluate PSNR and SSIM of the decoded render (clamped, rounded to uint8) every ``--eval-every`` steps; report the
steps each init needs to reach each PSNR target and the smart/random step ratio, plus PSNR/SSIM at the last step.

``--lr-sweep``: the same with smart init only, comparing the learning-rate presets of
``smartsplat_dist.fitting.config.LR_PRESETS`` (the measurement behind FitConfig's default learning rates).

``--variants a,b+c,...``: fit ablation, smart init only. Each variant is ``+``-joined names of :data:`VARIANTS`
(each a set of FitConfig changes applied on top of ``baseline``, every fit trick off) or ``field=value``
FitConfig changes, e.g. ``--variants baseline,cosine,relocate+relocate_fraction=0.05,defaults``; a variant
naming ``defaults`` starts from the shipped FitConfig instead (``defaults+lr_means=0.2``). With a
``baseline`` variant (in this run or in files given to ``--merge``) the summary gives each variant's PSNR at
``--at`` steps and at the last step, their gains over ``baseline``, and the steps it needs to reach
``baseline``'s last-step PSNR. ``--merge a.json b.json ...`` runs nothing: it joins earlier ``--variants``
results (same images, steps, evaluation steps; e.g. one process per variant) and prints that summary.

Images: ``photos-768/`` of the data folder (``--data``, else ``$SMARTSPLAT_BENCH_DATA``; a folder without it is
read as a folder of images), else the example photos shipped in ``smartsplat_dist/examples`` (4 x 384x256; the payload says which). ``--quick``: 2 images, CR 50, 400 steps,
every 50 (4 x 400 steps: ~5 min at ~0.2 s/step with --threads 1 on a quiet 2-core machine, more
when it is shared). Full: all images of the folder. ``--step-cost`` also times one step split into render and
L1 + SSIM. The "steps to reach" figures have the resolution of ``--eval-every``.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError
from ..model import Gaussians, n_gaussians_for_cr
from ..raster import backend_device, get_backend, resolve_backend
from ..raster.pixels import render_uint8
from ..threads import applied
from .common import DATA_ENV, EXAMPLES, add_data_argument, data_root, format_table, peak_rss_mb, photo_folders

DESCRIPTION = "PSNR/SSIM vs step for smart vs random init (or learning-rate presets); steps to reach PSNR targets"



def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_argument(p)
    p.add_argument("--n-images", type=int, default=None, help="use the first N images (quick: 2)")
    p.add_argument("--only", default=None, help="comma-separated file names to use (before --n-images)")
    p.add_argument("--cr", type=float, default=50.0, help="nominal compression ratio (default: %(default)s)")
    p.add_argument("--steps", type=int, default=None, help="fit steps (default: 1000; quick: 400)")
    p.add_argument("--eval-every", type=int, default=50, help="evaluate every N steps (default: %(default)s)")
    p.add_argument("--targets", default="26,28,30,32,34", help="PSNR targets in dB, comma separated")
    p.add_argument("--backend", default="auto", help="render backend (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--downscale", type=int, default=1, help="shrink images by this integer factor first")
    p.add_argument("--lr-sweep", action="store_true", help="compare LR presets (smart init) instead of inits")
    p.add_argument("--presets", default=None, help="LR presets for --lr-sweep (default: all)")
    p.add_argument("--step-cost", action="store_true",
                   help="after the first fit, time its step split into render forward, loss, render backward")
    p.add_argument("--variants", default=None,
                   help="fit ablation: comma-separated variants, each '+'-joined names of "
                        f"{', '.join(VARIANTS)} or field=value FitConfig changes")
    p.add_argument("--at", type=int, default=300, help="also report PSNR at this step (--variants; default 300)")
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="join earlier --variants results and print the ablation summary (runs nothing)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch (and numba) threads; 1 is fastest on a busy shared machine (default: torch's)")


#: Fit-ablation variants: FitConfig changes on top of ``baseline`` (every trick off, the fit before they existed).
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": dict(clamp_render=False, lr_schedule="constant", color_warmup_steps=0, color_solve_iters=0,
                     relocate_every=0, max_scale=0.0),
    "clamp": dict(clamp_render=True),
    "cosine": dict(lr_schedule="cosine", lr_final=0.1),
    "warmup": dict(color_warmup_steps=50),
    "solve": dict(color_solve_iters=10),
    "relocate": dict(relocate_every=100, relocate_fraction=0.02, relocate_until=0.6),
    "cap": dict(max_scale=1.0),
    "defaults": {},  # FitConfig's shipped defaults, not on top of baseline
}


def _parse_value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def variant_config(spec: str, steps: int):
    """The FitConfig of a variant spec: ``+``-joined :data:`VARIANTS` names or ``field=value`` changes."""
    from ..fitting import FitConfig  # lazy: fitting pulls in numba; keeps --help fast

    parts = [t.strip() for t in spec.split("+") if t.strip()]
    changes: dict[str, Any] = {} if "defaults" in parts else dict(VARIANTS["baseline"])
    for part in parts:
        if "=" in part:
            key, value = part.split("=", 1)
            changes[key.strip()] = _parse_value(value.strip())
        elif part == "defaults":
            continue
        elif part in VARIANTS:
            changes.update(VARIANTS[part])
        else:
            raise ConfigError(f"unknown fit variant {part!r}; choose from {', '.join(VARIANTS)} or field=value")
    return FitConfig.from_dict({**FitConfig(steps=steps).to_dict(), **changes})


def _psnr_at(curve: dict[str, Any], step: int) -> float | None:
    for s, p in zip(curve["steps"], curve["psnr"]):
        if s == step:
            return float(p)
    return None


def ablation_summary(per_image: list[dict[str, Any]], at: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per image and variant, and per variant averaged over the images that have a ``baseline`` curve.

    Returns:
        (rows: image, variant, PSNR at ``at`` and at the last step, gain over baseline there, steps to reach
        baseline's last-step PSNR; summary rows: the same averaged per variant, with the steps as a list).
    """
    rows: list[dict[str, Any]] = []
    for entry in per_image:
        curves = entry["curves"]
        base = curves.get("baseline")
        for vname, curve in curves.items():
            last = curve["steps"][-1]
            row: dict[str, Any] = {"image": entry["image"][:24], "variant": vname,
                                   f"psnr@{at}": _psnr_at(curve, at), "psnr@end": float(curve["psnr"][-1]),
                                   "end": int(last), "s/step": curve.get("seconds_per_step")}
            if base is not None:
                b_at, b_end = _psnr_at(base, at), float(base["psnr"][-1])
                row[f"gain@{at}"] = None if b_at is None or row[f"psnr@{at}"] is None else row[f"psnr@{at}"] - b_at
                row["gain@end"] = row["psnr@end"] - b_end
                row["to_base_end"] = steps_to_reach(curve, b_end)
            rows.append(row)
    summary: list[dict[str, Any]] = []
    for vname in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == vname and "gain@end" in r]
        if not mine:
            continue
        mean = lambda key: (float(np.mean([r[key] for r in mine])) if all(r[key] is not None for r in mine)  # noqa: E731
                            else None)
        summary.append({"variant": vname, "images": len(mine), f"psnr@{at}": mean(f"psnr@{at}"),
                        "psnr@end": mean("psnr@end"), f"gain@{at}": mean(f"gain@{at}"), "gain@end": mean("gain@end"),
                        "to_base_end": [r["to_base_end"] for r in mine]})
    return rows, summary


def merge(paths: list[str], at: int) -> dict[str, Any]:
    """Join ``--variants`` results (per image, curves by variant) and print the ablation summary."""
    by_image: dict[str, dict[str, Any]] = {}
    configs: dict[str, Any] = {}
    for path in paths:
        doc = json.loads(Path(path).read_text())
        configs.update(doc.get("presets") or {})
        for entry in doc["per_image"]:
            slot = by_image.setdefault(entry["image"], {**entry, "curves": {}})
            slot["curves"].update(entry["curves"])
    per_image = list(by_image.values())
    rows, summary = ablation_summary(per_image, at)
    print(format_table(rows))
    print()
    print(format_table(summary))
    return {"mode": "variants-merged", "merged": [str(p) for p in paths], "at": at, "variant_configs": configs,
            "rows": rows, "summary": summary, "per_image": per_image}


def _image_files(args) -> tuple[list[Path], str, str]:
    root = data_root(args.data)
    folder = photo_folders(root, ["photos-768"])[0] if root else EXAMPLES
    note = ""
    if root is None:
        note = f"no data folder (--data, ${DATA_ENV}) found: using the example photos shipped in {EXAMPLES}"
        print(note)
    files = sorted(folder.glob("*.png"))
    if getattr(args, "only", None):
        wanted = {name.strip() for name in args.only.split(",") if name.strip()}
        files = [f for f in files if f.name in wanted or f.stem in wanted]
    n = args.n_images if args.n_images is not None else (2 if args.quick else None)
    if n is not None:
        files = files[:n]
    if not files:
        raise SystemExit(f"no PNG images in {folder}")
    return files, str(folder), note


def _load(path: Path, downscale: int) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if downscale > 1:
            im = im.resize((im.width // downscale, im.height // downscale), Image.LANCZOS)
        return np.asarray(im, dtype=np.uint8).copy()


def _evaluate(g, image: np.ndarray, backend: str) -> tuple[float, float]:
    from ..fitting.metrics import psnr, ssim  # lazy: fitting pulls in numba; keeps --help fast

    u8 = render_uint8(g, image.shape[0], image.shape[1], backend)
    return psnr(u8, image), ssim(u8, image)


def run_curve(image: np.ndarray, g0, config, backend: str, eval_every: int) -> dict[str, Any]:
    """Fit from ``g0``; PSNR/SSIM of the decoded render at step 0 and after every ``eval_every`` steps.

    Returns:
        (curve, fitted Gaussians); the curve is a dict: steps [K] (number of updates), psnr [K], ssim [K],
        fit_seconds [K] (loop time without the evaluations), seconds_per_step.
    """
    from ..fitting import fit  # lazy: fitting pulls in numba; keeps --help fast

    p0, s0 = _evaluate(g0, image, backend)
    curve: dict[str, Any] = {"steps": [0], "psnr": [p0], "ssim": [s0], "fit_seconds": [0.0]}
    spent = [0.0]

    def progress(step: int, info: dict) -> None:
        t = time.perf_counter()
        p, s = _evaluate(info["gaussians"](), image, backend)
        curve["steps"].append(step)
        curve["psnr"].append(p)
        curve["ssim"].append(s)
        curve["fit_seconds"].append(info["seconds"] - spent[0])
        spent[0] += time.perf_counter() - t

    cfg = replace(config, log_every=eval_every)
    fitted, stats = fit(g0, image, cfg, backend=backend, progress=progress)
    curve["seconds_per_step"] = (stats["seconds"] - spent[0]) / max(1, cfg.steps)
    return curve, fitted


def steps_to_reach(curve: dict[str, Any], target: float) -> int | None:
    """First evaluated step whose PSNR is >= target (None if never)."""
    for step, p in zip(curve["steps"], curve["psnr"]):
        if p >= target:
            return int(step)
    return None


def step_cost(image: np.ndarray, g, backend: str, lambda_l1: float, repeats: int = 10) -> dict[str, float]:
    """Seconds of one training step's parts on Gaussians ``g``, through the fit's own loss path (windows, fused
    L1 + SSIM kernel on CPU): render forward, loss value and gradient, render backward (mean of ``repeats``
    after one warm-up round). The fit's optimiser step and parameter map are not in it (the fit's own
    seconds per step, beside it in the results, has everything)."""
    from ..fitting import FitConfig  # lazy: fitting pulls in numba; keeps --help fast
    from ..fitting.loss import l1_ssim_loss
    from ..fitting.optimize import loss_windows, target_tensor
    from ..fitting.ssim_def import HALO

    name = resolve_backend(backend)
    device = backend_device(name)
    fn = get_backend(name)
    h, w = image.shape[:2]
    wins = loss_windows(target_tensor(image, device), FitConfig().tile_size)
    n_l1, n_map = 3.0 * h * w, 3.0 * (h - HALO) * (w - HALO)
    leaves = [t.to(device).detach().requires_grad_() for t in g.tensors()]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    parts = {"render_forward_s": 0.0, "loss_s": 0.0, "render_backward_s": 0.0}
    for i in range(repeats + 1):
        for win in wins:
            target, st = win.target()
            shifted = Gaussians(*leaves).shifted(float(win.x0), float(win.y0)).tensors()
            sync()
            t0 = time.perf_counter()
            img = fn(*shifted, win.ry1 - win.y0, win.rx1 - win.x0)
            sync()
            t1 = time.perf_counter()
            x = img.detach().requires_grad_()
            loss, *_ = l1_ssim_loss(x, target, st, (win.y1 - win.y0, win.x1 - win.x0), lambda_l1 / n_l1,
                                    (1.0 - lambda_l1) / n_map)
            loss.backward()
            sync()
            t2 = time.perf_counter()
            img.backward(x.grad)
            sync()
            t3 = time.perf_counter()
            if i:  # the first round warms up (compilation, allocations)
                parts["render_forward_s"] += (t1 - t0) / repeats
                parts["loss_s"] += (t2 - t1) / repeats
                parts["render_backward_s"] += (t3 - t2) / repeats
        for leaf in leaves:
            leaf.grad = None
    parts["parts_s"] = sum(parts.values())
    return parts


def run(args) -> dict[str, Any]:
    from ..fitting import FitConfig  # lazy: fitting pulls in numba; keeps --help fast
    from ..fitting.config import LR_PRESETS  # lazy: fitting pulls in numba; keeps --help fast
    from ..init import InitConfig, initialize  # lazy: init pulls in numba; keeps --help fast

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.merge:
        return merge(args.merge, args.at)
    files, folder, note = _image_files(args)
    steps = args.steps if args.steps is not None else (400 if args.quick else 1000)
    targets = [float(t) for t in args.targets.split(",") if t.strip()]
    backend = resolve_backend(args.backend)
    base = FitConfig(steps=steps)
    if args.variants:
        variants = {spec.strip(): (variant_config(spec, steps), "smart") for spec in args.variants.split(",")
                    if spec.strip()}
    elif args.lr_sweep:
        names = args.presets.split(",") if args.presets else list(LR_PRESETS)
        variants = {name: (base.with_preset(name), "smart") for name in names}
    else:
        variants = {"smart": (base, "smart"), "random": (base, "random")}

    per_image: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    cost = None
    for path in files:
        image = _load(path, args.downscale)
        h, w = image.shape[:2]
        n = n_gaussians_for_cr(h, w, args.cr)
        entry: dict[str, Any] = {"image": path.name, "height": h, "width": w, "n_gaussians": n, "curves": {}}
        for vname, (cfg, method) in variants.items():
            g0 = initialize(image, n, InitConfig(method=method), seed=args.seed)
            curve, fitted = run_curve(image, g0, cfg, backend, args.eval_every)
            if args.step_cost and cost is None:
                cost = step_cost(image, fitted, backend, cfg.lambda_l1)
                cost.update(image=path.name, height=h, width=w, n_gaussians=n, backend=backend, after_steps=steps,
                            fit_s_per_step=curve["seconds_per_step"])
            entry["curves"][vname] = curve
            row = {"image": path.name[:24], "variant": vname, "psnr0": curve["psnr"][0],
                   f"psnr@{steps}": curve["psnr"][-1], f"ssim@{steps}": curve["ssim"][-1],
                   "s/step": curve["seconds_per_step"]}
            for t in targets:
                row[f"to{t:g}dB"] = steps_to_reach(curve, t)
            rows.append(row)
            print(format_table([row]), flush=True)
        per_image.append(entry)

    summary: dict[str, Any] = {}
    for vname in variants:
        summary[vname] = {
            "mean_psnr_final": float(np.mean([e["curves"][vname]["psnr"][-1] for e in per_image])),
            "mean_ssim_final": float(np.mean([e["curves"][vname]["ssim"][-1] for e in per_image])),
            "mean_psnr_initial": float(np.mean([e["curves"][vname]["psnr"][0] for e in per_image])),
            "mean_seconds_per_step": float(np.mean([e["curves"][vname]["seconds_per_step"] for e in per_image])),
        }
    ablation = None
    if args.variants:
        ab_rows, ab_summary = ablation_summary(per_image, args.at)
        ablation = {"rows": ab_rows, "summary": ab_summary}
        if ab_summary:
            print()
            print(format_table(ab_summary))
    elif not args.lr_sweep:
        ratios: dict[str, Any] = {}
        for t in targets:
            pairs = [(steps_to_reach(e["curves"]["smart"], t), steps_to_reach(e["curves"]["random"], t))
                     for e in per_image]
            vals = [s / r for s, r in pairs if s is not None and r is not None and r > 0]
            ratios[f"{t:g}"] = {"smart_steps": [p[0] for p in pairs], "random_steps": [p[1] for p in pairs],
                                "mean_smart_over_random": float(np.mean(vals)) if vals else None}
        summary["steps_ratio_smart_over_random"] = ratios
    print()
    print(format_table(rows))
    print()
    print(format_table([{"variant": k, **v} for k, v in summary.items() if isinstance(v, dict) and
                        "mean_psnr_final" in v]))
    if cost:
        print(f"\nstep cost on {cost['image']} ({cost['width']}x{cost['height']}, N={cost['n_gaussians']}, backend "
              f"{backend}, {applied().cpus} CPUs) after {steps} steps: fit {cost['fit_s_per_step'] * 1e3:.1f} "
              f"ms/step; render forward {cost['render_forward_s'] * 1e3:.1f} ms, L1 + SSIM value and gradient "
              f"{cost['loss_s'] * 1e3:.1f} ms, render backward {cost['render_backward_s'] * 1e3:.1f} ms")
    return {"images": "real", "image_folder": folder, "note": note,
            "mode": "variants" if args.variants else "lr-sweep" if args.lr_sweep else "init", "cr": args.cr, "steps": steps,
            "eval_every": args.eval_every, "torch_threads": torch.get_num_threads(), "downscale": args.downscale,
            "backend": backend,
            "targets_db": targets, "fit_config": base.to_dict(),
            "presets": {k: v[0].to_dict() for k, v in variants.items()} if args.lr_sweep or args.variants else None,
            "ablation": ablation,
            "rows": rows, "summary": summary, "per_image": per_image, "step_cost": cost,
            "peak_rss_mb": peak_rss_mb()}
