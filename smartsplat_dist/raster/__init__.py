"""Differentiable sum-blend rasterizers of 2D Gaussians (docs/design.md §1–2).

Backends, chosen by name or ``auto``:

* ``torch`` — pure-PyTorch tiled reference, any device; the oracle the others are tested against.
* ``cpu`` — compiled multi-threaded kernel (numba), forward + backward; default without CUDA.
* ``cuda`` — gsplat tile binning + our own fused Triton sum kernel; default with CUDA.

All take the same arguments and produce the same image to float32 rounding.
"""
from __future__ import annotations

import importlib

import torch

from ..errors import ConfigError
from ..model import Gaussians

BACKENDS = ("torch", "cpu", "cuda")
_MODULES = {"torch": "torch_backend", "cpu": "cpu_backend", "cuda": "cuda_backend"}


def resolve_backend(backend: str = "auto") -> str:
    """Map ``auto`` to ``cuda`` when a CUDA device is present, else ``cpu``; validate names."""
    if backend == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if backend not in BACKENDS:
        raise ConfigError(f"unknown render backend {backend!r}; choose one of auto, {', '.join(BACKENDS)}")
    if backend == "cuda" and not torch.cuda.is_available():
        raise ConfigError("render backend 'cuda' needs a CUDA device, and none is available")
    return backend


def backend_device(backend: str) -> torch.device:
    """The device a backend's tensors live on."""
    return torch.device("cuda" if resolve_backend(backend) == "cuda" else "cpu")


def get_backend(backend: str = "auto"):
    """The render function of a backend: ``fn(means, scales, rotations, colors, height, width) -> [H, W, 3]``."""
    name = resolve_backend(backend)
    module = importlib.import_module(f".{_MODULES[name]}", __name__)
    return getattr(module, f"render_{name}")


def render(gaussians: Gaussians, height: int, width: int, backend: str = "auto") -> torch.Tensor:
    """Render Gaussians with sum blending.

    Args:
        gaussians: N Gaussians (means [N, 2] px, scales [N, 2] px, rotations [N] rad, colors [N, 3]).
        height, width: output size in pixels; pixel (x, y) is sampled at (x + 0.5, y + 0.5).
        backend: ``auto``, ``torch``, ``cpu`` or ``cuda``.
    Returns:
        [H, W, 3] float32, unclamped, differentiable w.r.t. all four parameter tensors.
    """
    if height <= 0 or width <= 0:
        raise ConfigError(f"image size must be positive, got {height}x{width}")
    fn = get_backend(backend)
    return fn(*gaussians.tensors(), int(height), int(width))


__all__ = ["BACKENDS", "render", "resolve_backend", "get_backend", "backend_device"]
