"""Classic image codecs at a matched file size: JPEG, WebP, AVIF, JPEG 2000, JPEG XL.

For a target size (our record's bytes) each codec's quality setting is searched so that its file is the largest
it can make that is still NO LARGER than the target; then the file is decoded and measured.

Codecs come from Pillow (JPEG via libjpeg, WebP via libwebp, AVIF via libavif in Pillow >= 11.3 wheels, JPEG 2000
via OpenJPEG) and ``pillow-jxl-plugin`` (JPEG XL via libjxl). A codec whose library is missing is reported as
``skipped`` with the reason; a target smaller than a codec's smallest file is reported as ``unreachable``.

Settings (chosen to give each codec its best shot at a fixed, reasonable encode cost):
JPEG ``optimize=True`` (4:2:0, optimised Huffman); WebP ``method=6``; AVIF Pillow defaults (speed 6, 4:2:0);
JPEG 2000 irreversible 9/7 wavelet with OpenJPEG's rate control; JPEG XL ``effort=7`` (libjxl default).
"""
from __future__ import annotations

import io
import math
import time
from dataclasses import asdict, dataclass
from typing import Callable, Mapping

import numpy as np
from PIL import Image, features

from ..errors import ConfigError

#: The codecs compared, in display order.
CODECS = ("jpeg", "webp", "avif", "jpeg2000", "jpegxl")

Metric = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class CodecSpec:
    """How to drive one codec.

    Attributes:
        name: short name (``jpeg`` ...). label: display name.
        q_lo, q_hi: range of the size-controlling parameter; a larger value gives a larger file.
        integer: whether the parameter is an integer (else searched as a float).
        settings: human-readable fixed settings.
    """

    name: str
    label: str
    q_lo: float
    q_hi: float
    integer: bool
    settings: str


SPECS: dict[str, CodecSpec] = {
    "jpeg": CodecSpec("jpeg", "JPEG", 1, 95, True, "Pillow/libjpeg, quality 1-95, optimize=True, 4:2:0"),
    "webp": CodecSpec("webp", "WebP", 0, 100, True, "Pillow/libwebp, quality 0-100, method=6"),
    "avif": CodecSpec("avif", "AVIF", 0, 100, True, "Pillow/libavif, quality 0-100, speed 6, 4:2:0"),
    # JPEG 2000's parameter is log(requested bytes): OpenJPEG's rate control aims at a compression ratio.
    "jpeg2000": CodecSpec("jpeg2000", "JPEG 2000", math.log(64.0), math.log(2.0**40), False,
                          "Pillow/OpenJPEG, irreversible 9/7, rate control (one layer)"),
    "jpegxl": CodecSpec("jpegxl", "JPEG XL", 0.0, 99.0, False, "pillow-jxl-plugin/libjxl, quality 0-99, effort 7"),
}


def _pil(pixels: np.ndarray):
    return Image.fromarray(pixels, "RGB")


def availability() -> dict[str, str | None]:
    """Each codec's name -> None if usable here, else the reason it is not."""
    out: dict[str, str | None] = {}
    checks = {"jpeg": "jpg", "webp": "webp", "avif": "avif", "jpeg2000": "jpg_2000"}
    for name, feature in checks.items():
        try:
            ok = bool(features.check(feature))
        except Exception as err:  # an unknown feature name in an old Pillow
            ok, why = False, str(err)
        else:
            why = f"this Pillow build has no {feature} support"
        out[name] = None if ok else why
    try:
        import pillow_jxl  # noqa: F401  # lazy: a PIL plugin: registers JPEG XL

        out["jpegxl"] = None
    except ImportError as err:
        out["jpegxl"] = f"JPEG XL needs the pillow-jxl-plugin package ({err})"
    # A codec may be compiled in but fail at run time: try a tiny encode.
    probe = np.zeros((8, 8, 3), dtype=np.uint8)
    for name in CODECS:
        if out[name] is None:
            try:
                decode(name, encode(name, probe, SPECS[name].q_hi if name != "jpeg2000" else math.log(512)))
            except Exception as err:
                out[name] = f"{SPECS[name].label} encoder failed on a probe image: {type(err).__name__}: {err}"
    return out


def encode(codec: str, pixels: np.ndarray, q: float) -> bytes:
    """Encode uint8 [H, W, 3] ``pixels`` with ``codec`` at size parameter ``q`` (see :data:`SPECS`)."""
    if codec not in SPECS:
        raise ConfigError(f"unknown codec {codec!r}; choose from {', '.join(CODECS)}")
    im = _pil(pixels)
    buf = io.BytesIO()
    if codec == "jpeg":
        im.save(buf, "JPEG", quality=int(q), optimize=True, subsampling="4:2:0")
    elif codec == "webp":
        im.save(buf, "WEBP", quality=int(q), method=6)
    elif codec == "avif":
        im.save(buf, "AVIF", quality=int(q))
    elif codec == "jpeg2000":
        h, w = pixels.shape[:2]
        ratio = max(1.0, 3.0 * h * w / math.exp(q))
        im.save(buf, "JPEG2000", quality_mode="rates", quality_layers=[ratio], irreversible=True)
    elif codec == "jpegxl":
        import pillow_jxl  # noqa: F401  # lazy: a PIL plugin: registers JPEG XL

        im.save(buf, "JXL", quality=float(q), effort=7)
    return buf.getvalue()


def decode(codec: str, data: bytes) -> np.ndarray:
    """Decode a file made by :func:`encode`: uint8 [H, W, 3]."""
    if codec == "jpegxl":
        import pillow_jxl  # noqa: F401  # lazy: a PIL plugin: registers JPEG XL

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


@dataclass(frozen=True)
class SizeMatch:
    """The result of a size search. ``data`` is None when even the smallest file exceeds the target.

    Attributes:
        q: the parameter chosen. data: the file. tried: [(q, bytes)] in search order.
        smallest: size of the smallest file the codec made (at q_lo).
    """

    q: float | None
    data: bytes | None
    tried: tuple[tuple[float, int], ...]
    smallest: int


def match_size(codec: str, pixels: np.ndarray, target_bytes: int, iterations: int = 14) -> SizeMatch:
    """Search ``codec``'s size parameter for the largest file with ``len(file) <= target_bytes``.

    Bisection on the parameter (file size grows with it). Only files that fit are ever returned, so the result
    is no larger than the target even where a codec's size is not perfectly monotone; among fitting files the
    largest one seen is kept.

    Args:
        codec: one of :data:`CODECS`. pixels: uint8 [H, W, 3]. target_bytes: the size budget (> 0).
        iterations: bisection steps for float parameters (integer ones bisect to the end).
    """
    if target_bytes <= 0:
        raise ConfigError(f"target size must be > 0 bytes, got {target_bytes}")
    spec = SPECS[codec]
    tried: list[tuple[float, int]] = []
    best: tuple[float, bytes] | None = None

    def size(q: float) -> int:
        nonlocal best
        data = encode(codec, pixels, q)
        tried.append((q, len(data)))
        if len(data) <= target_bytes and (best is None or len(data) > len(best[1])):
            best = (q, data)
        return len(data)

    lo, hi = spec.q_lo, spec.q_hi
    if codec == "jpeg2000":  # the parameter is log(requested bytes): start the bracket around the target
        hi = min(hi, math.log(target_bytes) + math.log(2.0))
        lo = max(lo, min(hi - 1e-3, math.log(target_bytes) - math.log(64.0)))
    smallest = size(lo)
    if smallest > target_bytes:
        if codec == "jpeg2000" and lo > spec.q_lo:
            smallest = size(spec.q_lo)
            lo = spec.q_lo
        if smallest > target_bytes:
            return SizeMatch(None, None, tuple(tried), smallest)
    if size(hi) > target_bytes:
        if spec.integer:
            lo_i, hi_i = int(lo), int(hi)  # size(lo_i) fits, size(hi_i) does not
            while hi_i - lo_i > 1:
                mid = (lo_i + hi_i) // 2
                if size(mid) <= target_bytes:
                    lo_i = mid
                else:
                    hi_i = mid
        else:
            for _ in range(iterations):
                mid = 0.5 * (lo + hi)
                if size(mid) <= target_bytes:
                    lo = mid
                else:
                    hi = mid
    assert best is not None
    return SizeMatch(best[0], best[1], tuple(tried), smallest)


@dataclass(frozen=True)
class ClassicResult:
    """One codec on one image at one target size (a row of the RD table).

    ``status`` is ``ok``, ``skipped`` (codec unavailable: ``reason``) or ``unreachable`` (its smallest file,
    ``reason`` says how big, is larger than the target). Metrics are None unless ``ok``.
    """

    codec: str
    status: str
    target_bytes: int
    reason: str | None = None
    quality: float | None = None
    bytes: int | None = None
    bpp: float | None = None
    psnr: float | None = None
    ssim: float | None = None
    ms_ssim: float | None = None
    encode_seconds: float | None = None
    decode_seconds: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def default_metrics() -> dict[str, Metric]:
    """PSNR, SSIM and MS-SSIM from :mod:`smartsplat_dist.fitting.metrics` (uint8 [H, W, 3] pairs)."""
    from ..fitting import metrics  # lazy: fitting pulls in numba; keeps --help fast

    return {"psnr": metrics.psnr, "ssim": metrics.ssim, "ms_ssim": metrics.ms_ssim}


def compare_at_size(
    pixels: np.ndarray,
    target_bytes: int,
    codecs: tuple[str, ...] = CODECS,
    metrics: Mapping[str, Metric] | None = None,
    available: Mapping[str, str | None] | None = None,
) -> list[ClassicResult]:
    """Each codec at the largest file no larger than ``target_bytes``, decoded and measured.

    Args:
        pixels: uint8 [H, W, 3] original.
        target_bytes: size budget (our record's length).
        codecs: which codecs.
        metrics: name -> fn(decoded, original) for any of ``psnr``, ``ssim``, ``ms_ssim`` (default: fit.metrics).
        available: result of :func:`availability` (computed when None).
    Returns:
        One :class:`ClassicResult` per codec, in order.
    """
    metrics = default_metrics() if metrics is None else dict(metrics)
    available = availability() if available is None else available
    h, w = pixels.shape[:2]
    results = []
    for codec in codecs:
        if codec not in SPECS:
            raise ConfigError(f"unknown codec {codec!r}; choose from {', '.join(CODECS)}")
        why = available.get(codec, "not checked")
        if why is not None:
            results.append(ClassicResult(codec, "skipped", target_bytes, reason=why))
            continue
        found = match_size(codec, pixels, target_bytes)
        if found.data is None:
            results.append(ClassicResult(
                codec, "unreachable", target_bytes,
                reason=f"smallest {SPECS[codec].label} file is {found.smallest} bytes > target {target_bytes}"))
            continue
        t0 = time.perf_counter()
        encode(codec, pixels, found.q)  # timed once more at the chosen setting (not the search)
        t1 = time.perf_counter()
        data = found.data
        decoded = decode(codec, data)
        t2 = time.perf_counter()
        scores = {name: float(fn(decoded, pixels)) for name, fn in metrics.items()}
        results.append(ClassicResult(
            codec, "ok", target_bytes, quality=float(found.q), bytes=len(data), bpp=8.0 * len(data) / (h * w),
            psnr=scores.get("psnr"), ssim=scores.get("ssim"), ms_ssim=scores.get("ms_ssim"),
            encode_seconds=t1 - t0, decode_seconds=t2 - t1))
    return results


__all__ = ["CODECS", "SPECS", "CodecSpec", "availability", "encode", "decode", "match_size", "SizeMatch",
           "ClassicResult", "compare_at_size", "default_metrics"]
