"""Rate–distortion plots (matplotlib, headless Agg backend) as PNG bytes.

A curve is ``{"bpp": [n], "psnr": [n], "ms_ssim": [n], ...}`` (lists of floats, one point per rate); a panel set
is ``{dataset: {codec label: curve}}``. Our codec is drawn thick; the classic codecs thin.
"""
from __future__ import annotations

import io
import math
from typing import Mapping, Sequence

Curve = Mapping[str, Sequence[float]]

#: (key in the curve, axis label) of the panels drawn per dataset, when the curves have them.
PANELS = (("psnr", "PSNR (dB, RGB)"), ("ms_ssim", "MS-SSIM (dB: −10·log10(1−MS-SSIM))"))

_STYLE = {
    "SmartSplat": dict(color="#d62728", marker="o", linewidth=2.6, zorder=5),
    "JPEG": dict(color="#7f7f7f", marker="s"),
    "WebP": dict(color="#2ca02c", marker="^"),
    "AVIF": dict(color="#1f77b4", marker="D"),
    "JPEG 2000": dict(color="#9467bd", marker="v"),
    "JPEG XL": dict(color="#ff7f0e", marker="P"),
}


def _ms_ssim_db(values: Sequence[float]) -> list[float]:
    return [(-10.0 * math.log10(max(1e-12, 1.0 - v)) if v is not None else math.nan) for v in values]


def rd_figure_png(panels: Mapping[str, Mapping[str, Curve]], title: str | None = None, dpi: int = 110) -> bytes:
    """Draw one row per dataset, one column per metric (PSNR, MS-SSIM in dB), rate (bpp, log scale) on x.

    Args:
        panels: {dataset name: {codec label: curve}}; points with a missing value are left out.
        title: figure title (e.g. the machine and "real photographs").
    Returns:
        PNG bytes.
    """
    import matplotlib  # lazy: matplotlib is slow to import

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt  # lazy: matplotlib is slow to import
    from matplotlib.ticker import FuncFormatter  # lazy: matplotlib is slow to import

    plain = FuncFormatter(lambda v, _pos: f"{v:g}")

    datasets = list(panels) or ["(no data)"]
    cols = [p for p in PANELS if any(p[0] in c for d in panels.values() for c in d.values())] or [PANELS[0]]
    fig, axes = plt.subplots(len(datasets), len(cols), figsize=(6.2 * len(cols), 4.4 * len(datasets)),
                             squeeze=False)
    for r, dataset in enumerate(datasets):
        for c, (key, label) in enumerate(cols):
            ax = axes[r][c]
            for codec, curve in panels.get(dataset, {}).items():
                xs, ys = list(curve.get("bpp", [])), list(curve.get(key, []))
                if key == "ms_ssim":
                    ys = _ms_ssim_db(ys)
                pts = sorted((x, y) for x, y in zip(xs, ys)
                             if x is not None and y is not None and x > 0 and not math.isnan(y))
                if not pts:
                    continue
                style = dict(_STYLE.get(codec, {}))
                style.setdefault("linewidth", 1.4)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=codec, markersize=5, **style)
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(plain)
            ax.xaxis.set_minor_formatter(plain)
            ax.set_xlabel("bits per pixel")
            ax.set_ylabel(label)
            ax.set_title(dataset)
            ax.grid(True, which="both", alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


__all__ = ["rd_figure_png", "PANELS"]
