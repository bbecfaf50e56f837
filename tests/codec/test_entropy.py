"""Vectorised entropy-coding tools: Morton codes, gap symbols, bit packing."""
from __future__ import annotations

import numpy as np
import pytest

from smartsplat_dist.codec import entropy
from smartsplat_dist.errors import RecordError


def test_morton_round_trip_and_order():
    rng = np.random.default_rng(0)
    ux = rng.integers(0, 2 ** 32, 1000, dtype=np.uint64)
    uy = rng.integers(0, 2 ** 32, 1000, dtype=np.uint64)
    codes = entropy.morton_encode(ux, uy)
    bx, by = entropy.morton_decode(codes)
    np.testing.assert_array_equal(bx, ux)
    np.testing.assert_array_equal(by, uy)
    small = entropy.morton_encode(np.array([0, 1, 0, 1, 2], np.uint64), np.array([0, 0, 1, 1, 0], np.uint64))
    np.testing.assert_array_equal(small, [0, 1, 2, 3, 4])


def test_bit_length_is_exact_for_all_magnitudes():
    v = np.array([0, 1, 2, 3, 4, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 1, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1], np.uint64)
    np.testing.assert_array_equal(entropy.bit_length(v), [int(x).bit_length() for x in v.tolist()])


def test_gap_symbols_round_trip():
    rng = np.random.default_rng(1)
    gaps = np.concatenate([np.arange(40, dtype=np.uint64), rng.integers(0, 2 ** 62, 500, dtype=np.uint64),
                           np.array([2 ** 64 - 1], np.uint64)])
    symbols, raw, nraw = entropy.gaps_to_symbols(gaps)
    assert symbols.dtype == np.uint8 and int(symbols.max()) <= entropy.MAX_GAP_SYMBOL
    np.testing.assert_array_equal(entropy.symbols_nraw(symbols), nraw)
    packed = entropy.pack_bits(raw, nraw)
    assert len(packed) == (int(nraw.sum()) + 7) // 8
    np.testing.assert_array_equal(entropy.symbols_to_gaps(symbols, entropy.unpack_bits(packed, nraw)), gaps)


def test_unpack_checks_length_and_padding():
    nbits = np.array([3, 2], np.int64)
    data = entropy.pack_bits(np.array([5, 3], np.uint64), nbits)
    assert data == bytes([5 | (3 << 3)])
    with pytest.raises(RecordError, match="expected 1 bytes"):
        entropy.unpack_bits(data + b"\0", nbits)
    with pytest.raises(RecordError, match="padding"):
        entropy.unpack_bits(bytes([data[0] | 0x80]), nbits)
    with pytest.raises(RecordError, match="invalid gap symbol"):
        entropy.symbols_nraw(np.array([255], np.uint8))


def test_compress_picks_the_shortest_and_is_deterministic():
    rng = np.random.default_rng(2)
    noise = rng.bytes(300)
    assert entropy.compress_stream(noise) == (entropy.METHOD_STORED, noise)
    skewed = rng.choice(4, 5000, p=[0.7, 0.2, 0.05, 0.05]).astype(np.uint8).tobytes()
    method, payload = entropy.compress_stream(skewed)
    assert method == entropy.METHOD_LZMA2 and len(payload) < 0.3 * len(skewed)
    assert entropy.compress_stream(skewed) == (method, payload)
    assert entropy.decompress_stream(method, payload, len(skewed), "x") == skewed
    with pytest.raises(RecordError, match="unknown stream method"):
        entropy.decompress_stream(5, payload, len(skewed), "x")
