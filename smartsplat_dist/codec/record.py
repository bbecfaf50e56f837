"""The per-image record: header + quantised, entropy-coded Gaussians + CRC32. Layout: ``codec/FORMAT.md``.

``encode_record(g, meta, config) -> bytes`` and ``decode_record(data) -> (Gaussians, RecordMeta)``;
``read_meta(data)`` parses and checks the header only. Decoding treats ``data`` as untrusted: every count is
bounded before anything is allocated, every stream is decompressed with a known, capped output size, and any
defect raises RecordError naming what is wrong.
"""
from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import RecordError
from ..model import Gaussians
from . import entropy, record_v2
from .grid import Steps
from .grid import color_grid as grid_color_grid
from .grid import fake_quantize as grid_fake_quantize
from .grid import scale_origin
from .grid import snap_means as grid_snap_means
from .limits import DecodeLimits, check_header
from .config import MAX_GAUSSIANS, MAX_SIDE, CodecConfig
from .quantize import QuantParams, check_encodable, compute_params, dequantize_values, quantize_values

MAGIC = b"SSGR"
FORMAT_VERSION = record_v2.VERSION  # written (5); versions 1 to 4 still decode
KNOWN_VERSIONS = (1, *record_v2.VERSIONS)
BLEND_MODELS = {0: "sum"}  # 0: sum blending, footprint cut at weight 1/255 (docs/design.md §1)
_BLEND_IDS = {v: k for k, v in BLEND_MODELS.items()}

STREAMS = ("position symbols", "position raw bits", "log-scale x", "anisotropy", "rotation",
           "color G", "color R-G", "color B-G")

_HEADER = struct.Struct("<4sHHIIIBBBBBBHiiff3ff")  # up to and including the colour span (60 bytes)
_STREAM = struct.Struct("<BII")  # method, raw_len, comp_len (9 bytes)
_CRC = struct.Struct("<I")
HEADER_SIZE = _HEADER.size + len(STREAMS) * _STREAM.size  # 132 bytes before the payload
MIN_RECORD_SIZE = HEADER_SIZE + _CRC.size
#: |log scale| bound: exp() of anything inside stays finite in float32.
MAX_ABS_LOG_SCALE = 40.0
#: |colour| bound of a record's colour range.
MAX_ABS_COLOR = 1e6


@dataclass(frozen=True)
class RecordMeta:
    """What a record says about its image, readable without decoding the Gaussians.

    Attributes:
        height, width: image size in pixels (1 .. 2**20 each).
        n: number of Gaussians; ``None`` when encoding means "len(g)".
        blend: the render model the Gaussians were fitted for; "sum" (sum blending, docs/design.md §1).
        version: record format version.
        codec: the quantisation settings found in the record (filled by read_meta / decode_record; fields a
            version does not store read back as the defaults).
        rate: versions 2 to 4: how the encoder chose N, "budget" (spend the byte budget) or "paper"
            (N = floor(3 H W / (7 CR))); None for version 1.
        nominal_cr: versions 2 to 4: the nominal compression ratio the record was made for; None for version 1.
    """

    height: int
    width: int
    n: int | None = None
    blend: str = "sum"
    version: int = FORMAT_VERSION
    codec: CodecConfig | None = None
    rate: str | None = None
    nominal_cr: float | None = None


def _check_size(height: int, width: int) -> None:
    for name, v in (("height", height), ("width", width)):
        if not 1 <= v <= MAX_SIDE:
            raise RecordError(f"image {name} {v} out of range 1..{MAX_SIDE}")


def _max_n(height: int, width: int) -> int:
    return min(height * width, MAX_GAUSSIANS)


def _gaussians_to_streams(g: Gaussians, height: int, width: int, config: CodecConfig,
                          params: QuantParams) -> tuple[tuple[int, int], list[bytes]]:
    """Quantise, sort into Z-order and split into the byte streams (uncompressed)."""
    with torch.no_grad():
        qm, qs, qr, qc = (t.cpu().to(torch.int64).numpy() for t in
                          quantize_values(g.detach().to("cpu"), height, width, config, params))
    n = qm.shape[0]
    if n == 0:
        return (0, 0), [b""] * len(STREAMS)
    x0, y0 = int(qm[:, 0].min()), int(qm[:, 1].min())
    codes = entropy.morton_encode((qm[:, 0] - x0).astype(np.uint64), (qm[:, 1] - y0).astype(np.uint64))
    # Sum blending is order free: sort by position, ties by the other fields so the bytes depend only on the set.
    ties = np.zeros(n, dtype=np.uint64)
    for col in (qs[:, 0], qs[:, 1], qr, qc[:, 0], qc[:, 1], qc[:, 2]):  # 6 x 8 bits
        ties = (ties << np.uint64(8)) | col.astype(np.uint64)
    order = np.lexsort((ties, codes))
    codes = codes[order]
    gaps = np.diff(codes, prepend=np.uint64(0))
    symbols, raw, nraw = entropy.gaps_to_symbols(gaps)
    u8 = lambda a: np.ascontiguousarray(a[order].astype(np.uint8)).tobytes()  # noqa: E731
    # Lossless integer transforms that lower the entropy: sx and the anisotropy qsx - qsy (>= 0, one grid);
    # G and the channel differences modulo 2**color_bits (one step for all channels).
    cmod = (1 << config.color_bits) - 1
    streams = [symbols.tobytes(), entropy.pack_bits(raw, nraw), u8(qs[:, 0]), u8(qs[:, 0] - qs[:, 1]), u8(qr),
               u8(qc[:, 1]), u8((qc[:, 0] - qc[:, 1]) & cmod), u8((qc[:, 2] - qc[:, 1]) & cmod)]
    return (x0, y0), streams


def _steps(config: CodecConfig, version: int = FORMAT_VERSION) -> Steps:
    return record_v2.steps_for(Steps(config.mean_frac_bits, config.scale_step, config.rotation_tolerance,
                                     config.color_step), version)


def snap_means(g: Gaussians, meta, config: CodecConfig | None = None, version: int = FORMAT_VERSION) -> torch.Tensor:
    """The means that ``decode_record(encode_record(g, meta, config, version=version))`` holds, in g's order:
    [N, 2] float32 px on g's device, no gradient (version 2 or later; meta: anything with ``height`` and
    ``width``)."""
    return grid_snap_means(g, int(meta.height), int(meta.width), _steps(config or CodecConfig(), version))


def fake_quantize(g: Gaussians, meta, config: CodecConfig | None = None) -> Gaussians:
    """Straight-through fake quantisation for training with the quantiser in the loop: forward = the Gaussians
    that ``decode_record(encode_record(g, meta, config))`` gives (canonical form, in g's order, on g's device),
    backward = identity (through the canonical form).

    g: N Gaussians (may require grad); meta: anything with ``height`` and ``width``. In budget mode the encoder's
    rate control then scales these steps to fill the budget, so training sees the default steps' grid.
    """
    config = config or CodecConfig()
    check_encodable(g)
    return grid_fake_quantize(g, int(meta.height), int(meta.width), _steps(config))


def color_grid(g: Gaussians, meta, config: CodecConfig | None = None,
               version: int = FORMAT_VERSION) -> tuple[torch.Tensor, torch.Tensor]:
    """The colour grid of ``encode_record(g, meta, config, version=version)`` (version 2 or later): (lo [3]
    float64, step [N, 1] float64), level q decoding to ``lo + q * step`` (``grid.color_grid``)."""
    config = config or CodecConfig()
    check_encodable(g)
    return grid_color_grid(g.detach().to("cpu"), int(meta.height), int(meta.width), _steps(config, version))


def shape_grid(g: Gaussians, meta, config: CodecConfig | None = None,
               version: int = FORMAT_VERSION) -> tuple[float, float, float]:
    """The shape grid of ``encode_record(g, meta, config, version=version)`` (version 2 or later, N >= 1):
    (scale_lo, scale_step, rotation_tolerance), the values its header stores (float32 values as floats): log-scale
    level q decodes to ``exp(scale_lo + q * scale_step)``; rotation levels follow ``grid.rotation_bits``."""
    config = config or CodecConfig()
    check_encodable(g)
    steps = _steps(config, version)
    return scale_origin(g.scales), float(np.float32(steps.scale_step)), float(np.float32(steps.rotation_tolerance))


def encode_record(g: Gaussians, meta: RecordMeta, config: CodecConfig | None = None,
                  params: QuantParams | None = None, version: int = FORMAT_VERSION) -> bytes:
    """Quantise and encode Gaussians into a record (deterministic: same Gaussians + config -> same bytes).

    Args:
        g: N Gaussians (any device; canonicalised, clamped to [-W, 2W] x [-H, 2H], quantised per ``config``).
        meta: height and width of the image (``n`` if given must equal ``len(g)``; ``blend`` must be "sum").
        config: bit depths and LZMA preset.
        params: version 1 only: fixed ranges (e.g. ``FrozenQuantizer.params``); default: computed from ``g``.
        version: record version to write: 4 (default; ``meta.rate`` and ``meta.nominal_cr`` are stored), or 3,
            2 or 1 (older layouts, for tests and comparisons).
    Returns:
        The record bytes; ``len(record)`` is what the real compression ratio ``3 H W / len`` counts.
    """
    config = config or CodecConfig()
    height, width, n = int(meta.height), int(meta.width), len(g)
    _check_size(height, width)
    if meta.n is not None and meta.n != n:
        raise RecordError(f"cannot encode: meta.n = {meta.n} but there are {n} Gaussians")
    if meta.blend not in _BLEND_IDS:
        raise RecordError(f"cannot encode: unknown blend model {meta.blend!r} (known: {', '.join(_BLEND_IDS)})")
    if n > _max_n(height, width):
        raise RecordError(f"cannot encode: {n} Gaussians exceed the limit {_max_n(height, width)} "
                          f"for a {width}x{height} image")
    check_encodable(g)
    if version in record_v2.VERSIONS:
        return record_v2.encode(g, height, width, _BLEND_IDS[meta.blend], _steps(config, version), meta.rate or "paper",
                                float(meta.nominal_cr or 3.0 * height * width / (7.0 * max(n, 1))), version)
    if version != 1:
        raise RecordError(f"cannot encode: unknown record version {version}")
    params = compute_params(g) if params is None or n == 0 else params
    if any(abs(v) > MAX_ABS_LOG_SCALE for v in (params.scale_lo, params.scale_hi)):
        raise RecordError(f"cannot encode: a scale is outside exp(+-{MAX_ABS_LOG_SCALE:g}) pixels")
    if any(abs(v) > MAX_ABS_COLOR for v in params.color_lo) or params.color_span > MAX_ABS_COLOR:
        raise RecordError(f"cannot encode: a colour is outside +-{MAX_ABS_COLOR:g}")
    (x0, y0), streams = _gaussians_to_streams(g, height, width, config, params)
    header = _HEADER.pack(
        MAGIC, 1, 0, height, width, n, _BLEND_IDS[meta.blend],
        config.mean_frac_bits, config.scale_bits, config.rotation_bits, config.color_bits, len(STREAMS), 0,
        x0, y0, params.scale_lo, params.scale_hi, *params.color_lo, params.color_span,
    )
    table, payloads = [], []
    for raw, (method, payload) in zip(streams, entropy.compress_streams(streams, config.lzma_preset)):
        table.append(_STREAM.pack(method, len(raw), len(payload)))
        payloads.append(payload)
    body = header + b"".join(table) + b"".join(payloads)
    return body + _CRC.pack(zlib.crc32(body))


@dataclass(frozen=True)
class _Parsed:
    meta: RecordMeta
    x0: int
    y0: int
    params: QuantParams
    streams: tuple[tuple[int, int, int, int], ...]  # (method, raw_len, offset, comp_len)


def _parse(data: bytes, limits: DecodeLimits | None = None) -> _Parsed:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise RecordError(f"a record must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < 6:
        raise RecordError(f"record truncated: {len(data)} bytes is shorter than magic + version")
    if data[:4] != MAGIC:
        raise RecordError(f"not a smartsplat record: magic {data[:4]!r}, expected {MAGIC!r}")
    (version,) = struct.unpack_from("<H", data, 4)
    if version not in KNOWN_VERSIONS:
        raise RecordError(f"unsupported record format version {version} (this build reads "
                          f"{', '.join(map(str, KNOWN_VERSIONS))})")
    if version in record_v2.VERSIONS:
        parsed = record_v2.parse(data, _check_size, _max_n)
        h = parsed.header  # decoded size: one symbol (or raw byte) per count of each stream
        check_header(h.height, h.width, h.n, sum(count for count, _, _ in parsed.streams), len(data), limits)
        return parsed
    if len(data) < MIN_RECORD_SIZE:
        raise RecordError(f"record truncated: {len(data)} bytes, the header alone needs {MIN_RECORD_SIZE}")
    (stored_crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    fields = _HEADER.unpack_from(data, 0)
    (_, _, flags, height, width, n, blend, mfb, sb, rb, cb, nstreams, reserved, x0, y0) = fields[:15]
    floats = fields[15:]
    # Sizes first, so that "truncated" / "trailing bytes" are named as such rather than as a bad checksum.
    table = []
    offset = HEADER_SIZE
    if nstreams == len(STREAMS):
        for i in range(len(STREAMS)):
            table.append(_STREAM.unpack_from(data, _HEADER.size + i * _STREAM.size))
        expected = HEADER_SIZE + sum(t[2] for t in table) + _CRC.size
        if len(data) < expected:
            raise RecordError(f"record truncated: {len(data)} bytes, the header declares {expected}")
        if len(data) > expected:
            raise RecordError(f"record has {len(data) - expected} trailing bytes after its declared end "
                              f"({expected} bytes)")
    crc = zlib.crc32(memoryview(data)[: len(data) - _CRC.size])
    if crc != stored_crc:
        raise RecordError(f"record checksum mismatch (CRC32 {crc:08x}, stored {stored_crc:08x}): damaged record")
    # The checksum matched: the rest guards against well-formed but hostile or buggy records.
    if flags != 0 or reserved != 0:
        raise RecordError(f"record uses unknown flags {flags:#06x} / reserved field {reserved} (version 1 has none)")
    if nstreams != len(STREAMS):
        raise RecordError(f"record declares {nstreams} streams, version 1 has {len(STREAMS)}")
    _check_size(height, width)
    if blend not in BLEND_MODELS:
        raise RecordError(f"record uses unknown blend model {blend}")
    if n > _max_n(height, width):
        raise RecordError(f"record declares {n} Gaussians, more than the limit {_max_n(height, width)} "
                          f"for a {width}x{height} image")
    try:
        codec = CodecConfig(mean_frac_bits=mfb, scale_bits=sb, rotation_bits=rb, color_bits=cb)
    except Exception as exc:  # ConfigError: a bit depth out of range
        raise RecordError(f"record has invalid quantisation settings: {exc}") from None
    scale_lo, scale_hi, color_lo, color_span = floats[0], floats[1], floats[2:5], floats[5]
    if not (math.isfinite(scale_lo) and math.isfinite(scale_hi)
            and -MAX_ABS_LOG_SCALE <= scale_lo <= scale_hi <= MAX_ABS_LOG_SCALE):
        raise RecordError(f"record has an invalid log-scale range [{scale_lo}, {scale_hi}]")
    if not all(math.isfinite(v) and abs(v) <= MAX_ABS_COLOR for v in color_lo):
        raise RecordError(f"record has an invalid colour minimum {tuple(color_lo)}")
    if not (math.isfinite(color_span) and 0 <= color_span <= MAX_ABS_COLOR):
        raise RecordError(f"record has an invalid colour span {color_span}")
    unit = 1 << mfb
    for name, v, side in (("x", x0, width), ("y", y0, height)):
        if not -side * unit <= v <= 2 * side * unit:
            raise RecordError(f"record's {name} origin {v} lies outside the representable area")
    for i, (method, raw_len, comp_len) in enumerate(table):
        if i != 1 and raw_len != n:
            raise RecordError(f"stream '{STREAMS[i]}' declares {raw_len} bytes, {n} Gaussians need {n}")
        if i == 1 and raw_len > 8 * n:
            raise RecordError(f"stream '{STREAMS[i]}' declares {raw_len} bytes, more than 8 per Gaussian")
        if method not in (entropy.METHOD_STORED, entropy.METHOD_LZMA2):
            raise RecordError(f"stream '{STREAMS[i]}' uses unknown method {method}")
    check_header(height, width, n, sum(t[1] for t in table), len(data), limits)
    streams = []
    for method, raw_len, comp_len in table:
        streams.append((method, raw_len, offset, comp_len))
        offset += comp_len
    meta = RecordMeta(height=height, width=width, n=n, blend=BLEND_MODELS[blend], version=version, codec=codec)
    params = QuantParams(scale_lo, scale_hi, tuple(color_lo), color_span)
    return _Parsed(meta, x0, y0, params, tuple(streams))


def _meta_v2(p: "record_v2.Parsed") -> RecordMeta:
    h = p.header
    codec = CodecConfig(mean_frac_bits=h.steps.mean_frac_bits, scale_step=h.steps.scale_step,
                        rotation_tolerance=h.steps.rotation_tolerance, color_step=h.steps.color_step)
    return RecordMeta(height=h.height, width=h.width, n=h.n, blend=BLEND_MODELS.get(h.blend, "?"), version=h.version,
                      codec=codec, rate=h.rate, nominal_cr=h.nominal_cr)


def _check_blend_v2(p: "record_v2.Parsed") -> None:
    if p.header.blend not in BLEND_MODELS:
        raise RecordError(f"record uses unknown blend model {p.header.blend}")


def read_meta(data: bytes, limits: DecodeLimits | None = None) -> RecordMeta:
    """Parse and validate a record's header (and its checksum, and ``limits``: default
    :func:`~.limits.current_limits`); no Gaussians are decoded."""
    parsed = _parse(data, limits)
    if isinstance(parsed, record_v2.Parsed):
        _check_blend_v2(parsed)
        return _meta_v2(parsed)
    return parsed.meta


def read_demand(data: bytes, limits: DecodeLimits | None = None) -> tuple[RecordMeta, int]:
    """(header as :func:`read_meta`, decoded stream size the header declares: bytes for version 1, symbols and
    raw bytes for versions 2 to 4), the figures :mod:`.limits` bounds; nothing is decoded."""
    parsed = _parse(data, limits)
    if isinstance(parsed, record_v2.Parsed):
        _check_blend_v2(parsed)
        return _meta_v2(parsed), sum(count for count, _, _ in parsed.streams)
    return parsed.meta, sum(raw_len for _, raw_len, _, _ in parsed.streams)


def decode_record(data: bytes, limits: DecodeLimits | None = None) -> tuple[Gaussians, RecordMeta]:
    """Decode a record.

    Returns:
        (Gaussians on CPU in canonical form, sorted in Z-order; RecordMeta with ``n`` and ``codec`` filled).
    Raises:
        RecordError: unknown magic or version, truncation, trailing bytes, checksum mismatch, or any field or
        stream inconsistent with the others, or a record asking for more than ``limits`` allow (default
        :func:`~.limits.current_limits`) before any stream is decompressed.
    """
    parsed = _parse(data, limits)
    data = bytes(data)
    if isinstance(parsed, record_v2.Parsed):
        _check_blend_v2(parsed)
        return record_v2.decode(parsed, data), _meta_v2(parsed)
    meta, codec, n = parsed.meta, parsed.meta.codec, parsed.meta.n
    raw = [entropy.decompress_stream(m, data[off:off + ln], rl, f"stream '{STREAMS[i]}'")
           for i, (m, rl, off, ln) in enumerate(parsed.streams)]
    if n == 0:
        if any(raw):
            raise RecordError("record with 0 Gaussians carries stream data")
        return Gaussians.empty(), meta
    symbols = np.frombuffer(raw[0], dtype=np.uint8)
    nraw = entropy.symbols_nraw(symbols)
    gaps = entropy.symbols_to_gaps(symbols, entropy.unpack_bits(raw[1], nraw))
    limit = np.uint64(1) << np.uint64(62)
    if int(gaps.max()) >= int(limit):
        raise RecordError("position stream holds a gap beyond the representable area")
    codes = np.cumsum(gaps, dtype=np.uint64)  # no wrap: N < 2**25 gaps, each < 2**62
    if n > 1 and not bool((codes[1:] >= codes[:-1]).all()):
        raise RecordError("position stream overflows")
    ux, uy = entropy.morton_decode(codes)
    unit = 1 << codec.mean_frac_bits
    qx = ux.astype(np.int64) + parsed.x0
    qy = uy.astype(np.int64) + parsed.y0
    if int(qx.max()) > 2 * meta.width * unit or int(qy.max()) > 2 * meta.height * unit:
        raise RecordError("record holds a position outside the representable area [-W, 2W] x [-H, 2H]")
    planes = [np.frombuffer(r, dtype=np.uint8).astype(np.int64) for r in raw[2:]]
    for i, (plane, bits) in enumerate(zip(planes, (codec.scale_bits, codec.scale_bits, codec.rotation_bits,
                                                   codec.color_bits, codec.color_bits, codec.color_bits))):
        if int(plane.max()) >= 1 << bits:
            raise RecordError(f"stream '{STREAMS[i + 2]}' holds a value {int(plane.max())} beyond {bits} bits")
    qsx, aniso, qr, qg, drg, dbg = planes
    if bool((aniso > qsx).any()):
        raise RecordError(f"stream '{STREAMS[3]}' holds an anisotropy larger than its log-scale")
    cmod = (1 << codec.color_bits) - 1
    qc = np.stack([(qg + drg) & cmod, qg, (qg + dbg) & cmod], axis=1)
    t = torch.from_numpy
    g = dequantize_values(t(np.stack([qx, qy], axis=1)), t(np.stack([qsx, qsx - aniso], axis=1)), t(qr),
                          t(qc), codec, parsed.params)
    return g, meta
