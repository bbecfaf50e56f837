"""Probe (session 2026-12-08b): learned rounding (AdaRound) of the colour fine-tune's colours, before it was built
into the encoder (the same algorithm as smartsplat_dist/fitting/rounding.py; through the shipped encoder
God-Rays at CR 100 gives the same 42.315 dB).

    DATA=../shared/data/photos-768 FITS=/tmp/fits python learned_rounding_probe.py 50,100 \
        God-Rays.png Kleiber_by_Lukas_Baubkus.png Sea-of-Lanterns.png White-Flower.png Bamboo.png \
        > learned-rounding-probe.jsonl

Each line: the 1000-step budget-mode fit's PSNR, the record the encoder shipped before (shapes then colour
fine-tune, nearest rounding: "shipped", [PSNR, bytes]), the same tuned colours rounded to the nearest level on the
same colour step, and learned rounding for 50 iterations at Adam learning rate 0.1 and 0.2 ([PSNR, bytes, s]).

As run against that session's encoder; against later code the encoder's steps include what came after.
"""
import json, os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))  # pipelines/
import numpy as np, torch
from _photos import saved_fits
from smartsplat_dist import api
from smartsplat_dist.codec import decode_record, encode_record
from smartsplat_dist.codec.limits import UNLIMITED
from smartsplat_dist.codec.grid import quantize, _color_multipliers
from smartsplat_dist.codec.record import _steps
from smartsplat_dist.fitting.optimize import loss_windows, target_tensor, loss_and_grad
from smartsplat_dist.raster import get_backend
from smartsplat_dist.model import Gaussians
rf = get_backend('cpu')
G, Z = -0.1, 1.1
def ada(t, meta, used, px, iters, lam_rel, lr, warm=0.2):
    H, W = px.shape[:2]
    wins = loss_windows(target_tensor(px, 'cpu'), 2048, True)
    steps = _steps(used)
    qq, grid = quantize(t, H, W, steps)
    step = torch.from_numpy(np.float32(steps.color_step) * _color_multipliers(qq.qscales, steps)).double()[:, None]
    lo = torch.tensor(grid.color_lo, dtype=torch.float64)
    x = ((t.colors.double() - lo) / step).clamp(min=0)
    fl = torch.floor(x); frac = x - fl
    pin = torch.zeros_like(x, dtype=torch.bool); pin[x.argmin(0), torch.arange(3)] = True
    V = torch.logit(((frac - G) / (Z - G)).clamp(1e-4, 1 - 1e-4)).float().requires_grad_()
    opt = torch.optim.Adam([V], lr=lr)
    L0 = None
    for k in range(iters):
        h = torch.where(pin, 0.0, (torch.sigmoid(V) * (Z - G) + G).clamp(0, 1))
        colors = (lo + step * (fl + h.double())).float()
        grads, loss, sse = loss_and_grad(Gaussians(t.means, t.scales, t.rotations, colors), wins, H, W, 0.9, rf, True)
        L0 = L0 or loss
        opt.zero_grad()
        colors.backward(grads.colors, retain_graph=True)
        if k >= warm * iters:
            beta = 20 - 18 * (k - warm * iters) / ((1 - warm) * iters)
            (lam_rel * L0 * (1 - (2 * h - 1).abs() ** beta).mean()).backward()
        opt.step()
    h = (torch.sigmoid(V) * (Z - G) + G).clamp(0, 1)
    qh = torch.where(pin, fl, fl + (h.double() >= 0.5).double())
    return Gaussians(t.means, t.scales, t.rotations, (lo + step * qh).float())
pairs = [(name, cr) for name in sys.argv[2:] for cr in map(float, sys.argv[1].split(','))]
for f in saved_fits(os.environ['DATA'], os.environ['FITS'], pairs, 1000):
    score = lambda r: round(f.score(r), 3)
    _, (r2, c2), (r3, c3) = f.records()
    tuned = api._tune(decode_record(r2, UNLIMITED)[0], f.pixels, f.config, 'cpu', ("colors",))
    row = {"image": f.name, "cr": f.cr, "fit": round(f.stats["psnr_last_step"], 3), "budget": f.budget,
           "shipped": (score(r3), len(r3)),
           "nearest_same_step": (score(encode_record(tuned, f.meta, c2)), len(encode_record(tuned, f.meta, c2)))}
    for iters, lam, lr in ((50, 1.0, 0.1), (50, 1.0, 0.2)):
        t0 = time.time()
        a = ada(tuned, f.meta, c2, f.pixels, iters, lam, lr)
        ra = encode_record(a, f.meta, c2)
        row[f"ada{iters}-{lam}-{lr}"] = (score(ra), len(ra), round(time.time() - t0, 1))
    print(json.dumps(row), flush=True)
