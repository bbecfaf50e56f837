"""Fuzzing the record parser (Hypothesis, a bounded number of examples): any bytes, mutated real records and
forged well-signed headers either decode or raise RecordError, quickly, and never ask for unbounded work."""
import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartsplat_dist.codec import decode_record, read_meta
from smartsplat_dist.codec.limits import check_render
from smartsplat_dist.errors import RecordError
from tests.archive.archive_helpers import make_record

from .forge import forge_record, recrc

#: Examples per fuzz test (3 tests here: 3 x FUZZ_EXAMPLES inputs); kept small so CI stays fast.
FUZZ_EXAMPLES = 300
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
BASE = make_record(7, height=24, width=32, n=60)  # version 3 (the default)


def _decode_or_record_error(data: bytes) -> None:
    try:
        g, meta = decode_record(data)
    except RecordError as err:
        assert str(err) and "\n" not in str(err)
        return
    assert len(g) == meta.n and meta.height * meta.width <= 300_000_000
    assert all(bool(np.isfinite(t.numpy()).all()) for t in g.tensors())
    try:
        check_render(g, meta.height, meta.width)
    except RecordError:
        pass


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes(data):
    prefix = {1: b"SSGR\x01\x00", 2: b"SSGR\x03\x00", 3: b"SSGR\x02\x00"}.get(len(data) % 4, b"")  # versions 1-3, or raw
    _decode_or_record_error(prefix + data)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(BASE) - 5), st.integers(0, 255)), min_size=1, max_size=8),
       st.booleans())
def test_mutated_real_record_with_a_valid_crc(edits, resign):
    data = bytearray(BASE)
    for pos, value in edits:
        data[pos] = value
    _decode_or_record_error(recrc(bytes(data)) if resign else bytes(data))


@FUZZ
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
       st.floats(-50, 50), st.floats(-50, 50), st.integers(-(2**31), 2**31 - 1))
def test_forged_headers(height, width, n, lo, hi, x0):
    # Header fields anywhere in their range, with small real streams (the table is taken from the forger).
    rec = forge_record(min(height, 2**20), min(width, 2**20), n % 50, scale_lo=min(lo, hi), scale_hi=max(lo, hi),
                       x0=x0 % 2**20)
    patched = bytearray(rec)
    struct.pack_into("<III", patched, 8, height, width, n)
    for data in (rec, recrc(bytes(patched))):
        _decode_or_record_error(data)
        try:
            read_meta(data)
        except RecordError:
            pass
