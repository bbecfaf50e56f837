"""Classic codecs at a matched file size: never larger than the target, tight, honest about failures."""
import numpy as np
import pytest

from smartsplat_dist.bench import classic
from smartsplat_dist.io.images import load_image


def _psnr(a, b):  # local fallback metric (the real ones live in smartsplat_dist.fitting.metrics)
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.fixture(scope="module")
def photo():
    from pathlib import Path

    import smartsplat_dist

    px = load_image(Path(smartsplat_dist.__file__).parent / "examples" / "Bamboo.png").pixels
    return np.ascontiguousarray(px[64:160, 96:224])  # 96 x 128 crop of a real photo


@pytest.fixture(scope="module")
def available():
    return classic.availability()


def _usable(available):
    return [c for c in classic.CODECS if available[c] is None]


def test_availability_reports_every_codec(available):
    assert set(available) == set(classic.CODECS)
    assert available["jpeg"] is None  # Pillow always has libjpeg
    for codec, why in available.items():
        assert why is None or isinstance(why, str) and why


@pytest.mark.parametrize("codec", classic.CODECS)
def test_roundtrip_shape(codec, photo, available):
    if available[codec] is not None:
        pytest.skip(f"{codec} unavailable here: {available[codec]}")
    spec = classic.SPECS[codec]
    data = classic.encode(codec, photo, spec.q_hi if codec != "jpeg2000" else np.log(4000))
    out = classic.decode(codec, data)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert _psnr(out, photo) > 25


@pytest.mark.parametrize("codec", classic.CODECS)
@pytest.mark.parametrize("bpp", [0.6, 1.5])
def test_match_size_never_exceeds_target_and_is_tight(codec, bpp, photo, available):
    if available[codec] is not None:
        pytest.skip(f"{codec} unavailable here: {available[codec]}")
    h, w = photo.shape[:2]
    target = int(bpp * h * w / 8)
    found = classic.match_size(codec, photo, target)
    if found.data is None:
        assert found.smallest > target
        return
    assert len(found.data) <= target
    assert (found.q, len(found.data)) in found.tried
    # Every file the search saw that fits is no larger than the one returned (we keep the largest fit).
    assert all(n <= len(found.data) for _q, n in found.tried if n <= target)
    spec = classic.SPECS[codec]
    if spec.integer and found.q < spec.q_hi:
        # One quality step up no longer fits: the search found the boundary.
        assert len(classic.encode(codec, photo, found.q + 1)) > target or \
            any(q > found.q and n > target for q, n in found.tried)


def test_jpeg_search_equals_brute_force(photo):
    target = int(1.0 * photo.shape[0] * photo.shape[1] / 8)
    sizes = {q: len(classic.encode("jpeg", photo, q)) for q in range(1, 96)}
    fits = [q for q, n in sizes.items() if n <= target]
    found = classic.match_size("jpeg", photo, target)
    monotone = all(sizes[q] <= sizes[q + 1] for q in range(1, 95))
    if monotone:
        assert found.q == max(fits)
    assert len(found.data) <= target and len(found.data) == sizes[found.q]
    # Bisection: about log2(95) encodes, not 95.
    assert len(found.tried) <= 10


def test_unreachable_and_skipped_are_reported_not_raised(photo, available):
    res = classic.compare_at_size(photo, 40, ("jpeg", "webp"), {"psnr": _psnr}, available)
    assert [r.status for r in res] == ["unreachable", "unreachable"]
    assert all("bytes > target 40" in r.reason for r in res)
    fake = dict(available, jpegxl="JPEG XL needs the pillow-jxl-plugin package (test)")
    res = classic.compare_at_size(photo, 2000, ("jpegxl",), {"psnr": _psnr}, fake)
    assert res[0].status == "skipped" and "pillow-jxl-plugin" in res[0].reason and res[0].bytes is None


def test_compare_at_size_measures(photo, available):
    target = int(1.2 * photo.shape[0] * photo.shape[1] / 8)
    codecs = tuple(_usable(available))
    res = classic.compare_at_size(photo, target, codecs, {"psnr": _psnr}, available)
    assert [r.codec for r in res] == list(codecs)
    for r in res:
        if r.status != "ok":
            assert r.status == "unreachable"
            continue
        assert r.bytes <= target and r.target_bytes == target
        assert r.bpp == pytest.approx(8 * r.bytes / (photo.shape[0] * photo.shape[1]))
        assert 20 < r.psnr < 60
        assert r.encode_seconds >= 0 and r.decode_seconds >= 0
        assert r.ssim is None  # not asked for
    assert sum(r.status == "ok" for r in res) >= 3


def test_unknown_codec_and_bad_target(photo):
    from smartsplat_dist.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown codec"):
        classic.encode("gif", photo, 50)
    with pytest.raises(ConfigError, match="> 0"):
        classic.match_size("jpeg", photo, 0)
