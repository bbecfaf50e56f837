"""The training loss pieces: a fast differentiable SSIM (float32 torch, any device).

Same definition (``fitting/ssim_def.py``) as the metric :func:`smartsplat_dist.fitting.metrics.ssim`:
11x11 Gaussian window (sigma 1.5),
C1 = (0.01 L)^2, C2 = (0.03 L)^2 with L = 1 (images in [0, 1]), **'valid' convention** — the SSIM map is only
evaluated where the whole window lies inside the image, so an H x W image gives an (H-10) x (W-10) map, and the
value is the mean of that map over pixels and channels.

Speed: the window is separable, so each filter is two 1-D passes (1x11 then 11x1) over a [1, 9, H, W] stack
(shifted in-place multiply-adds on CPU, grouped conv2d elsewhere); the target's own statistics (mu_y, E[y^2])
do not change between steps and are computed once (:class:`SSIMTarget`); and the backward pass is analytic (a
custom autograd function: transposed filters of dS/dmu_x, dS/dE[x^2], dS/dE[xy]) instead of autograd through
every element-wise op. Timings (768x512, one CPU thread): see the SPEED comment below.

Windowed training needs sums, not means: :func:`ssim_sum` returns (sum of the SSIM map, number of map pixels),
so sums over windows that overlap by 10 px add up to the whole-image sum.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ..threads import numba_threads
from .ssim_def import HALO, K1, K2, WINDOW_SIZE, window_1d

#: SSIM's constants for values in [0, 1] (L = 1).
C1 = K1 ** 2
C2 = K2 ** 2

# SPEED. Forward + backward at 768x512x3 float32, torch.set_num_threads(1), on the shared 2-core dev machine
# (other jobs running, so absolute numbers are noisy; the ratio held):
# ``differentiable_ssim(x, SSIMTarget(y)).backward()`` (analytic backward, cached target) 76 ms vs 319 ms for
# ``ssim_reference(x, y).backward()`` (autograd through grouped conv2d) in a quieter moment, 233 vs 859 ms (min of 5) under heavier load. The CPU filter (shifted
# in-place adds) was 21 ms vs 39 ms for grouped conv2d on a [1, 9, 512, 768] stack.

_WINDOWS: dict[tuple[str, torch.dtype], torch.Tensor] = {}


def gaussian_window(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The normalised 1-D Gaussian window: [11] (cached per device and dtype)."""
    key = (str(device), dtype)
    w = _WINDOWS.get(key)
    if w is None:
        w = torch.from_numpy(window_1d()).to(device=device, dtype=dtype)
        _WINDOWS[key] = w
    return w


def _filter(x: torch.Tensor) -> torch.Tensor:
    """Valid separable Gaussian filter of every channel: [1, C, H, W] -> [1, C, H-10, W-10].

    On CPU: 11 shifted in-place multiply-adds per axis (about 2x faster than grouped conv2d there); on other
    devices: two grouped conv2d (1x11, 11x1), fewer kernel launches.
    """
    g = gaussian_window(x.device, x.dtype)
    h, w = x.shape[2], x.shape[3]
    if x.device.type == "cpu":
        gl = g.tolist()
        a = x[..., 0:w - HALO] * gl[0]
        for k in range(1, WINDOW_SIZE):
            a.add_(x[..., k:k + w - HALO], alpha=gl[k])
        b = a[..., 0:h - HALO, :] * gl[0]
        for k in range(1, WINDOW_SIZE):
            b.add_(a[..., k:k + h - HALO, :], alpha=gl[k])
        return b
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, WINDOW_SIZE).expand(c, 1, 1, WINDOW_SIZE), groups=c)
    return F.conv2d(x, g.view(1, 1, WINDOW_SIZE, 1).expand(c, 1, WINDOW_SIZE, 1), groups=c)


def _filter_adjoint(x: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`_filter` (a 'full' transposed filter): [1, C, h, w] -> [1, C, h+10, w+10]."""
    g = gaussian_window(x.device, x.dtype)
    n, c, h, w = x.shape
    if x.device.type == "cpu":
        gl = g.tolist()
        a = x.new_zeros(n, c, h + HALO, w)
        for k in range(WINDOW_SIZE):
            a[..., k:k + h, :].add_(x, alpha=gl[k])
        b = x.new_zeros(n, c, h + HALO, w + HALO)
        for k in range(WINDOW_SIZE):
            b[..., k:k + w].add_(a, alpha=gl[k])
        return b
    x = F.conv_transpose2d(x, g.view(1, 1, WINDOW_SIZE, 1).expand(c, 1, WINDOW_SIZE, 1), groups=c)
    return F.conv_transpose2d(x, g.view(1, 1, 1, WINDOW_SIZE).expand(c, 1, 1, WINDOW_SIZE), groups=c)


def _to_chw(img: torch.Tensor) -> torch.Tensor:
    """[H, W, C] -> [1, C, H, W] (contiguous); [1, C, H, W] passes through."""
    if img.dim() == 3:
        return img.permute(2, 0, 1).unsqueeze(0).contiguous()
    if img.dim() == 4 and img.shape[0] == 1:
        return img.contiguous()
    raise ValueError(f"expected an image [H, W, C] or [1, C, H, W], got shape {list(img.shape)}")


class SSIMTarget:
    """A fixed target image with its filtered statistics, reused across steps.

    Args:
        target: [H, W, C] or [1, C, H, W] float, values in [0, 1]; H, W >= 11.
    Attributes:
        y: [1, C, H, W]; mu_y, e_yy: [1, C, H-10, W-10] (Gaussian-filtered y and y^2).
    """

    def __init__(self, target: torch.Tensor) -> None:
        y = _to_chw(target.detach())
        if y.shape[2] < WINDOW_SIZE or y.shape[3] < WINDOW_SIZE:
            raise ValueError(f"SSIM needs an image of at least {WINDOW_SIZE}x{WINDOW_SIZE}, got "
                             f"{y.shape[2]}x{y.shape[3]}")
        self.y = y
        self.hwc = target.detach() if target.dim() == 3 else None  # [H, W, C], for the fused CPU kernel
        self._fused: tuple | None = None
        self._stats: tuple[torch.Tensor, torch.Tensor] | None = None

    def _torch_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        # Lazy: the fused CPU kernel has its own (fused_stats); a 4096 px window's pair is 0.4 GB.
        if self._stats is None:
            stats = _filter(torch.cat([self.y, self.y * self.y], dim=1))
            c = self.y.shape[1]
            self._stats = (stats[:, :c], stats[:, c:])
        return self._stats

    @property
    def mu_y(self) -> torch.Tensor:
        return self._torch_stats()[0]

    @property
    def e_yy(self) -> torch.Tensor:
        return self._torch_stats()[1]

    def fused_stats(self):
        """(y [H, 3W], mu_y [H-10, 3(W-10)], e_yy [H-10, 3(W-10)]) float32 numpy for :mod:`.loss_cpu`, cached."""
        if self._fused is None:
            from .loss_cpu import WINDOW, target_stats  # lazy: numba kernel module, needed on the CPU backend only

            if self.hwc is None or self.hwc.shape[2] != 3:
                raise ValueError("the fused CPU loss needs a target given as [H, W, 3]")
            h, w = int(self.hwc.shape[0]), int(self.hwc.shape[1])
            y = self.hwc.to(torch.float32).contiguous().numpy().reshape(h, 3 * w)
            mu, e = target_stats(y, h - HALO, w - HALO, WINDOW)
            self._fused = (y, mu, e)
        return self._fused

    @property
    def count(self) -> int:
        """Number of SSIM-map values (channels x (H-10) x (W-10))."""
        _, c, h, w = self.y.shape
        return c * (h - HALO) * (w - HALO)


def _ssim_terms(x: torch.Tensor, t: SSIMTarget):
    c = x.shape[1]
    stats = _filter(torch.cat([x, x * x, x * t.y], dim=1))
    mu_x, e_xx, e_xy = stats[:, :c], stats[:, c:2 * c], stats[:, 2 * c:]
    mu_y = t.mu_y
    a1 = 2 * mu_x * mu_y + C1
    a2 = 2 * (e_xy - mu_x * mu_y) + C2
    b1 = mu_x * mu_x + mu_y * mu_y + C1
    b2 = (e_xx - mu_x * mu_x) + (t.e_yy - mu_y * mu_y) + C2
    return mu_x, mu_y, a1, a2, b1, b2


class _SSIMSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, target: SSIMTarget) -> torch.Tensor:  # x: [1, C, H, W]
        mu_x, mu_y, a1, a2, b1, b2 = _ssim_terms(x, target)
        s_map = (a1 * a2) / (b1 * b2)
        ctx.save_for_backward(x)
        ctx.target = target
        ctx.terms = (mu_x, mu_y, a1, a2, b1, b2, s_map)
        return s_map.sum()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        mu_x, mu_y, a1, a2, b1, b2, s = ctx.terms
        t = ctx.target
        c = x.shape[1]
        # dS/dmu_x (sigma_x and sigma_xy depend on mu_x too), dS/dE[x^2], dS/dE[xy]; no division by a1 or a2
        # (a2 = 2 cov + C2 reaches 0 where x and y anti-correlate: s / a2 would be 0 / 0)
        inv = 1.0 / (b1 * b2)
        d_mu = 2 * mu_y * (a2 - a1) * inv + s * (2 * mu_x / b2 - 2 * mu_x / b1)
        d_xx = -s / b2
        d_xy = 2 * a1 * inv
        back = _filter_adjoint(torch.cat([d_mu, d_xx, d_xy], dim=1) * grad)
        dx = back[:, :c] + 2 * x * back[:, c:2 * c] + t.y * back[:, 2 * c:]
        return dx, None


def ssim_sum(x: torch.Tensor, target: SSIMTarget | torch.Tensor) -> tuple[torch.Tensor, int]:
    """Sum of the SSIM map of ``x`` against ``target`` and the number of map values.

    Args:
        x: [H, W, C] or [1, C, H, W] float (float32 for speed), values in [0, 1] (unclamped is fine).
        target: an :class:`SSIMTarget` or a tensor of the same shape as ``x``.
    Returns:
        (scalar tensor, differentiable w.r.t. ``x``; int count = C (H-10) (W-10)).
    """
    if not isinstance(target, SSIMTarget):
        target = SSIMTarget(target.to(dtype=x.dtype, device=x.device))
    xc = _to_chw(x)
    if xc.shape != target.y.shape:
        raise ValueError(f"SSIM inputs differ in shape: {list(xc.shape)} vs {list(target.y.shape)}")
    return _SSIMSum.apply(xc, target), target.count


def differentiable_ssim(x: torch.Tensor, target: SSIMTarget | torch.Tensor) -> torch.Tensor:
    """Mean SSIM ('valid' map, averaged over pixels and channels); differentiable w.r.t. ``x``.

    Args:
        x, target: [H, W, C] or [1, C, H, W] float in [0, 1] (or a prepared :class:`SSIMTarget`).
    Returns:
        scalar tensor.
    """
    total, count = ssim_sum(x, target)
    return total / count


class _FusedL1SSIM(torch.autograd.Function):
    """``w_l1 * L1 - w_ssim * S`` of an [H, W, 3] CPU float32 image; value and gradient from one kernel call."""

    @staticmethod
    def forward(ctx, img, target, st, owned, w_l1, w_ssim, out):
        from ..raster.cpu_backend import launch_lock  # lazy: numba kernel module, needed on the CPU backend only
        from .loss_cpu import l1_ssim_grad  # lazy: numba kernel module, needed on the CPU backend only

        h, w = int(img.shape[0]), int(img.shape[1])
        x = img.detach().contiguous().numpy().reshape(h, 3 * w)
        y = target.detach().to(torch.float32).contiguous().numpy().reshape(h, 3 * w)
        if st is not None:
            _, mu, e = st.fused_stats()
            mh, mw = mu.shape[0], mu.shape[1] // 3
        else:
            mu = e = np.zeros((0, 0), np.float32)
            mh = mw = 0
        grad = np.zeros_like(x)
        with launch_lock(numba_threads()):
            l1, s, se = l1_ssim_grad(x, y, mu, e, int(owned[0]), int(owned[1]), mh, mw, float(w_l1), float(w_ssim),
                                     grad)
        out.extend((float(l1), float(s), float(se)))
        ctx.grad = torch.from_numpy(grad).view(h, w, 3)
        return img.new_tensor(w_l1 * l1 - w_ssim * s)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        return ctx.grad * grad_out, None, None, None, None, None, None


def l1_ssim_loss(img: torch.Tensor, target: torch.Tensor, st: SSIMTarget | None, owned: tuple[int, int],
                 w_l1: float, w_ssim: float) -> tuple[torch.Tensor, float, float, float]:
    """The training loss of one window: ``w_l1 * L1 - w_ssim * S`` and its parts.

    Args:
        img: [H, W, 3] float render (differentiable); target: [H, W, 3] float in [0, 1].
        st: the :class:`SSIMTarget` of ``target[:mh+10, :mw+10]`` (the window's SSIM map is mh x mw), or None.
        owned: (oh, ow): the L1 term and the squared error cover ``[:oh, :ow]``.
        w_l1, w_ssim: weights.
    Returns:
        (scalar tensor differentiable w.r.t. ``img``; L1 = sum |img - target| over owned; S = sum of the SSIM
        map; SE = sum of (clamp(img, 0, 1) - target)^2 over owned).

    A float32 CPU image takes the compiled fused kernel (:mod:`.loss_cpu`: value and gradient in one multi-threaded
    call, gradient kept for backward); other devices compose the torch ops (analytic SSIM backward).
    """
    oh, ow = int(owned[0]), int(owned[1])
    if img.device.type == "cpu" and img.dtype == torch.float32 and img.dim() == 3 and img.shape[2] == 3 \
            and (st is None or st.hwc is not None):
        parts: list[float] = []
        loss = _FusedL1SSIM.apply(img, target, st, (oh, ow), w_l1, w_ssim, parts)
        return loss, parts[0], parts[1], parts[2]
    diff = img[:oh, :ow] - target[:oh, :ow]
    l1 = diff.abs().sum()
    loss = w_l1 * l1
    s_val = 0.0
    if st is not None:
        th, tw = int(st.y.shape[2]), int(st.y.shape[3])  # the map's pixels plus the 10 px halo
        s_sum, _ = ssim_sum(img[:th, :tw], st)
        loss = loss - w_ssim * s_sum
        s_val = float(s_sum.detach())
    with torch.no_grad():
        e = img[:oh, :ow].clamp(0.0, 1.0) - target[:oh, :ow]
        se = float((e * e).sum())
    return loss, float(l1.detach()), s_val, se


def l1_ssim_reference(img: torch.Tensor, target: torch.Tensor, owned: tuple[int, int], map_hw: tuple[int, int],
                      w_l1: float, w_ssim: float) -> torch.Tensor:
    """Plain autograd composition of :func:`l1_ssim_loss`'s value (the check for its gradient)."""
    oh, ow = owned
    mh, mw = map_hw
    loss = w_l1 * (img[:oh, :ow] - target[:oh, :ow]).abs().sum()
    if mh > 0 and mw > 0:
        count = 3 * mh * mw
        loss = loss - w_ssim * count * ssim_reference(img[:mh + HALO, :mw + HALO], target[:mh + HALO, :mw + HALO])
    return loss


def ssim_reference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Plain autograd version of :func:`ssim` (the check for the analytic backward): [H, W, C] -> scalar."""
    xc, yc = _to_chw(x), _to_chw(y)
    c = xc.shape[1]
    f = _filter(torch.cat([xc, yc, xc * xc, yc * yc, xc * yc], dim=1))
    mx, my, xx, yy, xy = (f[:, i * c:(i + 1) * c] for i in range(5))
    s = ((2 * mx * my + C1) * (2 * (xy - mx * my) + C2)) / (
        (mx * mx + my * my + C1) * ((xx - mx * mx) + (yy - my * my) + C2))
    return s.mean()


__all__ = ["SSIMTarget", "differentiable_ssim", "ssim_sum", "ssim_reference", "l1_ssim_loss", "l1_ssim_reference", "gaussian_window", "WINDOW_SIZE", "HALO",
           "C1", "C2"]
