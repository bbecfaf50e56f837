"""Shared by the per-photo measurement scripts (rate_sweep.py, finetune_gain.py, coding_gain.py): their common
flags, the photos they read, and the budget-mode fit. Not a public module; the scripts beside it import it."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from smartsplat_dist import api
from smartsplat_dist.codec import RecordMeta
from smartsplat_dist.config import EncodeConfig
from smartsplat_dist.fitting import FitConfig, fit
from smartsplat_dist.init import InitConfig, initialize
from smartsplat_dist.io.images import load_image
from smartsplat_dist.model import Gaussians, n_gaussians_for_cr


def photo_parser(doc: str, out: str, fits: bool = True) -> argparse.ArgumentParser:
    """A parser with --data, --images, --cr, --steps, --backend and --out (default ``out``); with ``fits``, also
    --qat-steps and --fits (for scripts that fit with :func:`budget_fit`)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--data", required=True, help="folder of photographs")
    p.add_argument("--images", nargs="+", required=True, help="file names inside --data")
    p.add_argument("--cr", type=float, nargs="+", default=[50.0, 100.0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--backend", default="cpu")
    p.add_argument("--out", default=out)
    if not fits:
        return p
    p.add_argument("--qat-steps", type=int, default=0, help="the fit's last steps with the quantiser in the loop")
    p.add_argument("--growth", type=float, default=api.FIT_BYTES_GROWTH,
                   help="budget mode's N = budget / (1.03 x GROWTH x the initialisation's bytes per Gaussian) "
                        "(default: %(default)s, api.FIT_BYTES_GROWTH; smaller: more Gaussians)")
    p.add_argument("--fits", help="folder of saved fits (NAME-crCR-STEPS.npz): reused where present, new fits saved "
                                  "there (to measure codec changes without fitting again)")
    return p


def photos(args) -> Iterator[tuple[str, np.ndarray]]:
    """(file name, [H, W, 3] uint8 pixels) of every ``--images`` file in ``--data``."""
    for name in args.images:
        yield name, load_image(Path(args.data) / name).pixels


def budget_fit(pixels: np.ndarray, cr: float, steps: int, backend: str, fits: str | None = None,
               name: str = "", qat_steps: int = 0, growth: float = api.FIT_BYTES_GROWTH
               ) -> tuple[Gaussians, dict, RecordMeta, int]:
    """What ``encode_image`` fits in budget mode, before the record: (Gaussians, fit stats, meta, byte budget).

    ``fits``: a folder where the fit of ``name`` at this CR and step count is read from if saved there (numpy
    arrays, no pickle), else saved to. ``qat_steps``: the last steps with the quantiser in the loop. ``growth``:
    the N pricing's ``api.FIT_BYTES_GROWTH``."""
    h, w = pixels.shape[:2]
    budget = int(3 * h * w // cr)
    qat = f"-qat{qat_steps}" if qat_steps else ""
    qat += f"-growth{growth:g}" if growth != api.FIT_BYTES_GROWTH else ""
    saved = Path(fits) / f"{Path(name).stem}-cr{cr:g}-{steps}{qat}.npz" if fits else None
    if saved is not None and saved.exists():
        with np.load(saved, allow_pickle=False) as z:
            g = Gaussians(*(torch.from_numpy(z[k]) for k in ("means", "scales", "rotations", "colors")))
            stats = {"psnr_last_step": float(z["psnr_last_step"])}
    else:
        config = EncodeConfig(cr=cr, fit=FitConfig(steps=steps, qat_steps=qat_steps))
        n = api._n_for_budget(initialize(pixels, n_gaussians_for_cr(h, w, cr), InitConfig(), seed=0), h, w,
                              config, budget, growth)
        meta = RecordMeta(height=h, width=w, n=n, rate="budget", nominal_cr=cr)
        quantizer = api.qat_quantizer(meta, config, budget)
        g, stats = fit(initialize(pixels, n, InitConfig(), seed=0), pixels, config.fit, backend=backend,
                       quantizer=quantizer, final_psnr=False)
        if quantizer is not None:
            g = quantizer.snap(g)
        if saved is not None:
            saved.parent.mkdir(parents=True, exist_ok=True)
            np.savez(saved, **{k: t.detach().cpu().numpy() for k, t in zip(
                ("means", "scales", "rotations", "colors"), g.tensors())}, psnr_last_step=stats["psnr_last_step"])
    return g, stats, RecordMeta(height=h, width=w, n=len(g), rate="budget", nominal_cr=cr), budget
