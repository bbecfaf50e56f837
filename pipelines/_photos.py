"""Shared by the per-photo measurement scripts (rate_sweep.py, finetune_gain.py, coding_gain.py, and the probes under
results/): their common flags, the photos they read, the budget-mode fit and the encoder's record path on it. Not a
public module; the scripts beside it import it."""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from smartsplat_dist import api
from smartsplat_dist.codec import CodecConfig, RecordMeta
from smartsplat_dist.codec.limits import UNLIMITED
from smartsplat_dist.config import EncodeConfig
from smartsplat_dist.fitting import FitConfig, fit, psnr
from smartsplat_dist.fitting.optimize import image_loss
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


@dataclass
class Fitted:
    """One photo's budget-mode fit at one CR (:func:`budget_fit`, cpu backend), with what a probe of the record
    path needs. pixels: [H, W, 3] uint8; config: the encoder's settings for this CR and step count."""

    name: str
    cr: float
    pixels: np.ndarray
    g: Gaussians
    stats: dict
    meta: RecordMeta
    budget: int
    config: EncodeConfig

    def score(self, record: bytes) -> float:
        """PSNR (dB) of the record's decoded uint8 image."""
        return psnr(api.decode_image(record, backend="cpu", limits=UNLIMITED), self.pixels)

    def loss_psnr(self, g: Gaussians) -> float:
        """PSNR (dB) of g's [0, 1]-clamped float render, from the fit's loss pass."""
        h, w = self.pixels.shape[:2]
        return 10 * math.log10(3 * h * w / image_loss(self.pixels, self.config.fit, "cpu")(g)[2])

    def records(self, codec: CodecConfig = CodecConfig(), config: EncodeConfig | None = None
                ) -> list[tuple[bytes, CodecConfig]]:
        """The encoder's (record, codec settings) for this fit, without pruning: after rate control (starting from
        ``codec``), after the shape fine-tune, after the colour fine-tune (``config``: default ``self.config``)."""
        config = config or self.config
        rc = api._encode_within_budget(self.g, self.meta, codec, self.budget)
        shapes = api._finetune_shapes(*rc, self.g, self.meta, self.pixels, config, "cpu", self.budget)
        colors = api._finetune_colors(*shapes, self.meta, self.pixels, config, "cpu", self.budget)
        return [rc, shapes, colors]


def saved_fits(data: str, fits: str | None, pairs: Iterable[tuple[str, float]], steps: int,
               growth: float = api.FIT_BYTES_GROWTH) -> Iterator[Fitted]:
    """For each (file name in ``data``, CR): the photo and its ``steps``-step budget-mode fit (saved in / reused from
    ``fits``, see :func:`budget_fit`)."""
    for name, cr in pairs:
        px = load_image(Path(data) / name).pixels
        g, stats, meta, budget = budget_fit(px, float(cr), steps, "cpu", fits, name, 0, growth)
        yield Fitted(name, float(cr), px, g, stats, meta, budget, EncodeConfig().with_overrides(cr=cr, steps=steps))
