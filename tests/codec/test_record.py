"""Record version 1 (written with ``version=1``; still decoded): round trip, size, determinism, quantiser in the loop, and safe parsing of damaged bytes."""
from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest
import torch

from smartsplat_dist.codec import (
    MAGIC, CodecConfig, RecordMeta, canonicalize, decode_record, read_meta,
)
from smartsplat_dist.codec import encode_record as _encode_record
from smartsplat_dist.codec import fake_quantize_v1 as fake_quantize
from smartsplat_dist.codec.record import HEADER_SIZE, STREAMS
from smartsplat_dist.errors import ConfigError, RecordError
from smartsplat_dist.model import Gaussians
from smartsplat_dist.raster.footprint import conics

from .conftest import realistic_gaussians


def encode_record(*args, **kwargs) -> bytes:
    """The version-1 encoder (this file tests the version-1 layout)."""
    return _encode_record(*args, version=1, **kwargs)


def _sorted(g: Gaussians) -> Gaussians:
    """Gaussians in a canonical order (by every parameter), to compare sets."""
    t = torch.cat([g.means, g.scales, g.rotations[:, None], g.colors], dim=1).detach().numpy()
    order = np.lexsort(np.round(t, 4).T[::-1])  # rounded: ULP differences must not reorder ties
    return Gaussians(*(x[torch.from_numpy(order)] for x in g.tensors()))


def _small(n=60, h=40, w=50, seed=3) -> Gaussians:
    rng = np.random.default_rng(seed)
    f = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return Gaussians(f(rng.random((n, 2)) * [w, h]), f(np.exp(rng.normal(0.5, 0.7, (n, 2)))),
                     f(rng.uniform(-7, 7, n)), f(rng.normal(0.4, 0.3, (n, 3))))


# ----------------------------------------------------------------------------------------------- round trip

def test_decode_equals_fake_quantize(fitted_like):
    g, h, w = fitted_like
    cfg = CodecConfig()
    record = encode_record(g, RecordMeta(h, w), cfg)
    dec, meta = decode_record(record)
    assert (meta.height, meta.width, meta.n, meta.blend, meta.codec) == (h, w, len(g), "sum", cfg)
    fq = fake_quantize(g, RecordMeta(h, w), cfg)
    a, b = _sorted(dec), _sorted(fq.detach())
    for x, y in zip(a.tensors(), b.tensors()):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-6)


def test_quantisation_errors_are_within_half_a_step(fitted_like):
    g, h, w = fitted_like
    cfg = CodecConfig(mean_frac_bits=3, scale_bits=6, rotation_bits=6, color_bits=7)
    fq = fake_quantize(g, RecordMeta(h, w), cfg).detach()
    cs, ct = canonicalize(g.scales, g.rotations)
    assert (fq.means - g.means).abs().max() <= 2 ** -4 + 1e-6
    log_s = torch.log(cs)
    step = (log_s.max() - log_s.min()) / 63  # one grid for both axes
    assert ((torch.log(fq.scales) - log_s).abs() <= step / 2 + 1e-5).all()
    assert (fq.scales[:, 0] >= fq.scales[:, 1]).all()
    dtheta = torch.remainder(fq.rotations - ct + math.pi / 2, math.pi) - math.pi / 2
    assert dtheta.abs().max() <= math.pi / 128 + 1e-5
    cstep = (g.colors.max(0).values - g.colors.min(0).values).max() / 127  # one step for all channels
    assert ((fq.colors - g.colors).abs() <= cstep / 2 + 1e-6).all()


def test_canonical_form_is_the_same_covariance():
    g = _small(200)
    s, t = canonicalize(g.scales, g.rotations)
    assert (s[:, 0] >= s[:, 1]).all() and (t >= 0).all() and (t <= math.pi).all()
    torch.testing.assert_close(conics(s, t), conics(g.scales, g.rotations), rtol=1e-4, atol=1e-5)


def test_decoded_gaussians_render_like_the_originals_up_to_quantisation(fitted_like):
    g, h, w = fitted_like
    dec, _ = decode_record(encode_record(g, RecordMeta(h, w)))
    # Same covariances up to quantisation: compare conics of the matched (sorted by position) sets.
    fq = fake_quantize(g, RecordMeta(h, w)).detach()
    order_a = np.lexsort(dec.means.numpy().T[::-1])
    order_b = np.lexsort(fq.means.numpy().T[::-1])
    ca = conics(dec.scales, dec.rotations)[order_a]
    cb = conics(fq.scales, fq.rotations)[order_b]
    torch.testing.assert_close(ca, cb, rtol=1e-4, atol=1e-5)


def test_fake_quantize_is_straight_through(fitted_like):
    g, h, w = fitted_like
    params = [t.clone().requires_grad_(True) for t in g.tensors()]
    fq = fake_quantize(Gaussians(*params), RecordMeta(h, w))
    weights = [torch.randn_like(t) for t in fq.tensors()]
    sum((a * b).sum() for a, b in zip(fq.tensors(), weights)).backward()
    torch.testing.assert_close(params[0].grad, weights[0])  # means: identity
    torch.testing.assert_close(params[3].grad, weights[3])  # colours: identity
    swap = g.scales[:, 1] > g.scales[:, 0]
    torch.testing.assert_close(params[1].grad, torch.where(swap[:, None], weights[1].flip(1), weights[1]))
    torch.testing.assert_close(params[2].grad, weights[2])


def test_empty_and_single(fitted_like):
    empty = encode_record(Gaussians.empty(), RecordMeta(7, 9))
    g, meta = decode_record(empty)
    assert len(g) == 0 and (meta.height, meta.width, meta.n) == (7, 9, 0)
    one = _small(1)
    dec, meta = decode_record(encode_record(one, RecordMeta(40, 50)))
    assert meta.n == 1
    torch.testing.assert_close(dec.means, torch.round(one.means * 8) / 8)


def test_16k_positions_stay_precise_and_far_means_are_clamped():
    h, w = 10880, 16320
    means = torch.tensor([[0.0, 0.0], [16319.93, 10879.94], [8000.56, 123.43], [-40000.0, 5.0]])
    g = Gaussians(means, torch.ones(4, 2), torch.zeros(4), torch.full((4, 3), 0.5))
    dec, _ = decode_record(encode_record(g, RecordMeta(h, w)))
    got = sorted(map(tuple, dec.means.tolist()))
    want = sorted([(0.0, 0.0), (16319.875, 10880.0), (8000.5, 123.375), (-16320.0, 5.0)])
    assert got == want  # 1/8 px everywhere; a mean 2.5 widths outside is clamped to [-W, 2W]


def test_size_is_under_7_bytes_per_gaussian(example_image, fitted_like):
    g, h, w = fitted_like  # 842 Gaussians: the 136 fixed bytes + stream framing are ~0.2 B/G here
    record = encode_record(g, RecordMeta(h, w))
    assert (len(record) - HEADER_SIZE - 4) / len(g) <= 7.0
    assert 3 * h * w / len(record) >= 0.95 * 50
    # 4000 Gaussians at a CR-50 density: the whole record, headers included, is under 7 B/G.
    big = realistic_gaussians(np.concatenate([example_image, example_image[::-1]], axis=1), 4000, seed=1)
    assert len(encode_record(big, RecordMeta(256, 768))) <= 6.7 * 4000


def test_deterministic_and_independent_of_input_order(fitted_like):
    g, h, w = fitted_like
    a = encode_record(g, RecordMeta(h, w))
    assert encode_record(g, RecordMeta(h, w)) == a
    perm = torch.randperm(len(g), generator=torch.Generator().manual_seed(0))
    assert encode_record(Gaussians(*(t[perm] for t in g.tensors())), RecordMeta(h, w)) == a


def test_other_bit_depths_round_trip():
    g = _small(300)
    for cfg in (CodecConfig(0, 1, 1, 1), CodecConfig(8, 8, 8, 8, lzma_preset=0), CodecConfig(2, 5, 4, 6)):
        record = encode_record(g, RecordMeta(40, 50), cfg)
        dec, meta = decode_record(record)
        assert meta.codec == CodecConfig(cfg.mean_frac_bits, cfg.scale_bits, cfg.rotation_bits, cfg.color_bits)
        fq = fake_quantize(g, meta, cfg).detach()
        for x, y in zip(_sorted(dec).tensors(), _sorted(fq).tensors()):
            torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-6)


def test_read_meta_reads_the_header_only(fitted_like):
    g, h, w = fitted_like
    record = encode_record(g, RecordMeta(h, w))
    meta = read_meta(record)
    assert (meta.height, meta.width, meta.n, meta.version) == (h, w, len(g), 1)


# ----------------------------------------------------------------------------------------------- encode errors

def test_encode_refuses_bad_input():
    g = _small(10)
    with pytest.raises(RecordError, match="non-finite values in colors"):
        encode_record(Gaussians(g.means, g.scales, g.rotations, g.colors.clone().fill_(float("nan"))),
                      RecordMeta(40, 50))
    with pytest.raises(RecordError, match="scale must be > 0"):
        encode_record(Gaussians(g.means, -g.scales, g.rotations, g.colors), RecordMeta(40, 50))
    with pytest.raises(RecordError, match="meta.n"):
        encode_record(g, RecordMeta(40, 50, n=11))
    with pytest.raises(RecordError, match="exceed the limit"):
        encode_record(g, RecordMeta(2, 3))
    with pytest.raises(RecordError, match="height"):
        encode_record(g, RecordMeta(0, 50))
    with pytest.raises(ConfigError, match="color_bits"):
        CodecConfig(color_bits=9)
    assert CodecConfig.from_dict(CodecConfig(scale_bits=7).to_dict()) == CodecConfig(scale_bits=7)


# ----------------------------------------------------------------------------------------------- damaged records

@pytest.fixture(scope="module")
def record() -> bytes:
    return encode_record(_small(80), RecordMeta(40, 50))


def _raises_record_error(data: bytes) -> str:
    with pytest.raises(RecordError) as info:
        decode_record(data)
    return str(info.value)


def test_truncation_at_every_offset(record):
    for cut in range(len(record)):
        msg = _raises_record_error(record[:cut])
        assert "truncated" in msg or "magic" in msg, (cut, msg)
    with pytest.raises(RecordError, match="truncated"):
        read_meta(record[:HEADER_SIZE])


def test_trailing_garbage(record):
    assert "trailing" in _raises_record_error(record + b"\x00")
    assert "trailing" in _raises_record_error(record + b"more bytes")


def test_every_header_byte_flip_and_sampled_payload_flips(record):
    rng = np.random.default_rng(0)
    positions = list(range(HEADER_SIZE)) + sorted(rng.choice(np.arange(HEADER_SIZE, len(record)), 60,
                                                             replace=False).tolist())
    for pos in positions:
        for mask in (0x01, 0x80, 0xFF):
            bad = bytearray(record)
            bad[pos] ^= mask
            _raises_record_error(bytes(bad))


def test_magic_version_and_checksum_messages(record):
    assert "magic" in _raises_record_error(b"XXXX" + record[4:])
    assert "version 6" in _raises_record_error(record[:4] + struct.pack("<H", 6) + record[6:])
    bad = bytearray(record)
    bad[HEADER_SIZE + 3] ^= 0x10
    assert "checksum" in _raises_record_error(bytes(bad))
    with pytest.raises(RecordError, match="must be bytes"):
        decode_record("not bytes")


def _resign(body: bytes) -> bytes:
    """A record with its CRC recomputed: the damage the checksum cannot see (a hostile or buggy writer)."""
    return body[:-4] + struct.pack("<I", zlib.crc32(body[:-4]))


def _with_field(record: bytes, offset: int, fmt: str, value) -> bytes:
    bad = bytearray(record)
    struct.pack_into(fmt, bad, offset, value)
    return _resign(bytes(bad))


def test_well_signed_but_inconsistent_headers(record):
    cases = {
        "flags": (6, "<H", 1),
        "Gaussians": (16, "<I", 10 ** 9),  # n beyond H*W, refused before any allocation
        "height": (8, "<I", 0),
        "blend": (20, "<B", 9),
        "quantisation settings": (22, "<B", 0),  # scale_bits = 0
        "streams": (25, "<B", 3),
        "origin": (28, "<i", -(2 ** 31)),
        "log-scale range": (36, "<f", float("nan")),
        "colour minimum": (44, "<f", -1e30),
        "colour span": (56, "<f", -1.0),
    }
    for what, (offset, fmt, value) in cases.items():
        assert what in _raises_record_error(_with_field(record, offset, fmt, value)), what
    table = 60
    assert "unknown method" in _raises_record_error(_with_field(record, table + 9 * 4, "<B", 7))
    assert "declares" in _raises_record_error(_with_field(record, table + 9 * 2 + 1, "<I", 10 ** 8))
    # A rotation value beyond the declared bits: claim rotation_bits = 1
    assert "beyond 1 bits" in _raises_record_error(_with_field(record, 23, "<B", 1))
    # Wrong N for the streams: n = 79 with 80-byte planes
    assert "declares 80 bytes" in _raises_record_error(_with_field(record, 16, "<I", 79))


def test_fuzzed_well_signed_records_never_raise_anything_else(record):
    rng = np.random.default_rng(1)
    for i in range(400):
        bad = bytearray(record)
        for pos in rng.integers(0, len(record) - 4, size=int(rng.integers(1, 4))):
            bad[pos] = int(rng.integers(0, 256))
        try:
            g, meta = decode_record(_resign(bytes(bad)))
        except RecordError:
            continue
        # A change the format cannot detect (e.g. a quantised value) must still give a valid, finite result.
        assert len(g) == meta.n and all(torch.isfinite(t).all() for t in g.tensors())
        assert (g.scales > 0).all()


def test_random_bytes_fuzz():
    rng = np.random.default_rng(2)
    for i in range(600):
        size = int(rng.integers(0, 400))
        data = rng.bytes(size)
        if i % 2:  # give half of them a valid magic + version so parsing goes further
            data = MAGIC + struct.pack("<H", 1) + data
        if i % 4 == 3:
            data = _resign(data + b"\0\0\0\0") if len(data) >= 4 else data
        with pytest.raises(RecordError):
            decode_record(data)


def test_overlong_compressed_stream_is_refused_while_bounded():
    from smartsplat_dist.codec import entropy

    method, payload = entropy.compress_stream(b"\0" * 100_000)
    assert method == entropy.METHOD_LZMA2 and len(payload) < 1000
    with pytest.raises(RecordError, match="more than the 10 bytes"):
        entropy.decompress_stream(method, payload, 10, "test")
    with pytest.raises(RecordError, match="decodes to 100000 bytes, header says 200000"):
        entropy.decompress_stream(method, payload, 200_000, "test")
    with pytest.raises(RecordError):
        entropy.decompress_stream(method, b"\x01\x02\x03" + payload[3:], 100_000, "test")
    with pytest.raises(RecordError):
        entropy.decompress_stream(method, payload[: len(payload) // 2], 100_000, "test")
    assert entropy.decompress_stream(method, payload, 100_000, "test") == b"\0" * 100_000


def test_an_empty_record_is_the_documented_header_and_checksum():
    """FORMAT.md, version 1: a 60-byte fixed header, one 9-byte table entry per stream (8), a CRC32; no payload."""
    rec = encode_record(Gaussians.empty(), RecordMeta(8, 8))
    assert len(STREAMS) == 8 and len(rec) == HEADER_SIZE + 4 == 60 + 8 * 9 + 4
    assert struct.unpack("<I", rec[-4:])[0] == zlib.crc32(rec[:-4])
    assert decode_record(rec)[1].n == 0


def test_frozen_quantizer_keeps_its_ranges_and_encodes_with_them(fitted_like):
    from smartsplat_dist.codec import FrozenQuantizer, compute_params

    g, h, w = fitted_like
    meta = RecordMeta(h, w)
    q = FrozenQuantizer(meta)
    q(g)
    frozen = q.params
    assert frozen == compute_params(g)
    moved = Gaussians(g.means + 0.3, g.scales * 1.5, g.rotations, g.colors * 1.2 + 0.1)  # ranges change
    assert compute_params(moved) != frozen
    out = q(moved).detach()
    assert q.params == frozen
    dec, _ = decode_record(encode_record(moved, meta, params=frozen))
    for x, y in zip(_sorted(dec).tensors(), _sorted(out).tensors()):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-6)
    # values outside the frozen ranges are clamped into them
    assert float(dec.colors.max()) <= max(frozen.color_lo) + frozen.color_span + 1e-6
    assert float(torch.log(dec.scales).max()) <= frozen.scale_hi + 1e-5
