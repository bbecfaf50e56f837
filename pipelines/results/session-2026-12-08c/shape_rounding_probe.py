"""Probe: learned rounding of the log-scales and rotations after the shape fine-tune, then the shipped colour
fine-tune + colour rounding; against the shipped path on the same fit (the record path without pruning).

    PHOTOS=../shared/data/photos-768 FITS=DIR python shape_rounding_probe.py Bamboo.png:50,God-Rays.png:50 \
        OUT.jsonl ITERS COLORS_LR [joint]

ITERS: iterations of each rounding; COLORS_LR: Adam learning rate of the colours fitted along (0: held); joint:
scales and rotations rounded at once (rotation bits from the nearest scales). PSNR: of the clamped float render
(the fit's loss pass). This is the probe as it was run, with its own copy of the rounding loop; the encoder's
version is ``fitting.rounding.round_shapes`` (the sequential mode). Its ``shipped`` column is the encoder it ran
against (commit 99bd875, nearest rounding of the shapes); against later code that column includes the rounding.
"""
import json, math, os, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # pipelines/
import numpy as np, torch
from _photos import budget_fit
from smartsplat_dist import api
from smartsplat_dist.codec import CodecConfig
from smartsplat_dist.codec.record import encode_record, decode_record, snap_means, _steps
from smartsplat_dist.codec.grid import quantize, rotation_bits
from smartsplat_dist.codec.quantize import canonicalize
from smartsplat_dist.codec.limits import UNLIMITED
from smartsplat_dist.config import EncodeConfig
from smartsplat_dist.fitting.optimize import image_loss
from smartsplat_dist.fitting.rounding import _h, GAMMA, ZETA, REG, WARMUP, LR
from smartsplat_dist.io.images import load_image
from smartsplat_dist.model import Gaussians as G

ITERS = int(sys.argv[3]) if len(sys.argv) > 3 else 50
FREE_COLORS = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0  # lr of colours moving along (0: fixed)
JOINT = len(sys.argv) > 5 and sys.argv[5] == "joint"

def adaround(x, pin, decode, lf, iters, colors=None):
    floor = torch.floor(x)
    v = torch.logit(((x - floor - GAMMA) / (ZETA - GAMMA)).clamp(1e-4, 1 - 1e-4)).float().requires_grad_()
    params = [{"params": [v], "lr": LR}]
    c = None
    if colors is not None and FREE_COLORS > 0:
        c = colors.clone().requires_grad_()
        params.append({"params": [c], "lr": FREE_COLORS})
    opt = torch.optim.Adam(params)
    loss0 = None
    for k in range(iters):
        h = torch.where(pin, 0.0, _h(v))
        g = decode(floor + h.double(), c)
        grads, loss, _ = lf(G(*(t.detach() for t in g.tensors())))
        loss0 = loss if loss0 is None else loss0
        opt.zero_grad(set_to_none=True)
        total = sum((t * gt).sum() for t, gt in zip(g.tensors(), grads.tensors()) if t.requires_grad)
        if k >= WARMUP * iters:
            beta = 20.0 - 18.0 * (k - WARMUP * iters) / ((1.0 - WARMUP) * iters)
            total = total + REG * loss0 * (1.0 - (2.0 * h - 1.0).abs() ** beta).mean()
        total.backward()
        opt.step()
    learned = torch.where(pin, floor, floor + (_h(v.detach()).double() >= 0.5).double())
    return learned, (c.detach() if c is not None else colors)

D = Path(os.environ.get("PHOTOS", "../shared/data/photos-768"))
out = open(sys.argv[2], "a")
for spec in sys.argv[1].split(","):
    name, cr = spec.split(":"); cr = float(cr)
    px = load_image(D / name).pixels
    h, w = px.shape[:2]
    g, stats, meta, budget = budget_fit(px, cr, 1000, "cpu", os.environ.get("FITS", "fits"), name)
    config = EncodeConfig().with_overrides(cr=cr, steps=1000)
    lf = image_loss(px, config.fit, "cpu")
    ps = lambda x: 10 * math.log10(3 * h * w / lf(x)[2])
    t0 = time.time()
    rec, codec = api._encode_within_budget(g, meta, CodecConfig(), budget)
    r1, c1 = api._finetune_shapes(rec, codec, g, meta, px, config, "cpu", budget)
    r2, c2 = api._finetune_colors(r1, c1, meta, px, config, "cpu", budget)
    t_ship = time.time() - t0
    shipped = ps(decode_record(r2, UNLIMITED)[0])
    t0 = time.time()
    snapped = snap_means(g, meta, codec)
    gs = G(snapped, g.scales, g.rotations, g.colors)
    T = api._tune(gs, px, config, "cpu", ("scales", "rotations", "colors"), api.SHAPES_MIN_GAIN_DB) or gs
    steps = _steps(codec)
    q, grid = quantize(T, h, w, steps)
    sc, th = canonicalize(T.scales.detach(), T.rotations.detach())
    lo, st = float(np.float32(grid.scale_lo)), float(np.float32(steps.scale_step))
    x = ((torch.log(sc.double()) - lo) / st).clamp(min=0.0)
    pin = torch.zeros_like(x, dtype=torch.bool)
    flat = int(torch.argmin(x)); pin.view(-1)[flat] = True
    if JOINT:
        rb = torch.from_numpy(rotation_bits(q.qscales, lo, st, steps.rotation_tolerance))
        unit = torch.ldexp(torch.ones_like(th, dtype=torch.float64), rb)
        xr = th.double() * unit / math.pi
        X = torch.cat([x, xr[:, None]], 1)
        P = torch.cat([pin, (rb == 0)[:, None]], 1)
        dec = lambda L, c: G(T.means, torch.exp(lo + st * L[:, :2]).float(), (L[:, 2] * math.pi / unit).float(), T.colors if c is None else c)
        L, cols2 = adaround(X, P, dec, lf, ITERS, T.colors.detach())
        Ls = L[:, :2].clone(); Ls[:, 1] = torch.minimum(Ls[:, 1], Ls[:, 0])
        S = torch.exp(lo + st * Ls).float()
        R = (torch.remainder(L[:, 2], unit) * math.pi / unit).float()
    else:
        dec_s = lambda L, c: G(T.means, torch.exp(lo + st * L).float(), th, T.colors if c is None else c)
        Ls, cols = adaround(x, pin, dec_s, lf, ITERS, T.colors.detach())
        Ls[:, 1] = torch.minimum(Ls[:, 1], Ls[:, 0])
        S = torch.exp(lo + st * Ls).float()
        rb = torch.from_numpy(rotation_bits(Ls.long().numpy(), lo, st, steps.rotation_tolerance))
        unit = torch.ldexp(torch.ones_like(th, dtype=torch.float64), rb)
        xr = th.double() * unit / math.pi
        pin_r = (rb == 0)
        dec_r = lambda L, c: G(T.means, S, (L * math.pi / unit).float(), cols if c is None else c)
        Lr, cols2 = adaround(xr[:, None], pin_r[:, None], lambda L, c: dec_r(L[:, 0], c), lf, ITERS, cols)
        R = (torch.remainder(Lr[:, 0], unit) * math.pi / unit).float()
    Gl = G(T.means, S, R, cols2)
    near = decode_record(encode_record(T, meta, codec), UNLIMITED)[0]
    rl = encode_record(Gl, meta, codec)
    gl = decode_record(rl, UNLIMITED)[0]
    r3, c3 = api._finetune_colors(rl, codec, meta, px, config, "cpu", budget)
    t_new = time.time() - t0
    row = dict(image=name, cr=cr, iters=ITERS, joint=JOINT, free_colors=FREE_COLORS, shape_tuned=ps(T), geom_nearest=ps(near),
               geom_learned=ps(gl), bytes_nearest=len(encode_record(T, meta, codec)), bytes_learned=len(rl),
               budget=budget, shipped=shipped, shipped_bytes=len(r2), new=ps(decode_record(r3, UNLIMITED)[0]),
               new_bytes=len(r3), t_ship=t_ship, t_new=t_new)
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    out.write(json.dumps(row) + "\n"); out.flush()
