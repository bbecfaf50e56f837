"""One image in, one record out, and back: the single-image codec.

Data flows one way: image -> feature-smart init -> fit (render backend) -> quantise + encode record;
and back: record -> decode -> render (in strips, bounded memory) -> uint8 image.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Callable

import numpy as np
import torch

from .codec import CodecConfig, RecordMeta, decode_record, encode_record, read_meta
from .codec.limits import UNLIMITED, DecodeLimits, check_render, output_size
from .codec.record import FORMAT_VERSION, color_grid, shape_grid, snap_means
from .config import EncodeConfig
from .errors import ConfigError, RecordError
from .fitting import fit
from .fitting.metrics import psnr, quality
from .fitting.optimize import image_loss
from .fitting.relocate import victims
from .fitting.rounding import round_colors, round_shapes
from .init import TileWeightsCache, initialize
from .io.images import load_image
from .model import Gaussians, n_gaussians_for_cr
from .raster import backend_device, resolve_backend
from .raster.pixels import render_uint8
from .stages import Stages

#: Rows per strip are chosen so one float32 strip stays under this many bytes while decoding.
STRIP_BYTES = 64 * 2**20

ImageLike = str | os.PathLike | bytes | np.ndarray


def _as_pixels(image: ImageLike, max_pixels: int) -> tuple[np.ndarray, tuple[str, ...]]:
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ConfigError(f"an image array must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
        return np.ascontiguousarray(image), ()
    loaded = load_image(image, max_pixels=max_pixels)
    return loaded.pixels, tuple(loaded.conversions)


def encode_image(
    image: ImageLike,
    *,
    cr: float | None = None,
    steps: int | None = None,
    init: str | None = None,
    seed: int | None = None,
    backend: str = "auto",
    config: EncodeConfig | None = None,
    progress: Callable[[int, dict], None] | None = None,
    checkpoint=None,
) -> tuple[bytes, dict[str, Any]]:
    """Compress one image into a record.

    Args:
        image: a path, encoded image bytes, or a uint8 array [H, W, 3].
        cr, steps, init, seed: shortcuts overriding ``config`` (nominal CR, fit steps, "smart"|"random", seed).
        backend: render backend for fitting (``auto``, ``cpu``, ``torch``, ``cuda``).
        config: the full :class:`EncodeConfig` (defaults when None).
        progress: called as ``progress(step, info)`` while fitting.
        checkpoint: a :class:`~smartsplat_dist.fitting.checkpoint.Checkpointer`: the fit resumes from its
            checkpoint and saves new ones (see :func:`~smartsplat_dist.fitting.optimize.fit`).
    Returns:
        (record bytes, stats) where stats has height, width, n_gaussians, bytes, bytes_per_gaussian, nominal_cr,
        rate (``config.rate``: budget mode initialises twice, once to price a Gaussian, computing the
        sampling weights once), real_cr, psnr, ssim (of the decoded record, computed on the render device), psnr_unquantized (the
        unquantised Gaussians at the fit's last loss pass: no extra render), steps, seconds, the split
        read/init/fit/encode/decode/metrics_seconds, peak_rss_mb (per stage, where the OS reports it),
        codec, conversions.
    """
    config = (config or EncodeConfig()).with_overrides(cr=cr, steps=steps, init=init, seed=seed)
    backend = resolve_backend(backend)

    stages = Stages()
    with stages("read"):
        pixels, conversions = _as_pixels(image, config.max_pixels)
    height, width = pixels.shape[:2]
    budget = int(3 * height * width // config.cr)
    n = n_gaussians_for_cr(height, width, config.cr)
    with stages("init"):
        cache = TileWeightsCache() if config.rate == "budget" else None  # the second init reuses the weights
        gaussians = initialize(pixels, n, config.init, seed=config.seed, weights_cache=cache)
        if config.rate == "budget":
            n = _n_for_budget(gaussians, height, width, config, budget)
            if n != len(gaussians):
                gaussians = initialize(pixels, n, config.init, seed=config.seed, weights_cache=cache)
        del cache
    meta = RecordMeta(height=height, width=width, n=n, rate=config.rate, nominal_cr=float(config.cr))
    quantizer = qat_quantizer(meta, config, budget if config.rate == "budget" else None)
    with stages("fit"):
        fitted, fit_stats = fit(gaussians, pixels, config.fit, backend=backend, progress=progress,
                                quantizer=quantizer, checkpoint=checkpoint, final_psnr=False)
        del gaussians
        if quantizer is not None:
            fitted = quantizer.snap(fitted)

    budget_or_none = budget if config.rate == "budget" else None
    record, codec = _record_of(fitted, meta, pixels, config, backend, budget_or_none, stages)
    pruning: dict[str, Any] = {}
    if (budget_or_none is not None and config.prune_gap_db >= 0 and finetune_steps(config) > 0 and n > 0
            and fit_stats.get("psnr_last_step")):
        record, codec, pruning = _prune_while_it_pays(record, codec, fitted, meta, pixels, config, backend,
                                                      budget, fit_stats["psnr_last_step"], stages)
        n = int(pruning["n_gaussians"])
    with stages("decode"):
        decoded = decode_image(record, backend=backend, limits=UNLIMITED)  # our own record: trusted
    with stages("metrics"):
        scores = quality(decoded, pixels, device=backend_device(backend))  # on CPU: the compiled float64 kernel
        del decoded
    seconds = stages.total()
    stats = {
        "height": height,
        "width": width,
        "n_gaussians": n,
        "bytes": len(record),
        "bytes_per_gaussian": len(record) / n,
        "nominal_cr": config.cr,
        "rate": config.rate,
        "real_cr": 3 * height * width / len(record),
        "psnr": scores["psnr"],
        "ssim": scores["ssim"],
        "psnr_unquantized": fit_stats.get("psnr_last_step"),
        "steps": int(fit_stats.get("steps", config.fit.steps)),
        "steps_run": int(fit_stats.get("steps_run", config.fit.steps)),
        "seconds": seconds,
        "read_seconds": stages.seconds["read"],
        "init_seconds": stages.seconds["init"],
        "fit_seconds": stages.seconds["fit"],
        "encode_seconds": stages.seconds["encode"],
        "finetune_seconds": stages.seconds["finetune"],
        "prune_seconds": stages.seconds.get("prune", 0.0),
        "prune": pruning,
        "decode_seconds": stages.seconds["decode"],
        "metrics_seconds": stages.seconds["metrics"],
        "peak_rss_mb": dict(stages.peak_rss_mb),
        "backend": backend,
        "codec": codec.to_dict(),
        "record_version": FORMAT_VERSION,
        "conversions": list(conversions),
    }
    return record, stats


class QATQuantizer:
    """The fit's quantiser in its last ``FitConfig.qat_steps`` steps: the means fake-quantised (straight-through)
    on the record's position grid, with oscillation freezing.

    Straight-through gradients do not see the grid, so a mean whose best place lies between two grid points is
    pushed across and back step after step (``pipelines/qat_oscillation.py``: a third of the Gaussians move at
    every step, and most of those return to a point they held). A Gaussian whose quantised mean comes back to
    the point it held two steps before is held there for the rest of the fit, and :meth:`snap` puts the fitted
    means on those points, which the record then stores. Scales, rotations and colours stay float in the loop
    (with the quantiser on them too the fit lost more than it won); the fine-tunes refit them on the record's
    grid after rate control.

    The grid is that of the steps the record will use: with a ``budget``, those rate control picks for the
    Gaussians at the first QAT step (the final encode picks again; it lands on the same steps unless the
    Gaussians' bytes moved across a bisection boundary); without, the codec's own. The held points live in this
    object only: a fit resumed from a checkpoint inside its QAT steps starts holding again.
    """

    def __init__(self, meta: RecordMeta, codec: CodecConfig, budget: int | None) -> None:
        self._meta, self._codec, self._budget = meta, codec, budget
        self._chosen: CodecConfig | None = None
        self._held: torch.Tensor | None = None  # [N] bool
        self._value = self._prev = self._prev2 = None  # [N, 2] each

    def _points(self, g: Gaussians) -> torch.Tensor:
        """[N, 2] the means quantised on the record's grid (held ones not applied), on g's device."""
        if self._chosen is None:
            self._chosen = self._codec if self._budget is None else \
                _encode_within_budget(g.detach().to("cpu"), self._meta, self._codec, self._budget)[1]
        return snap_means(g, self._meta, self._chosen)

    def _apply_held(self, q: torch.Tensor) -> torch.Tensor:
        return q if self._held is None else torch.where(self._held[:, None], self._value, q)

    def __call__(self, g: Gaussians) -> Gaussians:
        q = self._points(g)
        if self._held is None:
            self._held, self._value = torch.zeros(len(q), dtype=torch.bool, device=q.device), q.clone()
        elif self._prev2 is not None:
            back = (q == self._prev2).all(1) & (q != self._prev).any(1) & ~self._held
            self._value[back] = q[back]
            self._held |= back
        self._prev2, self._prev = self._prev, q
        means = self._apply_held(q)
        return Gaussians(g.means + (means - g.means).detach(), g.scales, g.rotations, g.colors)

    @property
    def n_held(self) -> int:
        return int(self._held.sum()) if self._held is not None else 0

    def snap(self, g: Gaussians) -> Gaussians:
        """``g`` with its means on the quantiser's points (held ones held); ``g`` itself if QAT never ran."""
        if self._held is None:
            return g
        return Gaussians(self._apply_held(self._points(g)), g.scales, g.rotations, g.colors)


def qat_quantizer(meta: RecordMeta, config: EncodeConfig, budget: int | None) -> QATQuantizer | None:
    """The ``fit(quantizer=...)`` of the last ``config.fit.qat_steps`` steps (None when 0): a
    :class:`QATQuantizer` on the steps the record will use."""
    if config.fit.qat_steps <= 0:
        return None
    return QATQuantizer(meta, config.codec, budget)


#: The fine-tunes' learning rates, as a fraction of the fit's (measured on the colour fine-tune before the ramp:
#: at 1000 steps, 768x512, 0.3x and 1x gained alike, +0.17-0.42 dB at CR 50 and 100; on a 45 dB crop 1x lost
#: 0.04 dB where 0.3x gained 0.2).
FINETUNE_LR_SCALE = 0.3


def finetune_steps(config: EncodeConfig) -> int:
    """Steps of each fine-tune: ``config.color_finetune_steps``, at most 5% of the fit's steps (where it was
    measured: 50 after 1000), so a short fit is not outlasted by its fine-tunes."""
    return min(config.color_finetune_steps, config.fit.steps // 20)


#: A fine-tuned record over the budget is encoded again with the colour step up to 2**(this/16) coarser.
FINETUNE_COARSER_TRIES = 4


#: The fine-tunes ramp their learning rates up over the first 1/this of their steps (a fresh Adam's first steps
#: move every parameter by its learning rate: measured 40.2 -> 37.2 dB in one step on a converged fit).
FINETUNE_WARMUP_DIV = 2


#: The shape fine-tune is kept where it raised the PSNR of its loss passes by at least this (dB): its result is
#: quantised again, which can cost a few hundredths (measured -0.14 dB after a +0.03 dB gain on a 200-Gaussian fit).
SHAPES_MIN_GAIN_DB = 0.05


def _tune(g: Gaussians, pixels: np.ndarray, config: EncodeConfig, backend: str, groups: tuple[str, ...],
          min_gain: float = 0.0) -> Gaussians | None:
    """``g`` fitted again for :func:`finetune_steps` steps, only the parameter ``groups`` (of "scales",
    "rotations", "colors"; the means stay) at :data:`FINETUNE_LR_SCALE` times the fit's learning rates with a
    ramp, none of the fit's once-per-fit tricks (relocation, QAT, colour solve or warm-up; the scale cap only
    where the scales move); None where that did not raise the PSNR of its loss passes by more than ``min_gain``
    dB (the first pass is before any update)."""
    fc = config.fit
    rate = {name: getattr(fc, f"lr_{name}") * FINETUNE_LR_SCALE if name in groups else 0.0
            for name in ("scales", "rotations", "colors")}
    steps = finetune_steps(config)
    tune_config = dataclasses.replace(
        fc, steps=steps, lr_means=0.0, lr_scales=rate["scales"], lr_rotations=rate["rotations"],
        lr_colors=rate["colors"], relocate_every=0, qat_steps=0, color_solve_iters=0, color_warmup_steps=0,
        max_scale=fc.max_scale if "scales" in groups else 0.0, log_every=1,
        lr_warmup_steps=steps // FINETUNE_WARMUP_DIV)
    first: list[float] = []
    tuned, stats = fit(g, pixels, tune_config, backend=backend, final_psnr=False,
                       progress=lambda step, info: first.append(info["psnr"]) if step == 1 else None)
    return tuned if first and stats["psnr_last_step"] > first[0] + min_gain else None


def _finetune_shapes(record: bytes, codec: CodecConfig, fitted: Gaussians, meta: RecordMeta, pixels: np.ndarray,
                     config: EncodeConfig, backend: str, budget: int | None,
                     version: int = FORMAT_VERSION) -> tuple[bytes, CodecConfig]:
    """(record, codec settings) after the fitted Gaussians' scales, rotations and colours are fitted again with
    their means fixed on the record's position grid (the means cost the most PSNR when quantised: measured 0.29 dB
    of 0.6 at 1000 steps), their scales and rotations rounded onto the record's grid by :func:`_round_shapes`
    (also where the fine-tune did not pay), then encoded on the same steps; the input record where neither helped
    or the result is over ``budget``. The fine-tune, measured after the colour fine-tune: +0.01-0.08 dB at 1000
    steps, +0.10 at 5000, +0.21 on a DIV16K-like crop (pipelines/finetune_gain.py)."""
    g = fitted.detach().to("cpu")
    snapped = Gaussians(snap_means(g, meta, codec, version), g.scales, g.rotations, g.colors)
    tuned = _tune(snapped, pixels, config, backend, ("scales", "rotations", "colors"), SHAPES_MIN_GAIN_DB)
    rounded = _round_shapes(snapped if tuned is None else tuned, meta, codec, pixels, config, backend, version)
    if rounded is None and tuned is None:
        return record, codec
    out = encode_record(tuned if rounded is None else rounded, meta, codec, version=version)
    return (out, codec) if budget is None or len(out) <= budget else (record, codec)


#: Iterations of the learned rounding of the tuned log-scales, and again of the rotations
#: (:func:`~smartsplat_dist.fitting.rounding.round_shapes`, the colours fitted along at the fit's colour learning
#: rate; 0: nearest rounding). Measured on 1000-step fits of photos-768 images (README, "Learned rounding").
SHAPE_ROUNDING_ITERS = 50


def _round_shapes(g: Gaussians, meta: RecordMeta, codec: CodecConfig, pixels: np.ndarray, config: EncodeConfig,
                  backend: str, version: int) -> Gaussians | None:
    """g (means on the record's grid) with its scales and rotations rounded onto the record's grid by learned
    rounding, the colours fitted along, where that lowers the squared error of the fit's loss pass against nearest
    rounding; else None (the encoder rounds g to the nearest level)."""
    iters = min(SHAPE_ROUNDING_ITERS, finetune_steps(config))
    if iters <= 0:
        return None
    rounded, sse_nearest, sse_learned = round_shapes(g, *shape_grid(g, meta, codec, version),
                                                     image_loss(pixels, config.fit, backend), iters,
                                                     config.fit.lr_colors)
    return rounded if sse_learned < sse_nearest else None


def _finetune_colors(record: bytes, codec: CodecConfig, meta: RecordMeta, pixels: np.ndarray,
                     config: EncodeConfig, backend: str, budget: int | None,
                     version: int = FORMAT_VERSION) -> tuple[bytes, CodecConfig]:
    """(record, codec settings) with the colours fitted again on its own quantised geometry (see
    :attr:`EncodeConfig.color_finetune_steps`), where the fine-tune raised the PSNR of its own loss passes.
    Tuned colours may cost a few bytes more or less: over ``budget``, the colour step is made coarser by 2**(1/16)
    at a time, below the budget's window [budget / RATE_SLACK, budget] finer, up to
    :data:`FINETUNE_COARSER_TRIES` times (the geometry's integers do not depend on it); the input record and
    ``codec`` if none fits. The tuned colours are rounded onto the chosen grid by :func:`_round_colors`."""
    quantized, _ = decode_record(record, UNLIMITED)  # our own record: trusted
    tuned = _tune(quantized, pixels, config, backend, ("colors",))
    if tuned is None:
        return record, codec
    g = Gaussians(quantized.means, quantized.scales, quantized.rotations, tuned.colors)

    def encoded(k: int) -> tuple[bytes, CodecConfig]:
        tried = codec.replace(color_step=float(np.float32(codec.color_step * 2 ** (k / 16))))
        return encode_record(g, meta, tried, version=version), tried

    out, tried = encoded(0)
    if budget is not None and len(out) <= budget:
        for k in range(-1, -FINETUNE_COARSER_TRIES - 1, -1):  # under the window: a slightly finer colour step
            if len(out) * RATE_SLACK >= budget:
                break
            finer = encoded(k)
            if len(finer[0]) > budget:
                break
            out, tried = finer
    elif budget is not None:
        for k in range(1, FINETUNE_COARSER_TRIES + 1):  # over budget: a slightly coarser colour step
            out, tried = encoded(k)
            if len(out) <= budget:
                break
        else:
            return record, codec
    return _round_colors(out, tried, g, meta, pixels, config, backend, budget, version), tried


#: Iterations of the learned rounding of the tuned colours (:func:`~smartsplat_dist.fitting.rounding.round_colors`;
#: 0: nearest rounding). Measured on 1000-step fits of 5 photos-768 images at CR 50 and 100 (the colour fine-tune's
#: record against the same colours rounded by 50 iterations): +0.01 ... +0.12 dB, mean +0.06, bytes within 0.1%,
#: 3.5-5.5 s per 768x512 image (README, "Learned rounding of the tuned colours").
COLOR_ROUNDING_ITERS = 50


def _round_colors(record: bytes, codec: CodecConfig, g: Gaussians, meta: RecordMeta, pixels: np.ndarray,
                      config: EncodeConfig, backend: str, budget: int | None, version: int) -> bytes:
    """``record`` with g's (tuned) colours rounded onto its colour grid by learned rounding instead of to the
    nearest level, where that lowers the squared error of the fit's loss pass and keeps the record within
    ``budget``."""
    iters = min(COLOR_ROUNDING_ITERS, finetune_steps(config))
    if iters <= 0:
        return record
    lo, step = color_grid(g, meta, codec, version)
    colors, sse_nearest, sse_learned = round_colors(g, lo, step, image_loss(pixels, config.fit, backend), iters)
    if not sse_learned < sse_nearest:
        return record
    out = encode_record(Gaussians(g.means, g.scales, g.rotations, colors), meta, codec, version=version)
    return out if budget is None or len(out) <= budget else record


def _record_of(fitted: Gaussians, meta: RecordMeta, pixels: np.ndarray, config: EncodeConfig, backend: str,
               budget: int | None, stages: Stages) -> tuple[bytes, CodecConfig]:
    """(record, codec settings) of fitted Gaussians: rate control within ``budget`` (None: the codec's steps as
    they are), then the two fine-tunes."""
    with stages("encode"):
        if budget is not None:
            record, codec = _encode_within_budget(fitted.to("cpu"), meta, config.codec, budget)
        else:
            record, codec = encode_record(fitted.to("cpu"), meta, config.codec), config.codec
    with stages("finetune"):
        if finetune_steps(config) > 0 and meta.n > 0:
            record, codec = _finetune_shapes(record, codec, fitted, meta, pixels, config, backend, budget)
            record, codec = _finetune_colors(record, codec, meta, pixels, config, backend, budget)
    return record, codec


#: Each pruning round drops this share of the fit's N (the Gaussians with the smallest contribution,
#: ``fitting.relocate.contribution``). Measured with pipelines/prune_gain.py on the smoothest photo (Mountain,
#: CR 50, 1000 steps): 10% dropped +0.24 dB, 20% worse (record version 4); 10% +0.50, 20% +0.63 (version 3).
PRUNE_SHARE = 0.1
#: The Gaussians left after pruning are refitted (all parameters, at the fine-tunes' learning rates with a ramp)
#: for this share of the fit's steps.
PRUNE_REFIT_SHARE = 0.1
#: Pruning stops at this share of the fit's N.
PRUNE_FLOOR = 0.6


def _refit(g: Gaussians, pixels: np.ndarray, config: EncodeConfig, backend: str) -> Gaussians:
    """``g`` fitted again for :data:`PRUNE_REFIT_SHARE` of the fit's steps, every parameter at
    :data:`FINETUNE_LR_SCALE` times the fit's learning rates with a ramp, none of the once-per-fit tricks."""
    fc = config.fit
    steps = max(1, int(fc.steps * PRUNE_REFIT_SHARE))
    s = FINETUNE_LR_SCALE
    refit_config = dataclasses.replace(
        fc, steps=steps, lr_means=fc.lr_means * s, lr_scales=fc.lr_scales * s, lr_rotations=fc.lr_rotations * s,
        lr_colors=fc.lr_colors * s, relocate_every=0, qat_steps=0, color_solve_iters=0, color_warmup_steps=0,
        lr_warmup_steps=steps // FINETUNE_WARMUP_DIV, log_every=max(1, steps))
    return fit(g, pixels, refit_config, backend=backend, final_psnr=False)[0]


def _prune_while_it_pays(record: bytes, codec: CodecConfig, fitted: Gaussians, meta: RecordMeta,
                         pixels: np.ndarray, config: EncodeConfig, backend: str, budget: int,
                         psnr_unquantized: float, stages: Stages) -> tuple[bytes, CodecConfig, dict[str, Any]]:
    """Fewer Gaussians on finer steps where the budget's steps cost more than ``config.prune_gap_db``.

    While the best record so far decodes more than ``prune_gap_db`` dB below ``psnr_unquantized`` (the fit's):
    drop k times :data:`PRUNE_SHARE` of the fitted Gaussians (k = 1, 2, ..., least contribution first, down to
    :data:`PRUNE_FLOOR` of N), refit the rest (:func:`_refit`), make their record (:func:`_record_of`, the same
    budget) and keep it if it decodes better; stop at the first k that does not. Returns (record, codec
    settings, a summary: the N and decoded PSNR of every record tried, the N kept)."""
    device = backend_device(backend)

    def score(rec: bytes) -> float:
        with stages("prune"):
            return psnr(decode_image(rec, backend=backend, limits=UNLIMITED), pixels, device=device)

    n0 = meta.n
    best_psnr = score(record)
    tried = [{"n": n0, "psnr": best_psnr}]
    for k in range(1, int(round((1 - PRUNE_FLOOR) / PRUNE_SHARE)) + 1):
        if psnr_unquantized - best_psnr <= config.prune_gap_db:
            break
        n = max(1, int(round(n0 * (1 - k * PRUNE_SHARE))))
        keep = torch.ones(n0, dtype=torch.bool, device=fitted.means.device)
        keep[victims(fitted, n0 - n)] = False
        with stages("prune"):
            g = _refit(Gaussians(*(t.detach()[keep] for t in fitted.tensors())), pixels, config, backend)
        meta_n = dataclasses.replace(meta, n=n)
        candidate, candidate_codec = _record_of(g, meta_n, pixels, config, backend, budget, stages)
        candidate_psnr = score(candidate)
        tried.append({"n": n, "psnr": candidate_psnr})
        if candidate_psnr <= best_psnr:
            break
        record, codec, best_psnr, meta = candidate, candidate_codec, candidate_psnr, meta_n
    return record, codec, {"tried": tried, "n_gaussians": meta.n}


#: Budget mode: N = budget / (FIT_BYTES_GROWTH x the initialisation's bytes per Gaussian at the default steps).
#: Measured with the whole record path (rate control, fine-tunes, pruning; record version 5; pipelines/prune_gain.py
#: --growth, 1000 steps, 4 photos-768 at CR 50 and 100): mean record PSNR 33.57 / 33.72 / 33.81 / 33.70 dB at
#: 1.3 / 1.2 / 1.1 / 0.95 (README, "Rate control"). 1.1 puts N at 1.2-1.3x the paper's N there.
FIT_BYTES_GROWTH = 1.1
#: Budget mode keeps N within these multiples of the paper's N.
_N_RANGE = (0.5, 2.0)


#: The record version whose bytes price the initialisation's Gaussians for N: FIT_BYTES_GROWTH was measured with
#: version-3 prices. Version 4 prices an initialisation 5-7% higher (its colour steps are finer for the larger
#: Gaussians an initialisation is made of); priced in version 4, the 17-photo rd run got 5-7% fewer Gaussians and
#: lost 0.1-0.2 dB on textured photos (pipelines/results/session-2026-12-07d/rd-768-1000-17photos.json).
N_PRICE_VERSION = 3


def _n_for_budget(init: Gaussians, height: int, width: int, config: EncodeConfig, budget: int,
                  growth: float = FIT_BYTES_GROWTH) -> int:
    """N that the byte budget buys at the codec's default steps: bytes per Gaussian measured by encoding this
    image's initialisation ``init`` (the paper's N of them) in :data:`N_PRICE_VERSION`, times ``growth``
    (:data:`FIT_BYTES_GROWTH`; other values for measuring it)."""
    n0 = len(init)
    meta = RecordMeta(height=height, width=width, n=n0, rate="budget", nominal_cr=float(config.cr))
    per_gaussian = len(encode_record(init, meta, config.codec, version=N_PRICE_VERSION)) / n0 * growth
    lo, hi = (max(1, int(n0 * f)) for f in _N_RANGE)
    return int(min(hi, max(lo, budget / RATE_SLACK // per_gaussian),
                   height * width, DecodeLimits().max_gaussians))  # records stay within the default decode limits


#: Rate control: the quantisation steps are scaled by 2**e, e searched in this range (finer .. coarser).
_RATE_EXPONENTS = (-4.0, 5.0)
#: A record within [budget / RATE_SLACK, budget] bytes is accepted (real CR in [CR, 1.03 CR]).
RATE_SLACK = 1.03


def _scaled(codec: CodecConfig, e: float, mean_frac_bits: int | None = None) -> CodecConfig:
    f = 2.0 ** e
    k = int(min(8, max(0, round(codec.mean_frac_bits - e)))) if mean_frac_bits is None else mean_frac_bits
    f32 = lambda v: float(np.float32(v))  # noqa: E731  (the header stores float32: stats report what it holds)
    return codec.replace(mean_frac_bits=k, scale_step=f32(min(10.0, codec.scale_step * f)),
                         rotation_tolerance=f32(codec.rotation_tolerance * f), color_step=f32(min(1.0, codec.color_step * f)))


def _bisect_steps(g: Gaussians, meta: RecordMeta, codec: CodecConfig, budget: int, version: int,
                  mean_frac_bits: int | None = None):
    """Bisection on the exponent e of :func:`_scaled` (``mean_frac_bits`` pinned, else following e): (the
    largest record within ``budget`` found, the smallest record found), each (bytes, codec) or None."""
    lo, hi = _RATE_EXPONENTS
    best: tuple[bytes, CodecConfig] | None = None
    smallest: tuple[bytes, CodecConfig] | None = None
    for e in [0.0] + [None] * 14:
        e = (lo + hi) / 2 if e is None else e
        trial = _scaled(codec, e, mean_frac_bits)
        try:
            record = encode_record(g, meta, trial, version=version)
        except RecordError:  # a grid too fine for the data's range: go coarser
            lo = e
            continue
        if smallest is None or len(record) < len(smallest[0]):
            smallest = (record, trial)
        if len(record) <= budget:
            if best is None or len(record) > len(best[0]):
                best = (record, trial)
            if len(record) * RATE_SLACK >= budget:
                break
            hi = e
        else:
            lo = e
    return best, smallest


def _encode_within_budget(g: Gaussians, meta: RecordMeta, codec: CodecConfig, budget: int,
                          version: int = FORMAT_VERSION) -> tuple[bytes, CodecConfig]:
    """Encode so that the record spends its byte budget: real CR in [CR, 1.03 CR] where the steps allow.

    Bisection on one exponent e that scales every quantisation step by 2**e (the mean grid by whole octaves):
    bytes fall as e grows. Where one octave of the mean grid jumps over the window (it moves every Gaussian's
    position by one bit per axis: more than 3% of the record once Gaussians cost under about 8 bytes), the
    bisection runs again with the mean grid pinned one octave finer and the other steps coarser. Returns the
    largest record (of ``version``) within ``budget`` found (else the smallest record) and the codec settings it
    used (the record stores them)."""
    best, smallest = _bisect_steps(g, meta, codec, budget, version)
    if best is not None and len(best[0]) * RATE_SLACK < budget and best[1].mean_frac_bits < 8:
        finer, _ = _bisect_steps(g, meta, codec, budget, version, best[1].mean_frac_bits + 1)
        if finer is not None and len(finer[0]) > len(best[0]):
            best = finer
    if best is not None:
        return best
    if smallest is None:
        raise RecordError("cannot encode: no quantisation step fits the record's value ranges")
    return smallest


def decode_image(record: bytes, scale: float = 1.0, backend: str = "auto",
                 limits: DecodeLimits | None = None) -> np.ndarray:
    """Decode a record and render it.

    Args:
        record: bytes from :func:`encode_image` (checked: a damaged record raises RecordError).
        scale: output size factor (Gaussians are resolution free): output is round(H·scale) × round(W·scale).
        backend: render backend.
        limits: what the record may ask for (default :func:`~smartsplat_dist.codec.limits.current_limits`):
            header, output size and render cost are checked before anything is allocated or rendered.
    Returns:
        uint8 [round(H·scale), round(W·scale), 3].
    Raises:
        ConfigError for a scale that is not a finite number > 0; RecordError for a damaged record or one over
        ``limits``.
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or not scale > 0:
        raise ConfigError(f"scale must be a finite number > 0, got {scale}")

    meta = read_meta(record, limits)
    height, width = output_size(meta.height, meta.width, scale, limits)  # before decoding the streams
    gaussians, meta = decode_record(record, limits)
    gaussians = gaussians.scaled(scale) if scale != 1.0 else gaussians
    check_render(gaussians, height, width, limits)
    return render_uint8(gaussians.to("cpu"), height, width, resolve_backend(backend), strip_bytes=STRIP_BYTES)
