"""smartsplat_dist: compress datasets of ultra-high-resolution images into 2D Gaussians (SmartSplat).

The public API. Names are imported on first use, so ``import smartsplat_dist`` stays light (no torch or ray
until a name that needs them is touched).

Single image::

    record, stats = smartsplat_dist.encode_image("photo.png", cr=100, steps=2000)
    pixels = smartsplat_dist.decode_image(record, scale=0.5)          # uint8 [H/2, W/2, 3]

Dataset (Ray)::

    smartsplat_dist.compress_dataset("s3://bucket/images/", "s3://bucket/archive/", EncodeConfig(cr=100))
    archive = smartsplat_dist.open_archive("s3://bucket/archive/")
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # the model and rendering
    "Gaussians": ".model",
    "n_gaussians_for_cr": ".model",
    "render": ".raster",
    # one image
    "EncodeConfig": ".config",
    "InitConfig": ".init",
    "FitConfig": ".fitting",
    "CodecConfig": ".codec",
    "DecodeLimits": ".codec",
    "initialize": ".init",
    "fit": ".fitting",
    "encode_image": ".api",
    "decode_image": ".api",
    "encode_record": ".codec",
    "decode_record": ".codec",
    "RecordMeta": ".codec",
    "load_image": ".io.images",
    "psnr": ".fitting",
    "ssim": ".fitting",
    "ms_ssim": ".fitting",
    # datasets
    "compress_dataset": ".pipeline",
    "decode_archive": ".pipeline",
    "open_archive": ".archive",
    "verify_archive": ".archive",
    "archive_status": ".archive",
    # errors
    "SmartsplatError": ".errors",
    "ImageError": ".errors",
    "RecordError": ".errors",
    "ArchiveError": ".errors",
    "ConfigError": ".errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'smartsplat_dist' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
