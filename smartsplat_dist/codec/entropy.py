"""Entropy coding of the record's integer streams, separate from the quantiser (CompressAI-style).

Three vectorised (numpy) tools, each with a bounded, validating inverse:

* Morton (Z-order) codes of quantised positions, so that positions become small sorted gaps;
* gap symbols: a gap ``d >= 0`` becomes one byte (its bit length and the two bits after the leading one) plus
  ``bit_length - 3`` raw low bits, packed LSB-first into a bit stream;
* byte streams compressed with raw LZMA2 (stdlib ``lzma``): LZMA's literal coder is an adaptive binary
  arithmetic coder, so on a stream of small symbols it comes within a few percent of the order-0 entropy; with ``lc=4``
  it conditions each byte on the previous one (neighbours in Z-order are neighbours in the image). The encoder
  keeps the shortest of lc=0, lc=4 and the bytes as they are.
"""
from __future__ import annotations

import lzma
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import RecordError

#: Stream methods (one byte in the stream table).
METHOD_STORED = 0
METHOD_LZMA2 = 1
#: LZMA2 dictionary size: fixed by the format so the decoder's memory is bounded (16 MiB).
LZMA_DICT_SIZE = 1 << 24

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_M8 = np.uint64(0x00FF00FF00FF00FF)
_M16 = np.uint64(0x0000FFFF0000FFFF)
_M32 = np.uint64(0x00000000FFFFFFFF)


def _spread(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.uint64) & _M32
    v = (v | (v << np.uint64(16))) & _M16
    v = (v | (v << np.uint64(8))) & _M8
    v = (v | (v << np.uint64(4))) & _M4
    v = (v | (v << np.uint64(2))) & _M2
    return (v | (v << np.uint64(1))) & _M1


def _compact(v: np.ndarray) -> np.ndarray:
    v = v & _M1
    v = (v | (v >> np.uint64(1))) & _M2
    v = (v | (v >> np.uint64(2))) & _M4
    v = (v | (v >> np.uint64(4))) & _M8
    v = (v | (v >> np.uint64(8))) & _M16
    return (v | (v >> np.uint64(16))) & _M32


def morton_encode(ux: np.ndarray, uy: np.ndarray) -> np.ndarray:
    """Z-order codes. ux, uy: [N] non-negative integers < 2**32. Returns [N] uint64 (x in the even bits)."""
    return _spread(ux) | (_spread(uy) << np.uint64(1))


def morton_decode(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`morton_encode`. codes: [N] uint64. Returns (ux, uy) [N] uint64."""
    return _compact(codes), _compact(codes >> np.uint64(1))


def bit_length(v: np.ndarray) -> np.ndarray:
    """Exact bit length of each uint64 (0 for 0). v: [N] uint64. Returns [N] int64."""
    v = v.astype(np.uint64)
    e = np.frexp(v.astype(np.float64))[1].astype(np.int64)  # may be off by one above 2**53
    e = np.clip(e, 0, 64)
    too_big = (e > 0) & ((v >> np.maximum(e - 1, 0).astype(np.uint64)) == 0)
    e = e - too_big
    too_small = (e < 64) & ((v >> np.minimum(e, 63).astype(np.uint64)) != 0)
    return e + too_small


#: Largest gap symbol (bit length 64).
MAX_GAP_SYMBOL = 4 + (64 - 3) * 4 + 3


def gaps_to_symbols(gaps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split gaps into a symbol byte and raw low bits.

    Args:
        gaps: [N] uint64.
    Returns:
        symbols [N] uint8 (gaps < 4 are their own symbol; else 4 + 4 (e - 3) + the two bits after the leading
        one, e = bit length), raw [N] uint64 (the e - 3 low bits), nraw [N] int64.
    """
    gaps = gaps.astype(np.uint64)
    e = bit_length(gaps)
    nraw = np.maximum(e - 3, 0)
    top = (gaps >> nraw.astype(np.uint64)) & np.uint64(3)
    symbols = np.where(gaps < 4, gaps, 4 + 4 * nraw + top.astype(np.int64)).astype(np.uint8)
    raw = gaps & ((np.uint64(1) << nraw.astype(np.uint64)) - np.uint64(1))
    raw = np.where(nraw > 0, raw, np.uint64(0)).astype(np.uint64)
    return symbols, raw, nraw


def symbols_nraw(symbols: np.ndarray) -> np.ndarray:
    """Raw bit count of each gap symbol. symbols: [N] uint8 (validated). Returns [N] int64."""
    s = symbols.astype(np.int64)
    if s.size and int(s.max()) > MAX_GAP_SYMBOL:
        raise RecordError(f"position stream holds an invalid gap symbol {int(s.max())} (max {MAX_GAP_SYMBOL})")
    return np.where(s < 4, 0, (s - 4) // 4)


def symbols_to_gaps(symbols: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Inverse of :func:`gaps_to_symbols`. symbols: [N] uint8, raw: [N] uint64. Returns [N] uint64."""
    s = symbols.astype(np.int64)
    nraw = symbols_nraw(symbols)
    head = np.where(s < 4, s, 4 + (s - 4) % 4).astype(np.uint64)
    return (head << nraw.astype(np.uint64)) | raw.astype(np.uint64)


def pack_bits(values: np.ndarray, nbits: np.ndarray) -> bytes:
    """Concatenate the low ``nbits[i]`` bits of each value, LSB first, into bytes (zero padded).

    Args:
        values: [N] uint64; nbits: [N] int64 in 0..64.
    """
    nbits = nbits.astype(np.int64)
    total = int(nbits.sum())
    if total == 0:
        return b""
    offsets = np.cumsum(nbits) - nbits
    bits = np.zeros(total, dtype=np.uint8)
    values = values.astype(np.uint64)
    for j in range(int(nbits.max())):
        m = nbits > j
        bits[offsets[m] + j] = ((values[m] >> np.uint64(j)) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bits, bitorder="little").tobytes()


def unpack_bits(data: bytes, nbits: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_bits`; RecordError unless ``data`` is exactly the right length with zero padding.

    Args:
        data: the packed bytes; nbits: [N] int64 in 0..64.
    Returns:
        [N] uint64.
    """
    nbits = nbits.astype(np.int64)
    total = int(nbits.sum())
    need = (total + 7) // 8
    if len(data) != need:
        raise RecordError(f"raw position bits: expected {need} bytes for {total} bits, found {len(data)}")
    values = np.zeros(nbits.shape[0], dtype=np.uint64)
    if total == 0:
        return values
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
    if bits[total:].any():
        raise RecordError("raw position bits: non-zero padding after the last value")
    offsets = np.cumsum(nbits) - nbits
    for j in range(int(nbits.max())):
        m = nbits > j
        values[m] |= bits[offsets[m] + j].astype(np.uint64) << np.uint64(j)
    return values


#: Literal-context settings the encoder tries per stream (lc + lp <= 4 for LZMA2); LZMA2 stores them in the
#: stream itself, so the decoder needs none of them.
LZMA_LC_CHOICES = (0, 4)


def _filters(preset: int, lc: int, size: int) -> list[dict]:
    # A dictionary no larger than the data: same output, far less set-up time for small streams.
    dict_size = min(LZMA_DICT_SIZE, max(1 << 12, 1 << max(size - 1, 1).bit_length()))
    return [{"id": lzma.FILTER_LZMA2, "preset": preset, "dict_size": dict_size, "lc": lc, "lp": 0, "pb": 0}]


def compress_stream(data: bytes, preset: int = 9) -> tuple[int, bytes]:
    """(method, payload): the shortest of raw LZMA2 (each ``LZMA_LC_CHOICES``) and the bytes as they are.

    Deterministic for a given liblzma (decoding never depends on the encoder's version).
    """
    if not data:
        return METHOD_STORED, b""
    best = (METHOD_STORED, bytes(data))
    for lc in LZMA_LC_CHOICES:
        packed = lzma.compress(data, format=lzma.FORMAT_RAW, filters=_filters(preset, lc, len(data)))
        if len(packed) < len(best[1]):
            best = (METHOD_LZMA2, packed)
    return best


def compress_streams(streams: list[bytes], preset: int = 9) -> list[tuple[int, bytes]]:
    """:func:`compress_stream` of each stream, in threads (liblzma releases the GIL); same output as serial."""
    big = sum(len(s) for s in streams) > (1 << 20)
    workers = min(len(streams), os.cpu_count() or 1) if big else 1
    if workers <= 1:
        return [compress_stream(s, preset) for s in streams]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda s: compress_stream(s, preset), streams))


def decompress_stream(method: int, payload: bytes, raw_len: int, what: str) -> bytes:
    """Bounded inverse of :func:`compress_stream`: never produces more than ``raw_len`` bytes.

    Raises RecordError if the method is unknown, the data is corrupt, or it decodes to any length other than
    ``raw_len`` or leaves bytes unused.
    """
    if method == METHOD_STORED:
        if len(payload) != raw_len:
            raise RecordError(f"{what}: stored stream is {len(payload)} bytes, header says {raw_len}")
        return bytes(payload)
    if method != METHOD_LZMA2:
        raise RecordError(f"{what}: unknown stream method {method}")
    dec = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2,
                                                                     "dict_size": LZMA_DICT_SIZE}])
    try:
        out = dec.decompress(payload, max_length=raw_len)
        if not dec.eof and len(out) == raw_len:
            # Output limit reached: the end marker may still be unread; anything more is an overlong stream.
            extra = dec.decompress(b"", max_length=1)
            if extra:
                raise RecordError(f"{what}: decodes to more than the {raw_len} bytes the header declares")
    except lzma.LZMAError as exc:
        raise RecordError(f"{what}: corrupt LZMA2 data ({exc})") from None
    if len(out) != raw_len:
        raise RecordError(f"{what}: decodes to {len(out)} bytes, header says {raw_len}")
    if not dec.eof:
        raise RecordError(f"{what}: LZMA2 stream does not end where the header says (truncated or overlong)")
    if dec.unused_data:
        raise RecordError(f"{what}: {len(dec.unused_data)} bytes after the end of the LZMA2 stream")
    return out
