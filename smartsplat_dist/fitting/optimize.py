"""The fitting loop: Adam on the Gaussian parameters against ``L1`` + ``(1 - SSIM)`` (docs/design.md §4).

Each step:

1. build the Gaussians in pixel units from the optimised tensors (means in px or normalised coordinates,
   ``scales = exp(log_scales)``), and during the last ``qat_steps`` steps pass them through the quantizer
   (straight-through fake quantisation);
2. detach those tensors into leaves and, for every window (one window = the whole image when
   ``config.tile_size`` is 0), render ``g.shifted(x0, y0)`` over the window plus a 10 px SSIM halo, compute the
   window's share of the loss (L1 over its own pixels / (3 H W); SSIM-map sum over its own map pixels /
   map size) and backpropagate into the leaves, so only one window's render graph is alive at a time;
3. backpropagate the accumulated leaf gradients through step 1 to the parameters, and take an Adam step
   (learning rates and the colour warm-up from :mod:`.schedule`), then cap the scales (``max_scale``) and,
   every ``relocate_every`` steps, relocate the least useful Gaussians (:mod:`.relocate`).

Before the first step, ``color_solve_iters`` conjugate-gradient iterations set least-squares colours
(:mod:`.colors`). With ``clamp_render`` the loss sees the render clamped to [0, 1].

The loss and gradient equal the whole-image ones (up to float32 summation order), memory is one window.
"""
from __future__ import annotations

import math
import time
import warnings
from typing import Callable

import numpy as np
import torch

from ..errors import ConfigError, ImageError, SmartsplatError
from ..model import Gaussians
from ..raster import backend_device, get_backend, resolve_backend
from ..raster.pixels import to_uint8
from . import relocate, schedule
from .colors import solve_colors
from .config import FitConfig
from .loss import SSIMTarget, l1_ssim_loss
from .ssim_def import HALO, WINDOW_SIZE, psnr_from_sse

#: Above this many pixels the per-window SSIM target statistics are recomputed each step instead of cached.
CACHE_TARGET_PIXELS = 4096 * 4096

Progress = Callable[[int, dict], None]
Quantizer = Callable[[Gaussians], Gaussians]


def windows(height: int, width: int, tile_size: int) -> list[tuple[int, int, int, int]]:
    """The windows of the loss: (y0, y1, x0, x1) owned pixel ranges, row-major; 0 = one whole-image window."""
    if tile_size <= 0 or (tile_size >= height and tile_size >= width):
        return [(0, height, 0, width)]
    return [(y0, min(height, y0 + tile_size), x0, min(width, x0 + tile_size))
            for y0 in range(0, height, tile_size) for x0 in range(0, width, tile_size)]


class LossWindow:
    """One loss window: its owned pixels, rendered extent (owned + SSIM halo) and target crops.

    Attributes:
        y0, y1, x0, x1: owned pixels; ry1, rx1: rendered extent end (<= H, W).
        map_h, map_w: owned rows / cols of the global SSIM map (may be 0 near the bottom / right edge).
    """

    def __init__(self, target_u8: torch.Tensor, box: tuple[int, int, int, int], cache: bool) -> None:
        h, w = target_u8.shape[0], target_u8.shape[1]
        self.y0, self.y1, self.x0, self.x1 = box
        self.ry1, self.rx1 = min(h, self.y1 + HALO), min(w, self.x1 + HALO)
        self.map_h = min(self.y1, h - HALO) - self.y0
        self.map_w = min(self.x1, w - HALO) - self.x0
        self._src = target_u8
        self._cached: tuple[torch.Tensor, SSIMTarget | None] | None = self._build() if cache else None

    @property
    def has_ssim(self) -> bool:
        return self.map_h > 0 and self.map_w > 0

    def _build(self) -> tuple[torch.Tensor, SSIMTarget | None]:
        t = self._src[self.y0:self.ry1, self.x0:self.rx1].to(torch.float32) / 255.0  # [rh, rw, 3]
        st = SSIMTarget(t[:self.map_h + HALO, :self.map_w + HALO]) if self.has_ssim else None
        return t, st

    def target(self) -> tuple[torch.Tensor, SSIMTarget | None]:
        return self._cached if self._cached is not None else self._build()


def loss_windows(target_u8: torch.Tensor, tile_size: int, cache: bool = True) -> list[LossWindow]:
    """The loss windows of an image.

    Args:
        target_u8: [H, W, 3] uint8 tensor on the render device.
        tile_size: window edge in px (0 = one window).
        cache: keep each window's float target and SSIM statistics (else rebuilt on every use).
    """
    h, w = int(target_u8.shape[0]), int(target_u8.shape[1])
    return [LossWindow(target_u8, box, cache) for box in windows(h, w, tile_size)]


def target_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """The image [H, W, 3] uint8 as a tensor on ``device``; on CPU it shares the array's memory, read-only
    arrays included (e.g. ``np.asarray`` of a PIL image): the fit only reads its target, so torch's warning
    about non-writable arrays does not apply and no copy of the image is made."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)
        return torch.from_numpy(np.ascontiguousarray(image)).to(device)


def _image_windows(image: np.ndarray, tile_size: int, device: torch.device) -> list[LossWindow]:
    """The loss windows of ``image`` ([H, W, 3] uint8) on ``device``, their targets cached up to
    :data:`CACHE_TARGET_PIXELS` (or for a single window)."""
    h, w = image.shape[0], image.shape[1]
    cache = len(windows(h, w, tile_size)) == 1 or h * w <= CACHE_TARGET_PIXELS
    return loss_windows(target_tensor(image, device), tile_size, cache)


def _check_image(image: np.ndarray) -> tuple[int, int]:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} array of shape {list(image.shape)}" if isinstance(image, np.ndarray) \
            else type(image).__name__
        raise ImageError(f"fit needs a uint8 image [H, W, 3], got {desc}")
    h, w = int(image.shape[0]), int(image.shape[1])
    if h < WINDOW_SIZE or w < WINDOW_SIZE:
        raise ImageError(f"fit needs an image of at least {WINDOW_SIZE}x{WINDOW_SIZE} px (SSIM window), got {h}x{w}")
    return h, w


class _Params:
    """The optimised tensors and their map to Gaussians in pixel units.

    Attributes:
        means: [N, 2] (pixels or normalised [-1, 1] per axis); log_scales: [N, 2]; rotations: [N]; colors: [N, 3].
    """

    def __init__(self, g: Gaussians, height: int, width: int, unit: str, device: torch.device) -> None:
        g = g.to(device)
        if len(g) and not bool(torch.all(g.scales > 0)):
            raise ConfigError("fit: every initial scale must be > 0 (scales are optimised in log space)")
        self.norm = torch.tensor([width / 2.0, height / 2.0], dtype=torch.float32, device=device) \
            if unit == "normalized" else None
        means = g.means.detach().clone()
        if self.norm is not None:
            means = means / self.norm - 1.0
        self.means = means.requires_grad_()
        self.log_scales = torch.log(g.scales.detach()).clone().requires_grad_()
        self.rotations = g.rotations.detach().clone().requires_grad_()
        self.colors = g.colors.detach().clone().requires_grad_()

    def gaussians(self) -> Gaussians:
        means = (self.means + 1.0) * self.norm if self.norm is not None else self.means
        return Gaussians(means, torch.exp(self.log_scales), self.rotations, self.colors)

    def assign(self, idx: torch.Tensor, g: Gaussians) -> None:
        """Overwrite rows ``idx`` of every tensor with ``g`` (pixel units, len(g) == len(idx))."""
        with torch.no_grad():
            self.means[idx] = g.means / self.norm - 1.0 if self.norm is not None else g.means
            self.log_scales[idx] = torch.log(g.scales)
            self.rotations[idx] = g.rotations
            self.colors[idx] = g.colors

    def cap_scales(self, max_px: float) -> None:
        """Clamp every scale to at most ``max_px`` pixels."""
        with torch.no_grad():
            self.log_scales.clamp_(max=math.log(max_px))

    def optimizer(self, config: FitConfig) -> torch.optim.Adam:
        groups = [{"params": [self.means], "lr": config.lr_means, "name": "means"},
                  {"params": [self.log_scales], "lr": config.lr_scales, "name": "scales"},
                  {"params": [self.rotations], "lr": config.lr_rotations, "name": "rotations"},
                  {"params": [self.colors], "lr": config.lr_colors, "name": "colors"}]
        return torch.optim.Adam(groups, eps=config.adam_eps)


class _Lazy:
    """Callable giving a detached copy of the current parameters as Gaussians (only when asked)."""

    def __init__(self, params: _Params) -> None:
        self._params = params

    def __call__(self) -> Gaussians:
        with torch.no_grad():
            return self._params.gaussians().detach()


def loss_and_grad(g: Gaussians, wins: list[LossWindow], height: int, width: int, lambda_l1: float,
                  render_fn, clamp: bool = False) -> tuple[Gaussians, float, float]:
    """Windowed loss of ``g`` and its gradient w.r.t. g's four tensors.

    Args:
        g: Gaussians in pixel units (any autograd history; not modified).
        wins: the loss windows covering the image.
        clamp: compute the loss on the render clamped to [0, 1] (no gradient where it is outside).
    Returns:
        (gradients as a Gaussians of the same shapes, loss value, sum of squared errors of the [0, 1]-clamped
        render over the image, for the PSNR).
    """
    leaves = [t.detach().requires_grad_() for t in g.tensors()]
    lg = Gaussians(*leaves)
    n_l1 = 3.0 * height * width
    n_map = 3.0 * (height - HALO) * (width - HALO)
    l1_total, ssim_total, sse = 0.0, 0.0, 0.0
    for win in wins:
        target, st = win.target()
        sg = lg.shifted(float(win.x0), float(win.y0))
        img = render_fn(*sg.tensors(), win.ry1 - win.y0, win.rx1 - win.x0)  # [rh, rw, 3]
        if clamp:
            img = img.clamp(0.0, 1.0)
        oh, ow = win.y1 - win.y0, win.x1 - win.x0
        loss, l1, s_sum, se = l1_ssim_loss(img, target, st, (oh, ow), lambda_l1 / n_l1, (1.0 - lambda_l1) / n_map)
        if loss.requires_grad:
            loss.backward()
        l1_total += l1
        ssim_total += s_sum
        sse += se
    value = lambda_l1 * l1_total / n_l1 + (1.0 - lambda_l1) * (1.0 - ssim_total / n_map)
    grads = Gaussians(*(t.grad if t.grad is not None else torch.zeros_like(t) for t in leaves))
    return grads, value, sse


def image_loss(image: np.ndarray, config: FitConfig, backend: str = "auto"
               ) -> Callable[[Gaussians], tuple[Gaussians, float, float]]:
    """The fit's loss on ``image`` ([H, W, 3] uint8) as a function: ``loss_fn(g) -> (gradients as Gaussians,
    loss, sse of the [0, 1]-clamped render)`` (:func:`loss_and_grad` with ``config``'s windows, L1 weight and
    clamp, on ``backend``'s device; g is moved there, the gradients come back on CPU)."""
    h, w = _check_image(image)
    name = resolve_backend(backend)
    device = backend_device(name)
    render_fn = get_backend(name)
    wins = _image_windows(image, config.tile_size, device)

    def loss_fn(g: Gaussians) -> tuple[Gaussians, float, float]:
        grads, loss, sse = loss_and_grad(g.to(device), wins, h, w, config.lambda_l1, render_fn, config.clamp_render)
        return grads.to("cpu"), loss, sse

    return loss_fn


def render_uint8_psnr(g: Gaussians, image: np.ndarray, wins_boxes: list[tuple[int, int, int, int]],
                      render_fn) -> float:
    """PSNR of the decoded (clamped, rounded to uint8) render of ``g`` against ``image``, window by window."""
    h, w = image.shape[0], image.shape[1]
    sse = 0.0
    with torch.no_grad():
        for y0, y1, x0, x1 in wins_boxes:
            img = render_fn(*g.shifted(float(x0), float(y0)).tensors(), y1 - y0, x1 - x0)
            u8 = to_uint8(img).astype(np.float64)
            d = u8 - image[y0:y1, x0:x1].astype(np.float64)
            sse += float(np.einsum("ijk,ijk->", d, d))
    return psnr_from_sse(sse, 3 * h * w)


def fit(gaussians: Gaussians, image: np.ndarray, config: FitConfig = FitConfig(), backend: str = "auto",
        progress: Progress | None = None, quantizer: Quantizer | None = None,
        checkpoint=None, final_psnr: bool = True) -> tuple[Gaussians, dict]:
    """Fit Gaussians to an image.

    Args:
        gaussians: the initial N Gaussians (means [N, 2] px, scales [N, 2] px > 0, rotations [N], colors [N, 3]).
        image: [H, W, 3] uint8, H, W >= 11.
        config: a :class:`FitConfig`.
        backend: render backend (``auto``, ``torch``, ``cpu``, ``cuda``); tensors live on its device.
        progress: called as ``progress(step, {"step", "loss", "psnr", "seconds"})`` every ``config.log_every``
            steps and after the last; loss and psnr (of the [0, 1]-clamped render) are those of that step's
            forward pass, seconds since the start of the loop; the dict also carries ``"gaussians"``, a
            zero-argument callable returning the parameters after that step's update (detached copy,
            unquantised, on the backend's device), e.g. to evaluate other metrics along the way.
        quantizer: ``Gaussians -> Gaussians`` straight-through fake quantisation, applied to the forward
            parameters in the last ``config.qat_steps`` steps only.
        checkpoint: a :class:`~.checkpoint.Checkpointer` (or anything with ``resume(optimizer) -> int`` and
            ``after_step(step, optimizer)``): the fit continues after the step it restores, and offers it the
            state after every step.
    Returns:
        (fitted Gaussians: the final parameters, detached, float32 on CPU, unquantised;
         stats: steps, seconds, seconds_per_step, loss (last step), psnr (dB, final parameters unquantised,
         render clamped and rounded to uint8 as decoding does; None without ``final_psnr``), psnr_last_step (dB,
         the last step's loss pass: parameters before the last update, float render clamped to [0, 1]),
         n_gaussians, backend, windows).
    """
    if not isinstance(config, FitConfig):
        raise ConfigError(f"fit config must be a FitConfig, got {type(config).__name__}")
    h, w = _check_image(image)
    name = resolve_backend(backend)
    device = backend_device(name)
    render_fn = get_backend(name)
    params = _Params(gaussians, h, w, config.means_lr_unit, device)
    opt = params.optimizer(config)
    boxes = windows(h, w, config.tile_size)
    wins = _image_windows(image, config.tile_size, device)
    qat_from = config.steps - config.qat_steps if quantizer is not None else config.steps
    max_px = config.max_scale * math.hypot(h, w)
    base_lrs = {group["name"]: group["lr"] for group in opt.param_groups}
    relocate_last = min(int(config.relocate_until * config.steps), qat_from, config.steps - 1)
    loss_value, sse = math.nan, math.nan
    t0 = time.perf_counter()
    start = checkpoint.resume(opt) + 1 if checkpoint is not None else 1
    if max_px > 0:
        params.cap_scales(max_px)
    if config.color_solve_iters and config.steps > 0 and start == 1:
        with torch.no_grad():
            params.colors.copy_(solve_colors(params.gaussians(), wins, render_fn, config.color_solve_iters))
    for step in range(start, config.steps + 1):
        g = params.gaussians()
        if step > qat_from:
            g = quantizer(g)
            if not isinstance(g, Gaussians):
                raise ConfigError(f"fit quantizer must return Gaussians, got {type(g).__name__}")
        grads, loss_value, sse = loss_and_grad(g, wins, h, w, config.lambda_l1, render_fn, config.clamp_render)
        if not math.isfinite(loss_value):
            raise SmartsplatError(f"fit diverged at step {step}: loss is {loss_value}")
        bad = sum(~torch.isfinite(t.reshape(len(t), -1)).all(dim=1) for t in grads.tensors()).bool()
        if bool(bad.any()):  # a Gaussian with a NaN update renders nothing: the loss would not show it
            raise SmartsplatError(f"fit diverged at step {step}: non-finite gradients for {int(bad.sum())} of "
                                  f"{len(bad)} Gaussians")
        torch.autograd.backward(list(g.tensors()), list(grads.tensors()))
        schedule.apply(opt, base_lrs, config, step)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if max_px > 0:
            params.cap_scales(max_px)
        if config.relocate_interval and step % config.relocate_interval == 0 and step <= relocate_last:
            with torch.no_grad():
                idx, new = relocate.plan(params.gaussians(), wins, render_fn, h, w, config.relocate_fraction,
                                          config.clamp_render)
            params.assign(idx, new)
            relocate.reset_adam_rows(opt, idx)
        if checkpoint is not None:
            checkpoint.after_step(step, opt)
        if progress is not None and (step % config.log_every == 0 or step == config.steps):
            progress(step, {"step": step, "loss": loss_value, "psnr": psnr_from_sse(sse, 3.0 * h * w, peak=1.0),
                            "seconds": time.perf_counter() - t0, "gaussians": _Lazy(params)})
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        final = params.gaussians().detach().to("cpu")
    psnr_final = render_uint8_psnr(final.to(device), image, boxes, render_fn) if final_psnr else None
    stats = {"steps": config.steps, "steps_run": config.steps + 1 - start, "seconds": seconds,
             "seconds_per_step": seconds / config.steps if config.steps else 0.0,
             "loss": loss_value, "psnr": psnr_final,
             "psnr_last_step": psnr_from_sse(sse, 3.0 * h * w, peak=1.0) if config.steps else None,
             "n_gaussians": len(final), "backend": name,
             "windows": len(boxes)}
    return final, stats


__all__ = ["fit", "windows", "loss_windows", "LossWindow", "loss_and_grad", "image_loss", "render_uint8_psnr",
           "target_tensor"]
