"""Record versions 2 to 5: fixed-step quantisation (``codec/grid.py``) + adaptive ANS coding (``codec/ans.py``).

Layout: ``codec/FORMAT.md`` (versions 2 to 4: one layout; version 3 may code each stream with smoothed adaptive
models, the anisotropy in contexts of the Gaussian's length, where that is smaller; version 4, the one written,
also puts each Gaussian's colours on a step that follows its area, coded in one sub-stream per step; version 5
also puts each Gaussian's position on a grid that follows its colour and elongation: whole pixels in Z-order,
then each Gaussian's fractional bits).
``encode(g, meta, steps, rate, nominal_cr) -> bytes``,
``parse(data) -> Parsed`` (header, table, checksum; no payload decoded), ``decode(data) -> (Gaussians, meta)``.
Parsing treats the bytes as untrusted: every count and length is checked against its bound before anything is
allocated; the entropy decoder gets exact symbol counts and must use its payload up exactly.
"""
from __future__ import annotations

import dataclasses
import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import RecordError
from ..model import Gaussians
from . import ans, entropy
from .grid import (COLOR_SHIFTS, LN2, MAX_LEVELS, MAX_ROTATION_BITS, Grid, Quantized, Steps, color_alphabet,
                   MAX_MEAN_BITS, color_shifts, dequantize, mean_bits, quantize, rotation_bits)

VERSION = 5  # written
VERSIONS = (2, 3, 4, 5)
#: Rate-control modes (one byte in the header).
RATE_MODES = {0: "paper", 1: "budget"}
RATE_IDS = {v: k for k, v in RATE_MODES.items()}

STREAMS = ("position symbols", "position raw bits", "log-scale x", "anisotropy", "rotation",
           "rotation raw bits", "color G", "color R-G", "color B-G")
_ANS_STREAMS = (0, 2, 3, 4, 6, 7, 8)
#: Version 3 header flags: bit i set = ANS stream i uses the version-3 models (smoothed; contexts for stream 3).
V3_FLAGS = sum(1 << i for i in _ANS_STREAMS)

# magic, version, flags, H, W, n, blend, rate, mean_frac_bits, n_streams, x0, y0, scale_lo, scale_step,
# scale_levels, rotation_tolerance, color_lo[3], color_step, color_levels[3], nominal_cr
_HEADER = struct.Struct("<4sHHIIIBBBBiiffIf3ff3If")  # 80 bytes
_STREAM = struct.Struct("<II")  # count, payload length
_CRC = struct.Struct("<I")
HEADER_SIZE = _HEADER.size + len(STREAMS) * _STREAM.size  # 152
MIN_RECORD_SIZE = HEADER_SIZE + _CRC.size
#: Bounds of the header's floats (exp / products stay finite in float32).
MAX_ABS_LOG_SCALE = 40.0
MAX_ABS_COLOR = 1e6
#: Rotation bits above this are split: the top ROTATION_MODEL_BITS are entropy coded, the rest stored raw.
ROTATION_MODEL_BITS = 8
#: Gap symbols of the position stream (as version 1).
GAP_ALPHABET = entropy.MAX_GAP_SYMBOL + 1
#: Version 3: contexts of the anisotropy stream, the octave of the long axis: clamp(floor(log2 sx), 0, 7).
ANISOTROPY_CONTEXTS = 8


@dataclass(frozen=True)
class Header:
    version: int
    flags: int
    height: int
    width: int
    n: int
    blend: int
    rate: str
    steps: Steps
    x0: int
    y0: int
    grid: Grid
    nominal_cr: float


@dataclass(frozen=True)
class Parsed:
    header: Header
    streams: tuple[tuple[int, int, int], ...]  # (count, offset, length)


def _sorted_order(q: Quantized, coarse: np.ndarray, x0: int, y0: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, Morton codes in that order): Z-order of the ``coarse`` positions [N, 2] (the means' levels, or
    version 5's whole pixels), ties by the other integers."""
    codes = entropy.morton_encode((coarse[:, 0] - x0).astype(np.uint64), (coarse[:, 1] - y0).astype(np.uint64))
    keys = [q.qmeans[:, 1], q.qmeans[:, 0], q.qcolors[:, 2], q.qcolors[:, 1], q.qcolors[:, 0], q.qrot, q.rbits,
            q.qscales[:, 1], q.qscales[:, 0], codes]
    order = np.lexsort(keys)
    return order, codes[order]


def _rotation_split(qrot: np.ndarray, rbits: np.ndarray) -> tuple[list[tuple[np.ndarray, int]], np.ndarray, np.ndarray]:
    """Rotation sub-streams per context rb = 1..MAX (top bits, alphabet) and the raw low bits (values, counts)."""
    low = np.maximum(rbits - ROTATION_MODEL_BITS, 0)
    top = qrot >> low
    subs = [(top[rbits == b], 1 << min(b, ROTATION_MODEL_BITS)) for b in range(1, MAX_ROTATION_BITS + 1)]
    raw = qrot & ((np.int64(1) << low) - 1)
    return subs, raw.astype(np.uint64), low


def anisotropy_context(qsx: np.ndarray, scale_lo: float, scale_step: float) -> np.ndarray:
    """[N] int64 context of each Gaussian's anisotropy (version 3): the octave of its long axis,
    ``clamp(floor((scale_lo + qsx * scale_step) / LN2), 0, 7)`` in float64 (header floats widened from float32;
    only + * / so that every machine agrees)."""
    ln_sx = float(np.float32(scale_lo)) + qsx.astype(np.float64) * float(np.float32(scale_step))
    return np.clip(np.floor(ln_sx / LN2), 0, ANISOTROPY_CONTEXTS - 1).astype(np.int64)


def _anisotropy_subs(qsx: np.ndarray, aniso: np.ndarray, levels: int, grid: Grid, steps: Steps):
    ctx = anisotropy_context(qsx, grid.scale_lo, steps.scale_step)
    return ctx, [(aniso[ctx == c], levels) for c in range(ANISOTROPY_CONTEXTS)]


def _color_symbols(qc: np.ndarray, levels: tuple[int, int, int]) -> list[tuple[np.ndarray, int]]:
    kr, kg, kb = levels
    return [(qc[:, 1], kg), (qc[:, 0] - qc[:, 1] + kg - 1, kr + kg - 1), (qc[:, 2] - qc[:, 1] + kg - 1, kb + kg - 1)]


def _color_substreams(qc: np.ndarray, shifts: np.ndarray | None,
                      levels: tuple[int, int, int]) -> list[list[tuple[np.ndarray, int]]]:
    """The three colour streams' sub-streams: one (version 2/3, ``shifts`` None) or one per colour-step octave
    j in COLOR_SHIFTS (version 4: the Gaussians of that j, on that grid; an empty one has alphabet 1)."""
    if shifts is None:
        return [[c] for c in _color_symbols(qc, levels)]
    out: list[list[tuple[np.ndarray, int]]] = [[], [], []]
    for j in range(COLOR_SHIFTS[0], COLOR_SHIFTS[1] + 1):
        here = shifts == j
        alphabets = tuple(color_alphabet(k, j) if here.any() else 1 for k in levels)
        for i, sub in enumerate(_color_symbols(qc[here], alphabets)):
            out[i].append(sub)
    return out


def steps_for(steps: Steps, version: int) -> Steps:
    """``steps`` with the per-Gaussian grids of ``version`` (colours by area from 4, positions by sensitivity
    from 5)."""
    return dataclasses.replace(steps, color_by_area=version >= 4, mean_by_sensitivity=version >= 5)


def encode(g: Gaussians, height: int, width: int, blend: int, steps: Steps, rate: str, nominal_cr: float,
           version: int = VERSION) -> bytes:
    """Quantise and encode (the caller has validated size, n, blend and finiteness) on the grids of
    ``version`` (:func:`steps_for`)."""
    steps = steps_for(steps, version)
    q, grid = quantize(g, height, width, steps)
    return encode_quantized(q, grid, height, width, blend, steps, rate, nominal_cr, version)


def encode_quantized(q: Quantized, grid: Grid, height: int, width: int, blend: int, steps: Steps, rate: str,
                     nominal_cr: float, version: int = VERSION) -> bytes:
    """Encode integers (from :func:`grid.quantize` with these ``steps``) into a record of ``version`` (2 to 5;
    ``steps`` must have that version's grids, :func:`steps_for`)."""
    if version not in VERSIONS:
        raise RecordError(f"cannot encode: record version {version} is not one of {VERSIONS}")
    if steps != steps_for(steps, version):
        raise RecordError(f"cannot encode: these steps do not have version {version}'s per-Gaussian grids "
                          "(record_v2.steps_for)")
    n = q.qmeans.shape[0]
    if max(grid.scale_levels, *grid.color_levels) > MAX_LEVELS:
        raise RecordError(f"cannot encode: a grid needs more than {MAX_LEVELS} levels "
                          f"(scales {grid.scale_levels}, colours {grid.color_levels}); use a coarser step")
    if abs(grid.scale_lo) > MAX_ABS_LOG_SCALE or abs(grid.scale_lo + grid.scale_levels * steps.scale_step) > MAX_ABS_LOG_SCALE:
        raise RecordError(f"cannot encode: a scale is outside exp(+-{MAX_ABS_LOG_SCALE:g}) pixels")
    if any(abs(v) > MAX_ABS_COLOR for v in grid.color_lo) or max(grid.color_levels) * steps.color_step > MAX_ABS_COLOR:
        raise RecordError(f"cannot encode: a colour is outside +-{MAX_ABS_COLOR:g}")
    flags = 0
    if n:
        coarse = q.qmeans >> q.mbits[:, None] if steps.mean_by_sensitivity else q.qmeans  # floor: whole pixels
        x0, y0 = int(coarse[:, 0].min()), int(coarse[:, 1].min())
        order, codes = _sorted_order(q, coarse, x0, y0)
        q = Quantized(*(getattr(q, f.name)[order] for f in dataclasses.fields(q)))
        symbols, raw, nraw = entropy.gaps_to_symbols(np.diff(codes, prepend=np.uint64(0)))
        if steps.mean_by_sensitivity:  # then each Gaussian's fractional bits, x above y
            frac = q.qmeans & ((np.int64(1) << q.mbits[:, None]) - 1)
            raw = np.concatenate([raw, (frac[:, 0] << q.mbits) | frac[:, 1]])
            nraw = np.concatenate([nraw, 2 * q.mbits])
        rot_subs, rot_raw, rot_nraw = _rotation_split(q.qrot, q.rbits)
        shifts = color_shifts(q.qscales, steps.scale_step) if steps.color_by_area else None
        colors = _color_substreams(q.qcolors, shifts, grid.color_levels)
        s = grid.scale_levels
        aniso = q.qscales[:, 0] - q.qscales[:, 1]
        plain = {0: [(symbols, GAP_ALPHABET)], 2: [(q.qscales[:, 0], s)], 3: [(aniso, s)], 4: rot_subs,
                 **{6 + i: c for i, c in enumerate(colors)}}
        modelled = {**plain, 3: _anisotropy_subs(q.qscales[:, 0], aniso, s, grid, steps)[1]}
        payloads = {}
        for i in _ANS_STREAMS:  # version 3: each stream with the smaller of its two codings (flag bit i)
            payloads[i] = ans.encode_many(plain[i], STREAMS[i])
            if version >= 3:
                alt = ans.encode_many(modelled[i], STREAMS[i], smooth=True)
                if len(alt) < len(payloads[i]):
                    payloads[i], flags = alt, flags | (1 << i)
        parts = [
            (n, payloads[0]),
            (len(packed := entropy.pack_bits(raw, nraw)), packed),
            (n, payloads[2]),
            (n, payloads[3]),
            (int((q.rbits > 0).sum()), payloads[4]),
            (len(packed_r := entropy.pack_bits(rot_raw, rot_nraw)), packed_r),
            *[(n, payloads[6 + i]) for i in range(3)],
        ]
    else:
        x0 = y0 = 0
        parts = [(0, b"")] * len(STREAMS)
    header = _HEADER.pack(
        b"SSGR", version, flags, height, width, n, blend, RATE_IDS[rate], steps.mean_frac_bits, len(STREAMS), x0, y0,
        grid.scale_lo, steps.scale_step, grid.scale_levels, steps.rotation_tolerance, *grid.color_lo,
        steps.color_step, *grid.color_levels, nominal_cr,
    )
    body = header + b"".join(_STREAM.pack(c, len(p)) for c, p in parts) + b"".join(p for _, p in parts)
    return body + _CRC.pack(zlib.crc32(body))


def _finite_in(v: float, lo: float, hi: float) -> bool:
    return math.isfinite(v) and lo <= v <= hi


def parse(data: bytes, check_size, max_n) -> Parsed:
    """Header, stream table and checksum of a version-2, -3 or -4 record (magic and version already checked).

    ``check_size(h, w)`` raises for an image size out of range; ``max_n(h, w)`` bounds the Gaussian count.
    """
    if len(data) < MIN_RECORD_SIZE:
        raise RecordError(f"record truncated: {len(data)} bytes, the version-2/3 header alone needs {MIN_RECORD_SIZE}")
    fields = _HEADER.unpack_from(data, 0)
    (_, version, flags, height, width, n, blend, rate, mfb, nstreams, x0, y0, scale_lo, scale_step, scale_levels,
     rot_tol) = fields[:16]
    color_lo, color_step, color_levels, nominal_cr = fields[16:19], fields[19], fields[20:23], fields[23]
    table = []
    if nstreams == len(STREAMS):
        table = [_STREAM.unpack_from(data, _HEADER.size + i * _STREAM.size) for i in range(len(STREAMS))]
        expected = HEADER_SIZE + sum(t[1] for t in table) + _CRC.size
        if len(data) < expected:
            raise RecordError(f"record truncated: {len(data)} bytes, the header declares {expected}")
        if len(data) > expected:
            raise RecordError(f"record has {len(data) - expected} trailing bytes after its declared end "
                              f"({expected} bytes)")
    (stored_crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    crc = zlib.crc32(memoryview(data)[: len(data) - _CRC.size])
    if crc != stored_crc:
        raise RecordError(f"record checksum mismatch (CRC32 {crc:08x}, stored {stored_crc:08x}): damaged record")
    # The checksum matched: the rest guards against well-formed but hostile or buggy records.
    if flags & ~(V3_FLAGS if version >= 3 else 0):
        raise RecordError(f"record uses unknown flags {flags:#06x} (version {version} allows "
                          f"{V3_FLAGS if version >= 3 else 0:#06x})")
    if nstreams != len(STREAMS):
        raise RecordError(f"record declares {nstreams} streams, version 2 has {len(STREAMS)}")
    check_size(height, width)
    if n > max_n(height, width):
        raise RecordError(f"record declares {n} Gaussians, more than the limit {max_n(height, width)} "
                          f"for a {width}x{height} image")
    if rate not in RATE_MODES:
        raise RecordError(f"record uses unknown rate mode {rate}")
    if not 0 <= mfb <= 8:
        raise RecordError(f"record has mean_frac_bits {mfb} outside 0..8")
    if not (_finite_in(scale_lo, -MAX_ABS_LOG_SCALE, MAX_ABS_LOG_SCALE) and _finite_in(scale_step, 1e-6, 10.0)
            and 1 <= scale_levels <= MAX_LEVELS
            and abs(scale_lo + scale_levels * scale_step) <= MAX_ABS_LOG_SCALE):
        raise RecordError(f"record has an invalid log-scale grid (lo {scale_lo}, step {scale_step}, "
                          f"{scale_levels} levels)")
    if not _finite_in(rot_tol, 1e-6, 1e6):
        raise RecordError(f"record has an invalid rotation tolerance {rot_tol}")
    if not (all(_finite_in(v, -MAX_ABS_COLOR, MAX_ABS_COLOR) for v in color_lo) and _finite_in(color_step, 1e-9, 1.0)
            and all(1 <= k <= MAX_LEVELS for k in color_levels)
            and max(color_levels) * color_step <= MAX_ABS_COLOR):
        raise RecordError(f"record has an invalid colour grid (lo {tuple(color_lo)}, step {color_step}, "
                          f"levels {tuple(color_levels)})")
    if not _finite_in(nominal_cr, 0.0, 1e9) or nominal_cr <= 0:
        raise RecordError(f"record has an invalid nominal CR {nominal_cr}")
    unit = 1 if version >= 5 else 1 << mfb  # version 5 codes whole pixels in Z-order
    for name, v, side in (("x", x0, width), ("y", y0, height)):
        if not -side * unit <= v <= 2 * side * unit:
            raise RecordError(f"record's {name} origin {v} lies outside the representable area")
    raw_bound = 8 + (2 * MAX_MEAN_BITS // 8 if version >= 5 else 0)  # gap bits, version 5's fractional bits
    for i, (count, length) in enumerate(table):
        if i in (0, 2, 3, 6, 7, 8) and count != n:
            raise RecordError(f"stream '{STREAMS[i]}' declares {count} symbols, {n} Gaussians need {n}")
        if i == 4 and count > n:
            raise RecordError(f"stream '{STREAMS[i]}' declares {count} symbols, more than {n} Gaussians")
        if i in (1, 5) and count != length:
            raise RecordError(f"stream '{STREAMS[i]}' declares {count} bytes but holds {length}")
        if i == 1 and count > raw_bound * n:
            raise RecordError(f"stream '{STREAMS[i]}' declares {count} bytes, more than {raw_bound} per Gaussian")
        if i == 5 and count > n:
            raise RecordError(f"stream '{STREAMS[i]}' declares {count} bytes, more than 1 per Gaussian")
        if i in _ANS_STREAMS and length % 4:
            raise RecordError(f"stream '{STREAMS[i]}' payload of {length} bytes is not whole 32-bit words")
    streams, offset = [], HEADER_SIZE
    for count, length in table:
        streams.append((count, offset, length))
        offset += length
    steps = steps_for(Steps(mfb, scale_step, rot_tol, color_step), version)
    grid = Grid(scale_lo, scale_levels, tuple(color_lo), tuple(color_levels))
    header = Header(version, flags, height, width, n, blend, RATE_MODES[rate], steps, x0, y0, grid, nominal_cr)
    return Parsed(header, tuple(streams))


def decode(parsed: Parsed, data: bytes) -> Gaussians:
    """Gaussians (CPU, canonical form, stored order) of a parsed version-2, -3 or -4 record."""
    h = parsed.header
    n, steps, grid = h.n, h.steps, h.grid
    payload = lambda i: data[parsed.streams[i][1]:parsed.streams[i][1] + parsed.streams[i][2]]  # noqa: E731
    if n == 0:
        if any(length for _, _, length in parsed.streams):
            raise RecordError("record with 0 Gaussians carries stream data")
        return Gaussians.empty()
    smooth = lambda i: bool(h.flags >> i & 1)  # noqa: E731  (only version 3 sets flags)
    dec = lambda i, shapes: ans.decode_many(payload(i), shapes, STREAMS[i], smooth(i))  # noqa: E731
    symbols = dec(0, [(n, GAP_ALPHABET)])[0]
    s = grid.scale_levels
    qsx = dec(2, [(n, s)])[0]
    if smooth(3):
        ctx = anisotropy_context(qsx, grid.scale_lo, steps.scale_step)
        aniso = np.zeros(n, dtype=np.int64)
        for c, a in enumerate(dec(3, [(int((ctx == c).sum()), s) for c in range(ANISOTROPY_CONTEXTS)])):
            aniso[ctx == c] = a
    else:
        aniso = dec(3, [(n, s)])[0]
    if bool((aniso > qsx).any()):
        raise RecordError(f"stream '{STREAMS[3]}' holds an anisotropy larger than its log-scale")
    qscales = np.stack([qsx, qsx - aniso], axis=1)
    rbits = rotation_bits(qscales, grid.scale_lo, steps.scale_step, steps.rotation_tolerance)
    if parsed.streams[4][0] != int((rbits > 0).sum()):
        raise RecordError(f"stream '{STREAMS[4]}' declares {parsed.streams[4][0]} symbols, the scales need "
                          f"{int((rbits > 0).sum())}")
    shapes = [(int((rbits == b).sum()), 1 << min(b, ROTATION_MODEL_BITS)) for b in range(1, MAX_ROTATION_BITS + 1)]
    tops = dec(4, shapes)
    low = np.maximum(rbits - ROTATION_MODEL_BITS, 0)
    raw = entropy.unpack_bits(payload(5), low).astype(np.int64)
    qrot = np.zeros(n, dtype=np.int64)
    for b, top in zip(range(1, MAX_ROTATION_BITS + 1), tops):
        qrot[rbits == b] = top
    qrot = (qrot << low) | raw
    qc = _decode_colors(dec, qscales, steps, grid)
    mbits = mean_bits(qscales, qc, steps, grid) if steps.mean_by_sensitivity else \
        np.full(n, steps.mean_frac_bits, dtype=np.int64)
    qmeans = _decode_positions(symbols, payload(1), mbits, h)
    return dequantize(Quantized(qmeans, qscales, qrot, rbits, qc, mbits), steps, grid)


def _decode_positions(symbols: np.ndarray, raw_bytes: bytes, mbits: np.ndarray, h: Header) -> np.ndarray:
    """[N, 2] position levels (on each Gaussian's grid of 2**-mbits px) from the gap symbols [N] and the raw
    bits (each gap's low bits; version 5: then each Gaussian's 2 * mbits fractional bits, x above y)."""
    nraw = entropy.symbols_nraw(symbols)
    by_sensitivity = h.steps.mean_by_sensitivity
    counts = np.concatenate([nraw, 2 * mbits]) if by_sensitivity else nraw
    raw = entropy.unpack_bits(raw_bytes, counts)
    gaps = entropy.symbols_to_gaps(symbols, raw[:len(nraw)])
    if int(gaps.max()) >= 1 << 62:
        raise RecordError("position stream holds a gap beyond the representable area")
    codes = np.cumsum(gaps, dtype=np.uint64)  # no wrap: N < 2**25 gaps, each < 2**62
    if len(codes) > 1 and not bool((codes[1:] >= codes[:-1]).all()):
        raise RecordError("position stream overflows")
    ux, uy = entropy.morton_decode(codes)
    q = np.stack([ux.astype(np.int64) + h.x0, uy.astype(np.int64) + h.y0], axis=1)  # whole pixels in version 5
    unit = 1 if by_sensitivity else 1 << h.steps.mean_frac_bits
    if int(q[:, 0].max()) > 2 * h.width * unit or int(q[:, 1].max()) > 2 * h.height * unit:
        raise RecordError("record holds a position outside the representable area [-W, 2W] x [-H, 2H]")
    if by_sensitivity:
        frac = raw[len(nraw):].astype(np.int64)
        low = (np.int64(1) << mbits) - 1
        q = np.stack([(q[:, 0] << mbits) | (frac >> mbits), (q[:, 1] << mbits) | (frac & low)], axis=1)
    return q


def _decode_colors(dec, qscales: np.ndarray, steps: Steps, grid: Grid) -> np.ndarray:
    """[N, 3] colour integers (R, G, B) from streams 6-8 (``dec(i, shapes)`` decodes stream i's sub-streams):
    one sub-stream each (versions 2/3) or one per colour-step octave (version 4)."""
    n = qscales.shape[0]
    if steps.color_by_area:
        shifts = color_shifts(qscales, steps.scale_step)
        groups = [(shifts == j, j) for j in range(COLOR_SHIFTS[0], COLOR_SHIFTS[1] + 1)]
        levels = [tuple(color_alphabet(k, j) if here.any() else 1 for k in grid.color_levels) for here, j in groups]
    else:
        groups, levels = [(np.ones(n, dtype=bool), 0)], [grid.color_levels]
    counts = [int(here.sum()) for here, _ in groups]
    g_subs = dec(6, [(c, kg) for c, (_, kg, _) in zip(counts, levels)])
    rg_subs = dec(7, [(c, kr + kg - 1) for c, (kr, kg, _) in zip(counts, levels)])
    bg_subs = dec(8, [(c, kb + kg - 1) for c, (_, kg, kb) in zip(counts, levels)])
    qc = np.zeros((n, 3), dtype=np.int64)
    for (here, _), (kr, kg, kb), qg, drg, dbg in zip(groups, levels, g_subs, rg_subs, bg_subs):
        qr, qb = drg + qg - (kg - 1), dbg + qg - (kg - 1)
        if bool((qr < 0).any() | (qr >= kr).any() | (qb < 0).any() | (qb >= kb).any()):
            raise RecordError("colour streams hold a value outside the record's colour grid")
        qc[here] = np.stack([qr, qg, qb], axis=1)
    return qc
