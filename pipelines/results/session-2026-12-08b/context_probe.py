"""Probe (session 2026-12-08b): would cheap contexts shrink a version-5 record's ANS streams? Real adaptive-coder
bytes (codec/ans.py, the smaller of its smoothed and plain models) of each stream as stored and with a context
split or another colour transform, per Gaussian.

    smartsplat encode ../shared/data/photos-768/Bamboo.png -o /tmp/Bamboo-50.ssplat --cr 50 --steps 1000 --backend cpu
    python context_probe.py /tmp/Bamboo-50.ssplat

Measured on that record (4268 Gaussians, 5.39 B/G): colour G 0.746 -> 0.755 with the previous Gaussian's G
(same colour step) as context; G, R-G, B-G 2.071 -> 2.118 as YCoCg-R, 2.077 with R-G, B-G split by G's quartile;
log-scale x 0.637 -> 0.631 on the previous log-scale; gap symbols 0.616 -> 0.619 / 0.630 / 0.644 on the previous
gap (4 / 8 / 16 contexts), 0.628 on the log-scale.
"""
import dataclasses
import sys

import numpy as np

from smartsplat_dist.codec import ans, entropy
from smartsplat_dist.codec import record_v2 as R
from smartsplat_dist.codec.grid import COLOR_SHIFTS, Quantized, color_shifts, quantize
from smartsplat_dist.codec.record import decode_record


def cost(subs):
    return min(len(ans.encode_many(subs, smooth=True)), len(ans.encode_many(subs, smooth=False)))


def split(sym, ctx, k, nctx):
    return [(sym[ctx == c], k) for c in range(nctx)]


def by_quantile(values, of, n):
    edges = np.unique(np.quantile(values, np.linspace(0, 1, n + 1)[1:-1]))
    return np.searchsorted(edges, of, side="right"), len(edges) + 1


def main(path):
    data = open(path, "rb").read()
    p = R.parse(data, lambda h, w: None, lambda h, w: 1 << 30)
    h = p.header
    q, grid = quantize(decode_record(data)[0], h.height, h.width, h.steps)
    coarse = q.qmeans >> q.mbits[:, None]
    order, codes = R._sorted_order(q, coarse, int(coarse[:, 0].min()), int(coarse[:, 1].min()))
    q = Quantized(*(getattr(q, f.name)[order] for f in dataclasses.fields(q)))
    n = h.n
    print(f"{path}: {n} Gaussians, {len(data) / n:.3f} B/G; as stored: "
          + ", ".join(f"{name} {s[2] / n:.3f}" for name, s in zip(R.STREAMS, p.streams)))
    shifts = color_shifts(q.qscales, h.steps.scale_step)
    base = prev = ycocg = cond = 0
    for j in range(COLOR_SHIFTS[0], COLOR_SHIFTS[1] + 1):
        idx = np.where(shifts == j)[0]
        if idx.size == 0:
            continue
        r, g, b = (q.qcolors[idx, c] for c in range(3))
        own = lambda a: [(a - a.min(), int(a.max() - a.min()) + 1)]  # noqa: E731
        base += cost(own(g)) + cost(own(r - g)) + cost(own(b - g))
        ctx, m = by_quantile(g, np.concatenate([[g[0]], g[:-1]]), 8)
        prev += cost(split(g - g.min(), ctx, int(g.max() - g.min()) + 1, m))
        co = r - b
        t = b + (co >> 1)
        cg = g - t
        ycocg += cost(own(t + (cg >> 1))) + cost(own(co)) + cost(own(cg))
        ctx, m = by_quantile(g, g, 4)
        cond += cost(own(g)) + sum(cost(own((r - g)[ctx == c])) + cost(own((b - g)[ctx == c]))
                                   for c in range(m) if (ctx == c).any())
    g_only = sum(cost([(q.qcolors[shifts == j, 1] - q.qcolors[shifts == j, 1].min(),
                        int(np.ptp(q.qcolors[shifts == j, 1])) + 1)])
                 for j in range(COLOR_SHIFTS[0], COLOR_SHIFTS[1] + 1) if (shifts == j).any())
    print(f"colour G {g_only / n:.3f}, on the previous G {prev / n:.3f}; G, R-G, B-G {base / n:.3f}, YCoCg-R "
          f"{ycocg / n:.3f}, differences split by G {cond / n:.3f}")
    sx = q.qscales[:, 0]
    ctx, m = by_quantile(sx, np.concatenate([[sx[0]], sx[:-1]]), 8)
    print(f"log-scale x {cost([(sx, grid.scale_levels)]) / n:.3f}, on the previous "
          f"{cost(split(sx, ctx, grid.scale_levels, m)) / n:.3f}")
    px = coarse[order]
    syms = entropy.gaps_to_symbols(np.diff(entropy.morton_encode(
        (px[:, 0] - px[:, 0].min()).astype(np.uint64), (px[:, 1] - px[:, 1].min()).astype(np.uint64)),
        prepend=np.uint64(0)))[0]
    a = R.GAP_ALPHABET
    prev_gap = np.concatenate([[0], syms[:-1]])
    cells = [f"{cost([(syms, a)]) / n:.3f}"]
    for k in (4, 8, 16):
        ctx, m = by_quantile(prev_gap, prev_gap, k)
        cells.append(f"previous gap {k}: {cost(split(syms, ctx, a, m)) / n:.3f}")
    ctx, m = by_quantile(sx, sx, 8)
    cells.append(f"log-scale 8: {cost(split(syms, ctx, a, m)) / n:.3f}")
    print("gap symbols " + ", ".join(cells))


if __name__ == "__main__":
    for path in sys.argv[1:]:
        main(path)
