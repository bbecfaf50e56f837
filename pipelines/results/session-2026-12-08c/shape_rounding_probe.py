"""Probe: learned rounding of the log-scales and rotations after the shape fine-tune, then the shipped colour
fine-tune + colour rounding; against the shipped path on the same fit (the record path without pruning).

    PHOTOS=../shared/data/photos-768 FITS=DIR python shape_rounding_probe.py Bamboo.png:50,God-Rays.png:50 \\
        OUT.jsonl ITERS COLORS_LR [joint]

ITERS: iterations of each rounding; COLORS_LR: Adam learning rate of the colours fitted along (0: held); joint:
scales and rotations rounded at once (rotation bits from the nearest scales); else the encoder's
``fitting.rounding.round_shapes`` (scales, then rotations). PSNR: of the clamped float render (the fit's loss
pass). Its ``shipped`` column is the encoder it runs against: as run (shape-rounding-probe.jsonl) commit 99bd875,
nearest rounding of the shapes, with the rounding loop then a copy of what is now ``learn_rounding``; against
later code that column includes the shapes' rounding (shape-rounding-100-iters.jsonl: 100 iterations against the
encoder's 50).
"""
import json, math, os, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # pipelines/
import torch
from _photos import saved_fits
from smartsplat_dist import api
from smartsplat_dist.codec.record import _steps, decode_record, encode_record, shape_grid, snap_means
from smartsplat_dist.codec.grid import quantize, rotation_bits
from smartsplat_dist.codec.quantize import canonicalize
from smartsplat_dist.codec.limits import UNLIMITED
from smartsplat_dist.fitting.optimize import image_loss
from smartsplat_dist.fitting.rounding import learn_rounding, round_shapes
from smartsplat_dist.model import Gaussians as G

ITERS = int(sys.argv[3]) if len(sys.argv) > 3 else 50
FREE_COLORS = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0  # lr of colours moving along (0: fixed)
JOINT = len(sys.argv) > 5 and sys.argv[5] == "joint"


def joint_rounding(T, meta, codec, lf):
    """Scales and rotations rounded at once, rotation bits from the nearest-rounded scales."""
    lo, st, tol = shape_grid(T, meta, codec)
    q, _ = quantize(T, meta.height, meta.width, _steps(codec))
    sc, th = canonicalize(T.scales.detach(), T.rotations.detach())
    x = ((torch.log(sc.double()) - lo) / st).clamp(min=0.0)
    pin = torch.zeros_like(x, dtype=torch.bool)
    pin.view(-1)[int(torch.argmin(x))] = True
    rb = torch.from_numpy(rotation_bits(q.qscales, lo, st, tol))
    unit = torch.ldexp(torch.ones_like(th, dtype=torch.float64), rb)
    X = torch.cat([x, (th.double() * unit / math.pi)[:, None]], 1)
    P = torch.cat([pin, (rb == 0)[:, None]], 1)
    dec = lambda L, c: G(T.means, torch.exp(lo + st * L[:, :2]).float(), (L[:, 2] * math.pi / unit).float(), c)  # noqa: E731
    L, colors = learn_rounding(X, P, dec, lf, ITERS, T.colors.detach(), FREE_COLORS)
    Ls = L[:, :2].clone()
    Ls[:, 1] = torch.minimum(Ls[:, 1], Ls[:, 0])
    return G(T.means, torch.exp(lo + st * Ls).float(), (torch.remainder(L[:, 2], unit) * math.pi / unit).float(), colors)


pairs = [spec.split(":") for spec in sys.argv[1].split(",")]
out = open(sys.argv[2], "a")
for f in saved_fits(os.environ.get("PHOTOS", "../shared/data/photos-768"), os.environ.get("FITS", "fits"), pairs, 1000):
    ps, lf = f.loss_psnr, image_loss(f.pixels, f.config.fit, "cpu")
    t0 = time.time()
    (rec, codec), _, (r2, _) = f.records()
    t_ship = time.time() - t0
    t0 = time.time()
    gs = G(snap_means(f.g, f.meta, codec), f.g.scales, f.g.rotations, f.g.colors)
    T = api._tune(gs, f.pixels, f.config, "cpu", ("scales", "rotations", "colors"), api.SHAPES_MIN_GAIN_DB) or gs
    Gl = joint_rounding(T, f.meta, codec, lf) if JOINT else \
        round_shapes(T, *shape_grid(T, f.meta, codec), lf, ITERS, FREE_COLORS)[0]
    near = decode_record(encode_record(T, f.meta, codec), UNLIMITED)[0]
    rl = encode_record(Gl, f.meta, codec)
    r3, _ = api._finetune_colors(rl, codec, f.meta, f.pixels, f.config, "cpu", f.budget)
    t_new = time.time() - t0
    row = dict(image=f.name, cr=f.cr, iters=ITERS, joint=JOINT, free_colors=FREE_COLORS, shape_tuned=ps(T),
               geom_nearest=ps(near), geom_learned=ps(decode_record(rl, UNLIMITED)[0]),
               bytes_nearest=len(encode_record(T, f.meta, codec)), bytes_learned=len(rl), budget=f.budget,
               shipped=ps(decode_record(r2, UNLIMITED)[0]), shipped_bytes=len(r2),
               new=ps(decode_record(r3, UNLIMITED)[0]), new_bytes=len(r3), t_ship=t_ship, t_new=t_new)
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    out.write(json.dumps(row) + "\n"); out.flush()
