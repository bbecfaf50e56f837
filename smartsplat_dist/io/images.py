"""Reading images people actually have, and writing decoded ones.

``load_image`` turns any common still image into 8-bit sRGB ``uint8 [H, W, 3]`` and says what it did:

===========================  ===========================================================================
input                        result (``LoadedImage.conversions`` entry)
===========================  ===========================================================================
EXIF orientation 2..8        pixels transposed as a viewer shows them (``exif-rotate:<n>``)
grayscale L / 1-bit          channel repeated (``gray->rgb`` / ``bilevel->rgb``)
16-bit grayscale (I;16*)     exact scaling ``round(v * 255 / 65535)`` (``16-bit->8-bit``, ``gray->rgb``)
32-bit int I / float F       0..65535 (I) or 0..1 (F) scaled to 0..255; other ranges mapped min..max
                             (``int->8-bit`` / ``float->8-bit``, with the range when it was stretched)
16-bit RGB / RGBA / LA PNG   Pillow keeps the high byte, ``v >> 8`` (within one level of exact scaling)
                             (``16-bit->8-bit``)
alpha (RGBA, LA, PA, P+tRNS) fully opaque: alpha dropped (``rgba->rgb(opaque alpha dropped)``); otherwise
                             composited over white, the way a page shows it
                             (``rgba->rgb(composited over white)``)
palette P                    ``palette->rgb``
CMYK (incl. Adobe JPEG)      Pillow's conversion, no ICC colour management (``cmyk->rgb``)
YCbCr / LAB / HSV            Pillow's conversion (``ycbcr->rgb`` ...)
several frames (GIF, TIFF)   the first frame (``first-frame-of-<n>``)
===========================  ===========================================================================

The pixel limit (``max_pixels``, default 300 MP so DIV16K's 178 MP fits) is checked from the header, before
any pixel is decoded, and also given to Pillow's own decompression-bomb check for the duration of the call
(under a lock; Pillow's global limit is restored afterwards). Every failure is an ``ImageError("NAME:
problem")``. File handles are always closed.
"""
from __future__ import annotations

import io
import os
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from struct import error as struct_error  # Pillow plugins raise it on malformed headers
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import ConfigError, ImageError

#: Default pixel limit: DIV16K (16320 x 10880 = 177.6 MP) fits with room to spare.
DEFAULT_MAX_PIXELS = 300_000_000

#: Output formats of save_image / encode_image_bytes: name -> (Pillow format, save options).
FORMATS: dict[str, tuple[str, dict]] = {
    "png": ("PNG", {"compress_level": 6}),
    "jpeg": ("JPEG", {"quality": 95, "subsampling": 0}),
    "jpg": ("JPEG", {"quality": 95, "subsampling": 0}),
    "webp": ("WEBP", {"quality": 95, "method": 4}),
    "tiff": ("TIFF", {"compression": "tiff_deflate"}),
    "tif": ("TIFF", {"compression": "tiff_deflate"}),
    "bmp": ("BMP", {}),
}

#: The formats the commands write (``smartsplat decode --format``, ``smartsplat render -o``): name -> its file
#: extensions, the first the one written.
OUTPUT_FORMATS: dict[str, tuple[str, ...]] = {"png": ("png",), "jpeg": ("jpg", "jpeg"), "webp": ("webp",),
                                              "tiff": ("tif", "tiff")}
#: An output file's suffix -> its format (``smartsplat render -o OUT.jpg``).
SUFFIX_FORMATS: dict[str, str] = {f".{ext}": name for name, exts in OUTPUT_FORMATS.items() for ext in exts}

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]

_PILLOW_LIMIT_LOCK = threading.Lock()
_EXIF_ORIENTATION = 0x0112
_MAGICS = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"), (b"II*\x00", "TIFF"),
           (b"MM\x00*", "TIFF"))
_PLAIN_CONVERT = {"CMYK": "cmyk->rgb", "YCbCr": "ycbcr->rgb", "LAB": "lab->rgb", "HSV": "hsv->rgb"}


@dataclass(frozen=True)
class LoadedImage:
    """An image as the compressor sees it.

    Attributes:
        pixels: [H, W, 3] uint8, C-contiguous, writable, sRGB as stored (after EXIF orientation).
        conversions: what was done to get there, in order (empty for a plain 8-bit RGB image).
        mode: the Pillow mode of the source ("RGB", "RGBA", "I;16", "P", "CMYK", ...).
        format: the Pillow format name of the source ("PNG", "JPEG", ...), if known.
    """

    pixels: np.ndarray
    conversions: tuple[str, ...]
    mode: str
    format: str | None = None

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def _default_name(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source) if isinstance(os.fspath(source), str) else repr(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    return str(getattr(source, "name", "<stream>"))


def _png_bit_depth(head: bytes) -> int | None:
    """Bit depth from a PNG's IHDR (first 26 bytes), or None if it is not a PNG."""
    if len(head) >= 26 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return head[24]
    return None


def _scale_to_u8(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    a = (a.astype(np.float64) - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros(a.shape)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _gray_wide_to_u8(img: Image.Image, conversions: list[str]) -> np.ndarray:
    """I;16* / I / F image -> [H, W] uint8."""
    a = np.asarray(img)
    if img.mode.startswith("I;16"):
        conversions.append("16-bit->8-bit")
        return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    finite = a[np.isfinite(a)] if img.mode == "F" else a
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    a = np.nan_to_num(a, nan=lo, posinf=hi, neginf=lo) if img.mode == "F" else a
    if img.mode == "I" and lo >= 0 and hi <= 65535:
        conversions.append("int->8-bit")
        return ((a.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)
    if img.mode == "F" and lo >= 0 and hi <= 1:
        conversions.append("float->8-bit")
        return _scale_to_u8(a, 0.0, 1.0)
    kind = "int" if img.mode == "I" else "float"
    conversions.append(f"{kind}->8-bit(range {lo:g}..{hi:g})")
    return _scale_to_u8(a, lo, hi)


def _composite(rgba: np.ndarray, conversions: list[str], tag: str) -> np.ndarray:
    """[H, W, 4] uint8 -> [H, W, 3] uint8: drop an all-opaque alpha, else composite over white."""
    alpha = rgba[..., 3]
    if bool((alpha == 255).all()):
        conversions.append(f"{tag}->rgb(opaque alpha dropped)")
        return rgba[..., :3]
    conversions.append(f"{tag}->rgb(composited over white)")
    a = alpha.astype(np.uint32)[..., None]
    out = (rgba[..., :3].astype(np.uint32) * a + 255 * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def _rgb_pixels(img: Image.Image) -> np.ndarray:
    """A loaded RGB image's pixels as a new writable uint8 [H, W, 3] array, filled chunk by chunk from Pillow's
    raw encoder (what ``tobytes`` runs): one copy of the image, where ``np.asarray(img).copy()`` makes three
    (the encoder's chunks, their join, the writable copy) and holds two at once (16K: ~0.5 s, 0.5 GB less)."""
    width, height = img.size
    try:
        encoder = Image._getencoder("RGB", "raw", "RGB")  # as Image.tobytes does (a private Pillow function)
    except (AttributeError, TypeError, OSError):  # a Pillow without it: the public route, two copies more
        return np.array(img, dtype=np.uint8)
    out = np.empty((height, width, 3), dtype=np.uint8)
    flat = out.reshape(-1)
    encoder.setimage(img.im, (0, 0, width, height))
    pos = 0
    try:
        while True:
            _, err, chunk = encoder.encode(max(ImageFile.MAXBLOCK, 64 * width * 4))
            flat[pos:pos + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
            pos += len(chunk)
            if err:
                break
    finally:
        encoder.cleanup()
    if err < 0 or pos != flat.size:
        raise ImageError(f"cannot read the image's pixels (raw encoder error {err}, {pos} of {flat.size} bytes)")
    return out


def _to_rgb(img: Image.Image, conversions: list[str], name: str) -> np.ndarray:
    mode = img.mode
    if mode == "RGB":
        return _rgb_pixels(img)
    if mode in ("L", "1"):
        conversions.append("gray->rgb" if mode == "L" else "bilevel->rgb")
        return np.repeat(np.asarray(img.convert("L"))[..., None], 3, axis=2)
    if mode.startswith("I") or mode == "F":
        g = _gray_wide_to_u8(img, conversions)
        conversions.append("gray->rgb")
        return np.repeat(g[..., None], 3, axis=2)
    if mode in ("RGBA", "RGBa", "LA", "La", "PA"):
        tag = {"RGBA": "rgba", "RGBa": "rgba", "LA": "gray+alpha", "La": "gray+alpha", "PA": "palette+alpha"}[mode]
        return _composite(np.asarray(img.convert("RGBA")), conversions, tag)
    if mode == "P":
        if "transparency" in img.info or img.palette is not None and img.palette.mode == "RGBA":
            return _composite(np.asarray(img.convert("RGBA")), conversions, "palette+transparency")
        conversions.append("palette->rgb")
        return np.asarray(img.convert("RGB"))
    if mode in _PLAIN_CONVERT:
        conversions.append(_PLAIN_CONVERT[mode])
        return np.asarray(img.convert("RGB"))
    raise ImageError(f"{name}: unsupported image mode {mode!r}")


def _over_limit(name: str, exc: Exception, max_pixels: int) -> ImageError:
    """Pillow's bomb error (more than 2 x max_pixels) as our message, with its pixel count when it gives one."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found.group(1))} pixels" if found else "its size"
    return ImageError(f"{name}: image of {size} is over the limit of {max_pixels} pixels (max_pixels)")


def _decode(fp: BinaryIO, name: str, max_pixels: int) -> LoadedImage:
    head = fp.read(32)
    fp.seek(0)
    with _PILLOW_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow refuses above 2x this; we refuse above 1x, below
        try:
            try:
                img = Image.open(fp)
            except UnidentifiedImageError:
                known = next((f for magic, f in _MAGICS if head.startswith(magic)), None)
                if known:
                    raise ImageError(f"{name}: truncated or corrupt {known} header") from None
                raise ImageError(f"{name}: not an image (format not recognised)") from None
            except Image.DecompressionBombError as exc:
                raise _over_limit(name, exc, max_pixels) from None
            except (OSError, SyntaxError, ValueError, struct_error) as exc:
                raise ImageError(f"{name}: corrupt image header ({exc})") from None
            with img:
                width, height = img.size
                if width <= 0 or height <= 0:
                    raise ImageError(f"{name}: image has zero size ({width}x{height})")
                if width * height > max_pixels:
                    raise ImageError(f"{name}: {width}x{height} = {width * height} pixels is over the limit of "
                                     f"{max_pixels} pixels (max_pixels)")
                conversions: list[str] = []
                frames = int(getattr(img, "n_frames", 1) or 1)
                if frames > 1:
                    conversions.append(f"first-frame-of-{frames}")
                try:
                    img.load()  # force the full decode: truncation and corruption surface here
                except Image.DecompressionBombError as exc:
                    raise _over_limit(name, exc, max_pixels) from None
                except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, zlib errors ...
                    raise ImageError(f"{name}: truncated or corrupt image data ({exc})") from None
                fmt, mode = img.format, img.mode
                try:
                    orientation = int(img.getexif().get(_EXIF_ORIENTATION, 1) or 1)
                except Exception:
                    orientation = 1
                work: Image.Image = img
                if 2 <= orientation <= 8:
                    work = ImageOps.exif_transpose(img)
                    conversions.append(f"exif-rotate:{orientation}")
                if _png_bit_depth(head) == 16 and not mode.startswith("I"):
                    conversions.append("16-bit->8-bit")
                try:
                    pixels = _to_rgb(work, conversions, name)
                except ImageError:
                    raise
                except Exception as exc:
                    raise ImageError(f"{name}: cannot convert mode {mode!r} to RGB ({exc})") from None
                finally:
                    if work is not img:
                        work.close()
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    # Pillow's buffers are closed now; a read-only view of them (plain RGB) is copied into a writable array.
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if not pixels.flags.writeable:
        pixels = pixels.copy()
    return LoadedImage(pixels=pixels, conversions=tuple(conversions), mode=mode, format=fmt)


def load_image(source: Source, *, max_pixels: int = DEFAULT_MAX_PIXELS, name: str | None = None) -> LoadedImage:
    """Read an image file into 8-bit RGB.

    Args:
        source: a path (str / PathLike), the file's bytes, or a binary file object (read from its start).
        max_pixels: refuse images with more pixels than this (checked from the header before decoding).
        name: what error messages call the image (default: the path, "<bytes>", or the file object's name).
    Returns:
        LoadedImage(pixels [H, W, 3] uint8 C-contiguous, conversions, mode, format).
    Raises:
        ImageError("NAME: problem"): missing / unreadable file, not an image, truncated or corrupt data, zero
        size, over ``max_pixels``, or an unsupported mode. ConfigError: a bad ``max_pixels``.
    """
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels <= 0:
        raise ConfigError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    name = name or _default_name(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            with open(path, "rb") as fp:
                return _decode(fp, name, max_pixels)
        except FileNotFoundError:
            raise ImageError(f"{name}: file not found") from None
        except IsADirectoryError:
            raise ImageError(f"{name}: is a directory, not an image file") from None
        except PermissionError:
            raise ImageError(f"{name}: permission denied") from None
        except OSError as exc:
            raise ImageError(f"{name}: cannot read file ({exc})") from None
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageError(f"{name}: empty data, not an image")
        return _decode(io.BytesIO(bytes(source)), name, max_pixels)
    if hasattr(source, "read"):
        try:
            seekable = bool(source.seekable()) if hasattr(source, "seekable") else False
        except Exception:
            seekable = False
        fp = source if seekable else io.BytesIO(source.read())
        return _decode(fp, name, max_pixels)
    raise ImageError(f"{name}: expected a path, bytes or a binary file object, got {type(source).__name__}")


def _check_pixels(pixels: np.ndarray) -> np.ndarray:
    a = np.asarray(pixels)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ConfigError(f"pixels must be a non-empty uint8 [H, W, 3] array, got {a.dtype} {list(a.shape)}")
    return np.ascontiguousarray(a)


def _format(format: str) -> tuple[str, dict]:
    key = str(format).lower().lstrip(".")
    if key not in FORMATS:
        raise ConfigError(f"unknown image format {format!r}; choose one of {', '.join(sorted(FORMATS))}")
    return FORMATS[key]


def save_image(pixels: np.ndarray, dest: str | os.PathLike | BinaryIO, format: str = "png") -> None:
    """Write ``pixels`` ([H, W, 3] uint8) as ``format`` (png, jpeg/jpg, webp, tiff/tif, bmp) to a path or a
    binary file object. ConfigError for an unknown format or wrong pixel array."""
    fmt, options = _format(format)
    img = Image.fromarray(_check_pixels(pixels))
    if isinstance(dest, (str, os.PathLike)):
        with open(dest, "wb") as fp:
            img.save(fp, format=fmt, **options)
    else:
        img.save(dest, format=fmt, **options)


def encode_image_bytes(pixels: np.ndarray, format: str = "png") -> bytes:
    """The bytes of ``pixels`` ([H, W, 3] uint8) written as ``format`` (see :func:`save_image`)."""
    buf = io.BytesIO()
    save_image(pixels, buf, format)
    return buf.getvalue()


__all__ = ["DEFAULT_MAX_PIXELS", "FORMATS", "OUTPUT_FORMATS", "SUFFIX_FORMATS", "LoadedImage", "load_image", "save_image", "encode_image_bytes"]
