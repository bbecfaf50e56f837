"""load_image / save_image on every kind of image a user has (all generated here with Pillow)."""
from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from smartsplat_dist.errors import ConfigError, ImageError
from smartsplat_dist.io.images import DEFAULT_MAX_PIXELS, encode_image_bytes, load_image, save_image


def _rgb(h=24, w=32, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "png", **kw)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png16_rgb(a: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG written by hand (Pillow cannot write one)."""
    h, w, _ = a.shape
    raw = b"".join(b"\x00" + a[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


# ----------------------------------------------------------------------------------------------- sources

def test_rgb_png_from_every_kind_of_source(tmp_path):
    a = _rgb()
    path = tmp_path / "a.png"
    Image.fromarray(a).save(path)
    data = path.read_bytes()
    with open(path, "rb") as fp:
        from_file = load_image(fp)
    results = [load_image(str(path)), load_image(path), load_image(data), load_image(io.BytesIO(data)), from_file]
    for r in results:
        assert r.pixels.dtype == np.uint8 and r.pixels.shape == (24, 32, 3)
        assert r.pixels.flags["C_CONTIGUOUS"] and r.pixels.flags["WRITEABLE"]
        np.testing.assert_array_equal(r.pixels, a)
        assert r.conversions == () and r.mode == "RGB" and r.format == "PNG"


def test_rgb_pixels_come_in_several_encoder_chunks():
    """RGB pixels are copied chunk by chunk from Pillow's raw encoder into one writable array."""
    a = np.random.default_rng(0).integers(0, 256, (301, 203, 3), dtype=np.uint8)  # ~180 KB: several chunks
    r = load_image(_png_bytes(Image.fromarray(a)))
    np.testing.assert_array_equal(r.pixels, a)
    assert r.pixels.flags["C_CONTIGUOUS"] and r.pixels.flags["WRITEABLE"] and r.pixels.base is None


def test_default_limit_allows_div16k():
    assert DEFAULT_MAX_PIXELS >= 16320 * 10880


# ----------------------------------------------------------------------------------------------- conversions

def test_grayscale_is_repeated_into_three_channels():
    g = _rgb()[..., 0]
    r = load_image(_png_bytes(Image.fromarray(g)))
    assert r.mode == "L" and r.conversions == ("gray->rgb",)
    for c in range(3):
        np.testing.assert_array_equal(r.pixels[..., c], g)


def test_rgba_opaque_alpha_is_dropped():
    a = _rgb()
    rgba = np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], axis=2)
    r = load_image(_png_bytes(Image.fromarray(rgba)))
    assert r.mode == "RGBA" and r.conversions == ("rgba->rgb(opaque alpha dropped)",)
    np.testing.assert_array_equal(r.pixels, a)


def test_rgba_translucent_is_composited_over_white():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 128
    rgba[0, 0] = (10, 20, 30, 0)  # fully transparent -> white
    rgba[0, 1] = (10, 20, 30, 255)  # opaque -> as is
    r = load_image(_png_bytes(Image.fromarray(rgba)))
    assert r.conversions == ("rgba->rgb(composited over white)",)
    assert tuple(r.pixels[0, 0]) == (255, 255, 255)
    assert tuple(r.pixels[0, 1]) == (10, 20, 30)
    # 200 * 128/255 + 255 * 127/255 = 227.4 ; 0 + 127
    assert tuple(r.pixels[1, 1]) == (227, 127, 127)


def test_gray_alpha():
    la = Image.new("LA", (3, 2), (100, 0))
    r = load_image(_png_bytes(la))
    assert r.mode == "LA" and r.conversions == ("gray+alpha->rgb(composited over white)",)
    assert (r.pixels == 255).all()


def test_16bit_grayscale_is_scaled_not_clipped():
    values = np.array([[0, 257, 32768, 40000, 65534, 65535]], np.uint16)
    img = Image.fromarray(values)
    assert img.mode == "I;16"
    r = load_image(_png_bytes(img))
    assert r.mode == "I;16"
    assert r.conversions == ("16-bit->8-bit", "gray->rgb")
    expected = np.rint(values.astype(np.float64) * 255 / 65535).astype(np.uint8)
    np.testing.assert_array_equal(r.pixels[..., 0], expected)
    np.testing.assert_array_equal(r.pixels[0, :, 0], [0, 1, 128, 156, 255, 255])


def test_16bit_rgb_png_is_scaled_to_8_bit():
    v = np.array([0, 255, 256, 30000, 40000, 65535], np.uint16)
    a = np.stack([v, v[::-1], np.full_like(v, 32768)], axis=1)[None]  # [1, 6, 3]
    r = load_image(_png16_rgb(a))
    assert "16-bit->8-bit" in r.conversions and r.pixels.shape == (1, 6, 3)
    exact = a.astype(np.float64) * 255 / 65535
    assert np.abs(r.pixels.astype(np.float64) - exact).max() <= 1.0  # scaled (high byte), never clipped
    assert tuple(r.pixels[0, 5]) == (255, 0, 128) and r.pixels[0, 3, 0] == 30000 >> 8


def test_int32_and_float_tiffs():
    ints = Image.fromarray(np.array([[0, 65535, 32768]], np.int32))
    buf = io.BytesIO()
    ints.save(buf, "tiff")
    r = load_image(buf.getvalue())
    assert r.mode == "I" and r.conversions == ("int->8-bit", "gray->rgb")
    np.testing.assert_array_equal(r.pixels[0, :, 1], [0, 255, 128])

    floats = Image.fromarray(np.array([[0.0, 1.0, 0.5]], np.float32))
    buf = io.BytesIO()
    floats.save(buf, "tiff")
    r = load_image(buf.getvalue())
    assert r.mode == "F" and r.conversions == ("float->8-bit", "gray->rgb")
    np.testing.assert_array_equal(r.pixels[0, :, 2], [0, 255, 128])

    wide = Image.fromarray(np.array([[-2.0, 2.0, 0.0]], np.float32))
    buf = io.BytesIO()
    wide.save(buf, "tiff")
    r = load_image(buf.getvalue())
    assert r.conversions[0].startswith("float->8-bit(range -2..2)")
    np.testing.assert_array_equal(r.pixels[0, :, 0], [0, 255, 128])


def test_palette_with_and_without_transparency():
    p = Image.new("P", (4, 2), 1)
    p.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    p.putpixel((0, 0), 0)
    r = load_image(_png_bytes(p))
    assert r.mode == "P" and r.conversions == ("palette->rgb",)
    assert tuple(r.pixels[0, 0]) == (255, 0, 0) and tuple(r.pixels[1, 3]) == (0, 255, 0)

    r = load_image(_png_bytes(p, transparency=0))  # index 0 (red) transparent -> white
    assert r.conversions == ("palette+transparency->rgb(composited over white)",)
    assert tuple(r.pixels[0, 0]) == (255, 255, 255) and tuple(r.pixels[1, 3]) == (0, 255, 0)


def test_cmyk_jpeg():
    c = Image.new("CMYK", (16, 8), (0, 255, 255, 0))  # no cyan, full magenta + yellow = red
    buf = io.BytesIO()
    c.save(buf, "jpeg", quality=95)
    r = load_image(buf.getvalue())
    assert r.mode == "CMYK" and r.format == "JPEG" and r.conversions == ("cmyk->rgb",)
    assert np.abs(r.pixels.astype(int) - np.array([255, 0, 0])).max() <= 8


def test_exif_orientation_6_rotates_and_swaps_dimensions(tmp_path):
    a = np.zeros((16, 32, 3), np.uint8)  # H=16, W=32
    a[:, :] = (0, 0, 255)
    a[:8, :16] = (255, 0, 0)  # top-left quadrant red
    img = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    img.save(path, "jpeg", quality=95, exif=exif.tobytes())
    r = load_image(path)
    assert r.conversions == ("exif-rotate:6",)
    assert r.pixels.shape == (32, 16, 3)  # dimensions swapped
    expected = np.rot90(a, k=-1)  # clockwise: the red corner goes to the top right
    assert np.abs(r.pixels.astype(int) - expected.astype(int)).mean() < 6
    assert r.pixels[2, 13, 0] > 200 and r.pixels[2, 2, 2] > 200


def test_first_frame_of_animation():
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "gif", save_all=True, append_images=frames[1:])
    r = load_image(buf.getvalue())
    assert r.conversions[0] == "first-frame-of-2"
    assert tuple(r.pixels[0, 0]) == (255, 0, 0)


# ----------------------------------------------------------------------------------------------- errors

def test_truncated_png(tmp_path):
    data = encode_image_bytes(_rgb(64, 64), "png")
    for cut in (40, 100, len(data) // 2):
        with pytest.raises(ImageError, match=r"^<bytes>: truncated or corrupt"):
            load_image(data[:cut])
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=f"^{path}: truncated"):
        load_image(path)


def test_not_an_image(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n" * 10)
    with pytest.raises(ImageError, match=r"notes.png: not an image"):
        load_image(text)
    with pytest.raises(ImageError, match=r"^blob: not an image"):
        load_image(np.random.default_rng(1).bytes(500), name="blob")
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match=r"nope\.png: file not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a directory"):
        load_image(tmp_path)


def test_over_the_pixel_limit():
    data = encode_image_bytes(_rgb(20, 30), "png")  # 600 pixels
    with pytest.raises(ImageError, match=r"30x20 = 600 pixels is over the limit of 500 pixels"):
        load_image(data, max_pixels=500)  # our check (Pillow's own error is at 2x)
    with pytest.raises(ImageError, match=r"600 pixels is over the limit of 100 pixels"):
        load_image(data, max_pixels=100)  # Pillow's bomb check, told our limit
    assert load_image(data, max_pixels=600).pixels.shape == (20, 30, 3)
    with pytest.raises(ConfigError):
        load_image(data, max_pixels=0)


def _fake_png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))


def test_limit_is_checked_from_the_header_and_pillow_limit_restored():
    before = Image.MAX_IMAGE_PIXELS
    huge = _fake_png_header(20000, 10000)  # 200 MP: Pillow's default limit would refuse it at open
    with pytest.raises(ImageError, match="over the limit of 100000000"):
        load_image(huge, max_pixels=100_000_000)
    # Under the default limit the header is accepted and only the (missing) pixel data fails.
    with pytest.raises(ImageError, match="truncated or corrupt image data"):
        load_image(huge)
    assert Image.MAX_IMAGE_PIXELS == before


def test_zero_size_image():
    with pytest.raises(ImageError, match="^<bytes>: "):
        load_image(_fake_png_header(0, 10))


def test_no_file_handles_leak(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(_rgb()).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(good.read_bytes()[:100])
    text = tmp_path / "t.png"
    text.write_text("hello")
    before = _open_fds()
    for _ in range(5):
        load_image(good)
        for p in (bad, text):
            with pytest.raises(ImageError):
                load_image(p)
    assert _open_fds() == before


# ----------------------------------------------------------------------------------------------- writing

@pytest.mark.parametrize("fmt", ["png", "tiff", "bmp"])
def test_lossless_formats_round_trip(fmt, tmp_path):
    a = _rgb()
    np.testing.assert_array_equal(load_image(encode_image_bytes(a, fmt)).pixels, a)
    path = tmp_path / f"out.{fmt}"
    save_image(a, path, fmt)
    np.testing.assert_array_equal(load_image(path).pixels, a)


@pytest.mark.parametrize("fmt", ["jpeg", "jpg", "webp"])
def test_lossy_formats(fmt):
    a = np.zeros((32, 32, 3), np.uint8)
    a[:, 16:] = (250, 120, 10)
    buf = io.BytesIO()
    save_image(a, buf, fmt)
    r = load_image(buf.getvalue())
    assert r.format == ("WEBP" if fmt == "webp" else "JPEG")
    assert np.abs(r.pixels.astype(int) - a.astype(int)).mean() < 4


def test_bad_format_and_pixels():
    with pytest.raises(ConfigError, match="unknown image format 'gif2'"):
        encode_image_bytes(_rgb(), "gif2")
    with pytest.raises(ConfigError, match="uint8"):
        encode_image_bytes(_rgb().astype(np.float32), "png")
    with pytest.raises(ConfigError, match="uint8"):
        encode_image_bytes(_rgb()[..., 0], "png")
