"""Pipeline test fixtures: tiny images, one real local Ray cluster per test module, fast encode settings."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[2] / "smartsplat_dist" / "examples"
#: A fit this short only exercises the plumbing; its quality is irrelevant here.
FAST = ["--cr", "20", "--steps", "5"]
W, H = 48, 32


def tiny_photo(k: int) -> Image.Image:
    """A 48x32 RGB crop of a shipped example photo (k picks photo and position)."""
    files = sorted(EXAMPLES.glob("*.png"))
    with Image.open(files[k % len(files)]) as im:
        im = im.convert("RGB")
        x = (k * 53) % (im.width - W)
        return im.crop((x, 0, x + W, H))


def write_tiny_photos(folder: Path, n: int, prefix: str = "img") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        p = folder / f"{prefix}{k}.png"
        tiny_photo(k).save(p)
        paths.append(p)
    return paths


def fast_config():
    import dataclasses

    from smartsplat_dist.config import EncodeConfig

    c = EncodeConfig(cr=20.0)
    return c.replace(fit=dataclasses.replace(c.fit, steps=5))


@contextlib.contextmanager
def without_aws_env():
    """Hide AWS_* variables while Ray starts, so its workers only get them through runtime_env forwarding."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AWS_")}
    try:
        yield
    finally:
        os.environ.update(saved)


@pytest.fixture(scope="module")
def ray_local():
    """A real local Ray cluster for the whole module (2 CPUs, small object store); yields its GCS address."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if ray.is_initialized():
        ray.shutdown()
    with without_aws_env():
        ray.init(num_cpus=2, object_store_memory=80 * 2**20, include_dashboard=False, log_to_driver=False,
                 logging_level="WARNING")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def decoded_size(path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))
