"""Small inline SVG charts for the report (no plotting library, no external resources)."""
from __future__ import annotations

import html
import math
from typing import Sequence

import numpy as np


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float, step: float | None = None) -> str:
    """A tick or bin label; with ``step``, just enough decimals to tell neighbouring ticks apart."""
    if step is not None and step > 0:
        decimals = max(0, -math.floor(math.log10(step) + 1e-9))
        return f"{v:.{decimals}f}"
    return f"{v:.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.3g}"


def histogram_svg(values: Sequence[float], title: str, unit: str = "", bins: int = 30,
                  log: bool = False, width: int = 520, height: int = 240) -> str:
    """An SVG histogram of ``values`` (finite ones; [n] floats) as a string for inline use.

    Args:
        values: the data; non-finite values are dropped (their count is shown).
        title, unit: labels (escaped). bins: number of bars. log: log10-spaced bins (for CR).
    """
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    dropped = int(np.sum(~np.isfinite(v))) + (len(values) - len(v))
    v = v[np.isfinite(v)]
    if log:
        dropped += int(np.sum(v <= 0))
        v = v[v > 0]
    t = html.escape(title)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="hist" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{t}">')
    if v.size == 0:
        return head + f'<text x="10" y="30" class="t">{t}: no data</text></svg>'
    ml, mr, mt, mb = 44, 12, 26, 36
    pw, ph = width - ml - mr, height - mt - mb
    lo, hi = float(v.min()), float(v.max())
    if hi == lo:
        pad = max(abs(lo) * 0.05, 1e-3)
        lo, hi = (lo / 1.1, hi * 1.1) if log else (lo - pad, hi + pad)
    edges = np.geomspace(lo, hi, bins + 1) if log else np.linspace(lo, hi, bins + 1)
    counts, _ = np.histogram(v, bins=edges)
    top = max(1, int(counts.max()))
    tx = (lambda x: ml + pw * (math.log(x / lo) / math.log(hi / lo))) if log else \
         (lambda x: ml + pw * (x - lo) / (hi - lo))
    parts = [head, f'<text x="{ml}" y="16" class="t">{t} (n={v.size}'
             + (f", {dropped} without a value" if dropped else "") + ")</text>"]
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        if c == 0:
            continue
        x0, x1 = tx(a), tx(b)
        hgt = ph * c / top
        parts.append(f'<rect x="{x0:.1f}" y="{mt + ph - hgt:.1f}" width="{max(0.8, x1 - x0 - 0.8):.1f}" '
                     f'height="{hgt:.1f}" class="bar"><title>{_fmt(a)}–{_fmt(b)} {html.escape(unit)}: {c}'
                     '</title></rect>')
    parts.append(f'<line x1="{ml}" y1="{mt + ph}" x2="{ml + pw}" y2="{mt + ph}" class="ax"/>')
    if log:
        vals = [m * 10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                for m in (1, 2, 5) if lo <= m * 10.0 ** k <= hi]
        if len(vals) < 3:  # a narrow range: linear ticks read better
            vals = _nice_ticks(lo, hi)
    else:
        vals = _nice_ticks(lo, hi)
    step = min((b - a for a, b in zip(vals, vals[1:])), default=None)
    for x_val in vals:
        if not lo <= x_val <= hi:
            continue
        x = tx(x_val)
        label = _fmt(x_val, step)
        parts.append(f'<line x1="{x:.1f}" y1="{mt + ph}" x2="{x:.1f}" y2="{mt + ph + 4}" class="ax"/>'
                     f'<text x="{x:.1f}" y="{mt + ph + 16}" class="tick" text-anchor="middle">{label}</text>')
    for c in _nice_ticks(0, top, 4):
        if c != int(c):
            continue
        y = mt + ph - ph * c / top
        parts.append(f'<text x="{ml - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{int(c)}</text>')
    parts.append(f'<text x="{ml + pw / 2:.0f}" y="{height - 4}" class="tick" text-anchor="middle">'
                 f'{html.escape(unit)}{" (log scale)" if log else ""}</text></svg>')
    return "".join(parts)


__all__ = ["histogram_svg"]
