"""Why quantisation-aware training loses here: quantised positions that oscillate between grid points.

    python pipelines/qat_oscillation.py --data smartsplat_dist/examples --images Bamboo.png --cr 50 --steps 400 \
        --qat-steps 30 --out bench-results/qat-oscillation.json

For each image and CR: a budget-mode fit of ``--steps - --qat-steps`` steps picks the record's steps (rate
control); then three fits of ``--steps`` from the same initialisation: plain, with the means fake-quantised on
that grid (straight-through) in the last ``--qat-steps`` steps (QAT), and the same with oscillation freezing (a
Gaussian whose quantised mean returns to the point it held two steps before stays there). Before the window and
after each of its steps it records the PSNR of the parameters with their means quantised (uint8 render), and for
the QAT fit how many Gaussians' quantised means moved and how many of those went back to a grid point they had
held before in the window (an oscillation). Prints a table per step; writes JSON.
"""
from __future__ import annotations

import sys

import torch

from _photos import budget_fit, photo_parser, photos  # the folder of this script is on sys.path
from smartsplat_dist import api
from smartsplat_dist.bench.common import write_result
from smartsplat_dist.codec import CodecConfig
from smartsplat_dist.codec.record import snap_means
from smartsplat_dist.fitting import FitConfig, fit
from smartsplat_dist.fitting.optimize import render_uint8_psnr
from smartsplat_dist.init import InitConfig, initialize
from smartsplat_dist.model import Gaussians
from smartsplat_dist.raster import get_backend


class MeanQuantizer:
    """Straight-through quantisation of the means on the record's grid (``codec.record.snap_means``).

    With ``freeze``, a Gaussian whose quantised mean comes back to the point it held two steps before is held
    there from then on (freezing oscillating weights, as Nagel et al. 2022 do for network weights).
    """

    def __init__(self, meta, codec, freeze: bool) -> None:
        self.meta, self.codec, self.freeze = meta, codec, freeze
        self.frozen = self.value = self.prev = self.prev2 = None

    def points(self, g: Gaussians) -> torch.Tensor:
        """[N, 2] the quantised means (px) the quantiser would give now, frozen ones held (no state change)."""
        q = snap_means(g, self.meta, self.codec)
        return q if self.frozen is None else torch.where(self.frozen[:, None], self.value, q)

    def __call__(self, g: Gaussians) -> Gaussians:
        q = snap_means(g, self.meta, self.codec)
        if self.freeze:
            if self.frozen is None:
                self.frozen, self.value = torch.zeros(len(q), dtype=torch.bool), q.clone()
            elif self.prev2 is not None:
                back = (q == self.prev2).all(1) & (q != self.prev).any(1) & ~self.frozen
                self.value[back] = q[back]
                self.frozen |= back
            self.prev2, self.prev = self.prev, q
            q = torch.where(self.frozen[:, None], self.value, q)
        return Gaussians(g.means + (q - g.means).detach(), g.scales, g.rotations, g.colors)


def window(px, init, steps: int, qat_steps: int, quantizer: MeanQuantizer, qat: bool, backend: str):
    """After the last step before the window and after each step in it (``qat_steps + 1`` entries): (PSNR with
    quantised means, quantised means [N, 2] px)."""
    render = get_backend(backend)
    box = [(0, px.shape[0], 0, px.shape[1])]
    out = []

    def progress(step: int, info: dict) -> None:
        if step >= steps - qat_steps:
            g = info["gaussians"]().to("cpu")
            points = quantizer.points(g)
            psnr = render_uint8_psnr(Gaussians(points, g.scales, g.rotations, g.colors), px, box, render)
            out.append((psnr, points))

    config = FitConfig(steps=steps, log_every=1, qat_steps=qat_steps if qat else 0)
    fit(init, px, config, backend=backend, quantizer=quantizer if qat else None, final_psnr=False,
        progress=progress)
    return out


def main() -> int:
    args = photo_parser(__doc__, "bench-results/qat-oscillation.json").parse_args()
    if args.qat_steps <= 0:
        raise SystemExit("--qat-steps must be > 0")
    rows = []
    for name, px in photos(args):
        for cr in args.cr:
            g, _, meta, budget = budget_fit(px, cr, args.steps - args.qat_steps, args.backend, args.fits, name)
            _, codec = api._encode_within_budget(g, meta, CodecConfig(), budget)

            init = initialize(px, len(g), InitConfig(), seed=0)
            quantizers = [MeanQuantizer(meta, codec, freeze) for freeze in (False, False, True)]
            plain, qat, frozen = (window(px, init, args.steps, args.qat_steps, q, on, args.backend)
                                  for q, on in zip(quantizers, (False, True, True)))
            n_frozen = int(quantizers[2].frozen.sum())
            held = [{tuple(v)} for v in qat[0][1].tolist()]
            per_step = []
            for k in range(len(qat)):
                moved = back = 0
                if k:
                    changed = torch.nonzero((qat[k][1] != qat[k - 1][1]).any(1)).flatten().tolist()
                    moved = len(changed)
                    for i in changed:
                        point = tuple(qat[k][1][i].tolist())
                        back += point in held[i]
                        held[i].add(point)
                per_step.append({"qat_step": k, "psnr_plain": plain[k][0], "psnr_qat": qat[k][0],
                                 "moved": moved, "moved_back": back, "psnr_qat_freeze": frozen[k][0]})
            rows.append({"image": name, "cr": cr, "n": len(g), "mean_frac_bits": codec.mean_frac_bits,
                         "fit_steps": args.steps, "qat_steps": args.qat_steps, "frozen": n_frozen,
                         "per_step": per_step})
            print(f"{name}, CR {cr:g}, N = {len(g)}, means on a 1/{1 << codec.mean_frac_bits} px grid; PSNR (dB) "
                  f"with quantised means before (step 0) and after each step of the last {args.qat_steps} "
                  f"(QAT + freeze: {n_frozen} frozen at the end):")
            print(f"{'step':>5} {'plain':>7} {'QAT':>7} {'moved':>6} {'back':>5} {'QAT+freeze':>10}")
            for r in per_step:
                print(f"{r['qat_step']:5d} {r['psnr_plain']:7.2f} {r['psnr_qat']:7.2f} {r['moved']:6d} "
                      f"{r['moved_back']:5d} {r['psnr_qat_freeze']:10.2f}")
    out = write_result(args.out, "qat-oscillation", __doc__.splitlines()[0],
                       {"backend": args.backend, "rows": rows})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
