"""Where the record's remaining loss sits: float fit -> snapped means + shape tune -> geometry rounded -> colours.

    PHOTOS=../shared/data/photos-768 FITS=DIR python geometry_gap.py Bamboo.png:50,Snow-Trees.png:50 OUT.jsonl [STEPS]

PSNR of the clamped float render (the fit's loss pass) at each stage; STEPS: the fit's (default 1000). As run:
the two photos at 1000 steps against commit 99bd875 (``record``: its encoder, before the shapes' learned rounding;
geometry-gap.jsonl), and Bamboo.png:50 at 5000 steps against the encoder with it (geometry-gap-5000.jsonl).
"""
import json, os, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # pipelines/
from _photos import saved_fits
from smartsplat_dist import api
from smartsplat_dist.codec.record import encode_record, decode_record, snap_means
from smartsplat_dist.codec.limits import UNLIMITED
from smartsplat_dist.model import Gaussians as G

pairs = [spec.split(":") for spec in sys.argv[1].split(",")]
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
out = open(sys.argv[2], "a")
for f in saved_fits(os.environ.get("PHOTOS", "../shared/data/photos-768"), os.environ.get("FITS", "fits"), pairs, steps):
    (rec, codec), _, (r2, _) = f.records()
    ps = f.loss_psnr
    gs = G(snap_means(f.g, f.meta, codec), f.g.scales, f.g.rotations, f.g.colors)
    T = api._tune(gs, f.pixels, f.config, "cpu", ("scales", "rotations", "colors")) or gs
    T2 = api._tune(T, f.pixels, f.config, "cpu", ("colors",)) or T
    Q1, _ = decode_record(encode_record(T, f.meta, codec), UNLIMITED)
    C1 = api._tune(Q1, f.pixels, f.config, "cpu", ("colors",)) or Q1
    row = dict(image=f.name, cr=f.cr, fit=ps(f.g), snapped=ps(gs), shape_tuned=ps(T), shape_tuned_plus_colors=ps(T2),
               geom_rounded=ps(Q1), geom_rounded_color_tuned_float=ps(C1),
               record0=ps(decode_record(rec, UNLIMITED)[0]), record=ps(decode_record(r2, UNLIMITED)[0]))
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    out.write(json.dumps(row) + "\n"); out.flush()
