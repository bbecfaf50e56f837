"""Measurements of the version-1 codec (its bit depths and fake_quantize) on real photos: record size and the
PSNR the quantiser costs. Version 2 with rate control is measured by ``smartsplat bench rd``.

Run (reads photos-768/ of the data folder, ``--data`` or ``$SMARTSPLAT_BENCH_DATA``, or that folder's own
images; without one, the example photos shipped in the package; prints a table and returns the rows)::

    .venv/bin/python -m smartsplat_dist.bench.quantization --data DIR --limit 3 \
        --cr 50 --steps 300 --qat-steps 60

* ``measure_quantization_loss``: per image, smart init -> fit (``steps``) -> PSNR of the unquantised render
  vs the render of ``decode_record(encode_record(g))``; then ``qat_steps`` more steps with ``fake_quantize``
  in the loop and the decoded PSNR again (and, as the control, the same extra steps without the quantiser).
  PSNRs are of uint8 renders (clamped, rounded), as a decoder outputs them.
* ``measure_record_size``: bytes per Gaussian and encode / decode seconds for smart-init Gaussians of each
  image, and for a DIV16K-sized set (the image's Gaussians tiled 8 x 8: the density of a 16320-wide image at
  the same CR, ~1.5 M Gaussians at CR 50, each copy jittered so repeats cannot be exploited).

Measured (2026-12-01, CPU backend, 300 steps, CR 50, default CodecConfig, photos-768): quantise + decode cost
0.27 (Bamboo), 0.13 (Dragonfly), 0.39 (God-Rays), 0.40 (Mountain) dB, mean 0.30 dB, at 6.58 / 6.55 / 6.08 /
5.65 bytes per Gaussian (real CR 53-62). Short straight-through fine-tunes at 0.2x the learning rates did not
help: decoded PSNR after 60 QAT steps vs the fit quantised directly: Dragonfly +0.04 dB, God-Rays -0.39 dB;
Mountain, 40 steps with frozen ranges (FrozenQuantizer): 44.55 dB vs 45.15 dB for the same steps without the
quantiser, then quantised. So QAT is not needed (keep ``FitConfig.qat_steps = 0``).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..codec.config import CodecConfig
from ..codec.quantize import fake_quantize_v1 as fake_quantize
from ..codec.record import RecordMeta, decode_record, encode_record
from ..fitting import FitConfig, fit, psnr
from ..init import initialize
from ..io.images import load_image
from ..model import Gaussians, n_gaussians_for_cr
from ..raster.pixels import render_uint8
from .common import EXAMPLES, add_data_argument, data_root, photo_folders


def default_folder(data: str | None = None) -> Path:
    """photos-768/ of the data folder (or the folder itself), else the shipped example photos."""
    root = data_root(data)
    return photo_folders(root, ["photos-768"])[0] if root else EXAMPLES


def _images(folder: Path | str, limit: int | None) -> list[Path]:
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    return paths[:limit] if limit else paths


def measure_quantization_loss(
    images: Sequence[Path | str] | None = None, *, cr: float = 50, steps: int = 300, qat_steps: int = 60,
    config: CodecConfig = CodecConfig(), backend: str = "auto", seed: int = 0, qat_lr_scale: float = 0.2,
    log: Callable[[str], None] | None = print,
) -> list[dict]:
    """PSNR of fitted Gaussians before / after the record's quantisation, with and without a QAT fine-tune.

    Args:
        images: image paths (default: the first 3 of :func:`default_folder`).
        cr: nominal compression ratio (sets N = floor(3 H W / (7 CR))).
        steps: fit steps before quantising; qat_steps: extra steps with ``fake_quantize`` in the loop (0: skip).
        qat_lr_scale: the fine-tune (and its unquantised control) runs at the default learning rates times this
            (a fresh Adam at full rates jitters the parameters by more than a quantisation step).
    Returns:
        one dict per image: name, H, W, n, bytes, bytes_per_gaussian, real_cr, psnr_fit, psnr_quantized,
        loss_db, and with QAT: psnr_qat_quantized, psnr_control (same extra steps, unquantised), loss_qat_db.
    """
    paths = list(images) if images else _images(default_folder(), 3)
    rows = []
    for path in paths:
        img = load_image(path).pixels
        h, w = img.shape[:2]
        meta = RecordMeta(h, w)
        n = n_gaussians_for_cr(h, w, cr)
        t0 = time.perf_counter()
        g, _ = fit(initialize(img, n, seed=seed), img, FitConfig(steps=steps, log_every=max(1, steps)),
                   backend=backend)
        record = encode_record(g, meta, config, version=1)
        dec, _ = decode_record(record)
        row = {"name": Path(path).name, "H": h, "W": w, "n": n, "bytes": len(record),
               "bytes_per_gaussian": round(len(record) / n, 3), "real_cr": round(3 * h * w / len(record), 2),
               "psnr_fit": round(psnr(render_uint8(g, h, w, backend), img), 3),
               "psnr_quantized": round(psnr(render_uint8(dec, h, w, backend), img), 3)}
        row["loss_db"] = round(row["psnr_fit"] - row["psnr_quantized"], 3)
        if qat_steps:
            base = FitConfig()
            lrs = {k: getattr(base, k) * qat_lr_scale for k in ("lr_means", "lr_scales", "lr_rotations", "lr_colors")}
            ctl_cfg = FitConfig(steps=qat_steps, log_every=qat_steps, **lrs)
            qat_cfg = FitConfig(steps=qat_steps, qat_steps=qat_steps, log_every=qat_steps, **lrs)
            q = lambda x: fake_quantize(x, meta, config)  # noqa: E731
            g_qat, _ = fit(g, img, qat_cfg, backend=backend, quantizer=q)
            dec_qat, _ = decode_record(encode_record(g_qat, meta, config, version=1))
            g_ctl, _ = fit(g, img, ctl_cfg, backend=backend)
            row["psnr_qat_quantized"] = round(psnr(render_uint8(dec_qat, h, w, backend), img), 3)
            row["psnr_control"] = round(psnr(render_uint8(g_ctl, h, w, backend), img), 3)
            row["loss_qat_db"] = round(row["psnr_control"] - row["psnr_qat_quantized"], 3)
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        if log:
            log(str(row))
    return rows


def _tiled(g: Gaussians, h: int, w: int, k: int, seed: int = 0) -> Gaussians:
    """k x k jittered copies of g side by side: the density of a (k h) x (k w) image at the same CR.

    Each copy's means move by up to half a pixel, scales by ~10 %, colours by ~0.02 and rotations are
    re-drawn, so the entropy coder cannot exploit repeated copies.
    """
    gen = torch.Generator().manual_seed(seed)
    parts = []
    n = len(g)
    for j in range(k):
        for i in range(k):
            r = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
            z = lambda *shape: torch.randn(*shape, generator=gen)  # noqa: E731
            parts.append(Gaussians(g.means + torch.tensor([i * w, j * h]) + r(n, 2) - 0.5,
                                   g.scales * torch.exp(0.1 * z(n, 2)), r(n) * 3.1415927,
                                   g.colors + 0.02 * z(n, 3)))
    return Gaussians(*(torch.cat(ts).contiguous() for ts in zip(*(p.tensors() for p in parts))))


def measure_record_size(
    images: Sequence[Path | str] | None = None, *, cr: float = 50, config: CodecConfig = CodecConfig(),
    seed: int = 0, tile_16k: bool = True, log: Callable[[str], None] | None = print,
) -> list[dict]:
    """Bytes per Gaussian of smart-init Gaussians (and of a DIV16K-sized tiling of them), with timings."""
    paths = list(images) if images else _images(default_folder(), 3)
    rows = []
    for path in paths:
        img = load_image(path).pixels
        h, w = img.shape[:2]
        g = initialize(img, n_gaussians_for_cr(h, w, cr), seed=seed)
        cases = [(Path(path).name, g, h, w)]
        if tile_16k:
            k = max(1, round(16320 / w))
            cases.append((f"{Path(path).name} tiled {k}x{k} (DIV16K-sized)", _tiled(g, h, w, k), k * h, k * w))
        for name, gg, hh, ww in cases:
            t0 = time.perf_counter()
            record = encode_record(gg, RecordMeta(hh, ww), config, version=1)
            t1 = time.perf_counter()
            decode_record(record)
            t2 = time.perf_counter()
            row = {"name": name, "H": hh, "W": ww, "n": len(gg), "bytes": len(record),
                   "bytes_per_gaussian": round(len(record) / len(gg), 3),
                   "real_cr": round(3 * hh * ww / len(record), 2), "nominal_cr": cr,
                   "encode_s": round(t1 - t0, 3), "decode_s": round(t2 - t1, 3)}
            rows.append(row)
            if log:
                log(str(row))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(p)
    p.add_argument("--limit", type=int, default=3, help="first N images of the folder")
    p.add_argument("--skip", type=int, default=0, help="skip the first K of those")
    p.add_argument("--cr", type=float, default=50)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--qat-steps", type=int, default=60)
    p.add_argument("--qat-lr-scale", type=float, default=0.2)
    p.add_argument("--backend", default="auto")
    p.add_argument("--size-only", action="store_true", help="only bytes/Gaussian of smart-init Gaussians")
    d = CodecConfig()
    for name, default in (("mean-frac-bits", d.mean_frac_bits), ("scale-bits", d.scale_bits),
                          ("rotation-bits", d.rotation_bits), ("color-bits", d.color_bits)):
        p.add_argument(f"--{name}", type=int, default=default)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = CodecConfig(a.mean_frac_bits, a.scale_bits, a.rotation_bits, a.color_bits)
    paths = _images(default_folder(a.data), a.limit)[a.skip:]
    measure_record_size(paths, cr=a.cr, config=cfg)
    if not a.size_only:
        measure_quantization_loss(paths, cr=a.cr, steps=a.steps, qat_steps=a.qat_steps, config=cfg,
                                  backend=a.backend, qat_lr_scale=a.qat_lr_scale)


if __name__ == "__main__":
    main()
