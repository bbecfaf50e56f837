"""Compiled CPU kernel of the training loss: L1 + SSIM value and gradient in one call (numba, multi-threaded).

Works on images in their render layout, [H, W, 3] float32 viewed as [H, 3W] rows, so a horizontal filter tap is
a shift by 3 values. Same definitions as :mod:`smartsplat_dist.fitting.loss` (11-tap separable Gaussian,
'valid' SSIM map, C1 = 0.01^2, C2 = 0.03^2 for values in [0, 1], no centring), float32 filters, float64 sums.

The rows are processed in bands of :data:`BAND` map rows (bounded temporaries that stay in cache; a band's
gradient reaches 10 rows into the next and is summed). Four passes per band, each parallel over rows (``prange``)
with contiguous, vectorisable inner loops (sums are taken in loops of their own: without fastmath, a loop that
accumulates a float sum is not vectorised; 1.5x on the whole kernel at 768x512):

1. horizontal filter of x, x^2 and x*y (rows 0 .. mh+9, columns 0 .. mw-1);
2. vertical filter, the SSIM map value and its partial derivatives dS/dmu_x, dS/dE[x^2], dS/dE[xy] per map
   pixel (the target's mu_y and E[y^2] are inputs, computed once per target by :func:`target_stats`);
3. the adjoint vertical filter of the three derivative maps;
4. the adjoint horizontal filter, combined into dS/dx = A_mu + 2 x A_xx + y A_xy, plus the L1 term
   ``sign(x - y)`` over the owned pixels and the squared error of the [0, 1]-clamped image (for the PSNR).

The gradient written is ``w_l1 * dL1/dx - w_ssim * dS/dx`` where L1 is the sum of |x - y| over the owned
[oh, ow] pixels and S the sum of the SSIM map over [mh, mw] (of the image's top-left [mh+10, mw+10] pixels).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .ssim_def import K1, K2, window_1d

_C1 = np.float32(K1 ** 2)
_C2 = np.float32(K2 ** 2)
#: The SSIM window [11] float32.
WINDOW = window_1d().astype(np.float32)


@njit(cache=True, parallel=True)
def target_stats(y, mh, mw, g):
    """Gaussian-filtered y and y^2 of a target: y [H, 3W] float32 -> (mu_y, e_yy) [mh, 3mw] float32 each."""
    mw3 = 3 * mw
    hy = np.zeros((mh + 10, mw3), np.float32)
    hyy = np.zeros((mh + 10, mw3), np.float32)
    for r in prange(mh + 10):
        for k in range(11):
            gk = g[k]
            off = 3 * k
            for q in range(mw3):
                v = y[r, q + off]
                hy[r, q] += gk * v
                hyy[r, q] += gk * v * v
    mu = np.zeros((mh, mw3), np.float32)
    e = np.zeros((mh, mw3), np.float32)
    for i in prange(mh):
        for k in range(11):
            gk = g[k]
            for q in range(mw3):
                mu[i, q] += gk * hy[i + k, q]
                e[i, q] += gk * hyy[i + k, q]
    return mu, e


@njit(cache=True, parallel=True)
def _band(x, y, mu_y, e_yy, oh, ow, mh, mw, w_l1, w_ssim, g, grad):
    """One band of rows (see :func:`l1_ssim_grad`); ``grad`` is accumulated into (+=)."""
    h = x.shape[0]
    mw3 = 3 * mw
    rh = mh + 10 if mh > 0 else 0
    rw3 = 3 * (mw + 10) if mh > 0 else 0
    ow3 = 3 * ow
    wl = np.float32(w_l1)
    ws = np.float32(w_ssim)
    two = np.float32(2.0)
    # 1. horizontal filter of x, x^2, x*y
    hx = np.zeros((rh, mw3), np.float32)
    hxx = np.zeros((rh, mw3), np.float32)
    hxy = np.zeros((rh, mw3), np.float32)
    for r in prange(rh):
        for k in range(11):
            gk = g[k]
            off = 3 * k
            for q in range(mw3):
                v = x[r, q + off]
                hx[r, q] += gk * v
                hxx[r, q] += gk * v * v
                hxy[r, q] += gk * v * y[r, q + off]
    # 2. vertical filter, map, derivatives
    d_mu = np.empty((mh, mw3), np.float32)
    d_xx = np.empty((mh, mw3), np.float32)
    d_xy = np.empty((mh, mw3), np.float32)
    s_rows = np.zeros(max(mh, 1), np.float64)
    for i in prange(mh):
        mx = np.zeros(mw3, np.float32)
        exx = np.zeros(mw3, np.float32)
        exy = np.zeros(mw3, np.float32)
        for k in range(11):
            gk = g[k]
            for q in range(mw3):
                mx[q] += gk * hx[i + k, q]
                exx[q] += gk * hxx[i + k, q]
                exy[q] += gk * hxy[i + k, q]
        srow = np.empty(mw3, np.float32)
        for q in range(mw3):
            m_x = mx[q]
            m_y = mu_y[i, q]
            a1 = two * m_x * m_y + _C1
            a2 = two * (exy[q] - m_x * m_y) + _C2
            b1 = m_x * m_x + m_y * m_y + _C1
            b2 = (exx[q] - m_x * m_x) + (e_yy[i, q] - m_y * m_y) + _C2
            inv = np.float32(1.0) / (b1 * b2)  # b1 >= C1, b2 ~ C2 + variances: never 0
            s = a1 * a2 * inv
            srow[q] = s
            # no division by a1 or a2: a2 = 2 cov + C2 reaches 0 where x and y anti-correlate (then s / a2
            # was 0 / 0 = NaN: a fit's Gaussians under that window got NaN gradients)
            d_mu[i, q] = two * m_y * (a2 - a1) * inv + s * (two * m_x / b2 - two * m_x / b1)
            d_xx[i, q] = -s / b2
            d_xy[i, q] = two * a1 * inv
        acc = 0.0
        for q in range(mw3):
            acc += srow[q]
        s_rows[i] = acc
    # 3. adjoint vertical filter into the (now free) horizontal buffers: A[r] = sum_k g[k] D[r - k]
    for r in prange(rh):
        a_mu = hx[r]
        a_xx = hxx[r]
        a_xy = hxy[r]
        a_mu[:] = 0.0
        a_xx[:] = 0.0
        a_xy[:] = 0.0
        for k in range(max(0, r - mh + 1), min(11, r + 1)):
            gk = g[k]
            for q in range(mw3):
                a_mu[q] += gk * d_mu[r - k, q]
                a_xx[q] += gk * d_xx[r - k, q]
                a_xy[q] += gk * d_xy[r - k, q]
    # 4. adjoint horizontal filter, dS/dx, L1 and squared error
    l1_rows = np.zeros(h, np.float64)
    se_rows = np.zeros(h, np.float64)
    for r in prange(h):
        gr = grad[r]
        if r < rh:
            b_mu = np.zeros(rw3, np.float32)
            b_xx = np.zeros(rw3, np.float32)
            b_xy = np.zeros(rw3, np.float32)
            for k in range(11):
                gk = g[k]
                off = 3 * k
                for q in range(mw3):
                    b_mu[q + off] += gk * hx[r, q]
                    b_xx[q + off] += gk * hxx[r, q]
                    b_xy[q + off] += gk * hxy[r, q]
            for p in range(rw3):
                gr[p] -= ws * (b_mu[p] + two * x[r, p] * b_xx[p] + y[r, p] * b_xy[p])
        if r < oh:
            for p in range(ow3):
                d = x[r, p] - y[r, p]
                gr[p] += wl * (np.float32(d > 0) - np.float32(d < 0))
            l1 = 0.0
            se = 0.0
            for p in range(ow3):
                d = x[r, p] - y[r, p]
                l1 += abs(d)
                c = min(max(x[r, p], np.float32(0.0)), np.float32(1.0)) - y[r, p]
                se += c * c
            l1_rows[r] = l1
            se_rows[r] = se
    return l1_rows.sum(), s_rows[:mh].sum(), se_rows.sum()


#: Rows of the SSIM map per kernel call: bounds the kernel's temporaries (6 x (BAND + 10) rows) and keeps
#: them in cache; the gradient of neighbouring bands overlaps by 10 rows and is summed.
BAND = 128


def l1_ssim_grad(x, y, mu_y, e_yy, oh, ow, mh, mw, w_l1, w_ssim, grad):
    """Loss sums and gradient of an image against its target, band by band (see module docstring).

    Args:
        x, y: [H, 3W] float32 (image, target); mu_y, e_yy: [mh, 3mw] from :func:`target_stats` (mh = 0: no SSIM).
        oh, ow: owned pixels of the L1 term;
        mh, mw: SSIM map size (mh + 10 <= H, mw + 10 <= W).
        w_l1, w_ssim: weights of the gradient.
        grad: [H, 3W] float32, zeroed by the caller; the gradient is added to it.
    Returns:
        (sum of |x - y| over owned, sum of the SSIM map, sum of (clamp(x, 0, 1) - y)^2 over owned), floats.
    """
    total = max(mh, oh)
    l1 = s = se = 0.0
    for t0 in range(0, total, BAND):
        t1 = min(total, t0 + BAND)
        bm = max(0, min(t1, mh) - t0)
        bo = max(0, min(t1, oh) - t0)
        end = max(t0 + bm + 10 if bm else t0, t0 + bo)
        a, b, c = _band(x[t0:end], y[t0:end], mu_y[t0:t0 + bm], e_yy[t0:t0 + bm], bo, ow, bm, mw if bm else 0,
                        w_l1, w_ssim, WINDOW, grad[t0:end])
        l1 += a
        s += b
        se += c
    return l1, s, se


__all__ = ["l1_ssim_grad", "target_stats", "WINDOW"]
