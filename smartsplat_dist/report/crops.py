"""100% crops for the report: find the most detailed window, decode just that window, make data: URIs."""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from ..codec import decode_record
from ..raster import resolve_backend
from ..raster.pixels import render_window_uint8

#: Longest side of the grayscale proxy used to look for detail (big images are block-averaged down to it).
DETAIL_PROXY = 1024


def _block_mean(gray: np.ndarray, f: int) -> np.ndarray:
    h, w = (gray.shape[0] // f) * f, (gray.shape[1] // f) * f
    return gray[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))


def detail_window(pixels: np.ndarray, size: int = 256, scale: float = 1.0) -> tuple[int, int, int, int]:
    """The ``size`` x ``size`` window with the most gradient energy.

    Args:
        pixels: uint8 [h, w, 3] — the image, or a copy of it downscaled by ``scale`` (``h ≈ H·scale``).
        size: window side in full-resolution pixels.
        scale: how ``pixels`` relates to the full-resolution image.
    Returns:
        (x0, y0, w, h) in full-resolution pixels, inside the image (smaller than ``size`` if the image is).
    """
    full_h, full_w = round(pixels.shape[0] / scale), round(pixels.shape[1] / scale)
    gray = pixels.astype(np.float32).mean(axis=2)
    f = max(1, int(np.ceil(max(gray.shape) / DETAIL_PROXY)))
    small = _block_mean(gray, f) if f > 1 else gray
    s = scale / f  # full-res pixels -> proxy pixels
    grad = np.zeros_like(small)
    grad[:, 1:] += np.abs(np.diff(small, axis=1))
    grad[1:, :] += np.abs(np.diff(small, axis=0))
    win_w, win_h = min(size, full_w), min(size, full_h)
    k_w, k_h = max(1, min(grad.shape[1], round(win_w * s))), max(1, min(grad.shape[0], round(win_h * s)))
    ii = np.pad(grad.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    box = ii[k_h:, k_w:] - ii[:-k_h, k_w:] - ii[k_h:, :-k_w] + ii[:-k_h, :-k_w]
    by, bx = np.unravel_index(int(np.argmax(box)), box.shape)
    x0 = int(np.clip(round(bx / s), 0, full_w - win_w))
    y0 = int(np.clip(round(by / s), 0, full_h - win_h))
    return x0, y0, win_w, win_h


def decode_window(record: bytes, x0: int, y0: int, w: int, h: int, backend: str = "auto") -> np.ndarray:
    """Pixels [y0:y0+h, x0:x0+w] of the decoded image, rendering only that window.

    Same pixels as ``decode_image(record)[y0:y0+h, x0:x0+w]`` (same Gaussians, same clamp and rounding), at the
    cost of the window only: fine for crops of 16K images.

    Returns: uint8 [h, w, 3].
    """
    g, _meta = decode_record(record)
    return render_window_uint8(g, x0, y0, w, h, resolve_backend(backend))


def png_data_uri(pixels: np.ndarray) -> str:
    """``data:image/png;base64,...`` of uint8 [h, w, 3] pixels."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), "RGB").save(buf, "PNG", optimize=True)
    return png_bytes_data_uri(buf.getvalue())


def png_bytes_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` of an encoded PNG."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


__all__ = ["detail_window", "decode_window", "png_data_uri", "png_bytes_data_uri"]
