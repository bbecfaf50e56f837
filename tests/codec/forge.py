"""Forging records: any header fields and streams, with a valid CRC32 (anyone can compute one).

``forge_record(height=2**20, width=2**20, n=0)`` is a well-formed version 1 record that asks for whatever its
header says; the decoder must bound the work such a record asks for before doing it.
"""
from __future__ import annotations

import struct
import zlib

from smartsplat_dist.codec import entropy
from smartsplat_dist.codec.record import _CRC, _HEADER, _STREAM, MAGIC, STREAMS

VERSION_1 = 1


def forge_record(height: int, width: int, n: int, *, streams: list[bytes] | None = None,
                 scale_lo: float = 0.0, scale_hi: float = 0.0, color_lo=(0.0, 0.0, 0.0), color_span: float = 1.0,
                 x0: int = 0, y0: int = 0, bits=(3, 8, 7, 8), compress: bool = True) -> bytes:
    """A version 1 record with these header fields; ``streams`` default: all-zero streams for ``n`` Gaussians
    (every Gaussian at the origin + (x0, y0), the smallest scale, rotation 0, the lowest colour)."""
    if streams is None:
        streams = [bytes(n), b""] + [bytes(n)] * 6
    mfb, sb, rb, cb = bits
    header = _HEADER.pack(MAGIC, VERSION_1, 0, height, width, n, 0, mfb, sb, rb, cb, len(STREAMS), 0, x0, y0,
                          scale_lo, scale_hi, *color_lo, color_span)
    table, payloads = [], []
    for raw in streams:
        method, payload = entropy.compress_stream(raw, 6) if compress else (entropy.METHOD_STORED, raw)
        table.append(_STREAM.pack(method, len(raw), len(payload)))
        payloads.append(payload)
    body = header + b"".join(table) + b"".join(payloads)
    return body + _CRC.pack(zlib.crc32(body))


def recrc(record: bytes) -> bytes:
    """``record`` with its CRC32 recomputed (after editing bytes inside it)."""
    body = record[:-4]
    return body + struct.pack("<I", zlib.crc32(body))
