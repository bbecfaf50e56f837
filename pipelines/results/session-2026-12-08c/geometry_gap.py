"""Where the record's remaining loss sits: float fit -> snapped means + shape tune -> geometry rounded -> colours.

    PHOTOS=../shared/data/photos-768 FITS=DIR python geometry_gap.py Bamboo.png:50,Snow-Trees.png:50 OUT.jsonl

PSNR of the clamped float render (the fit's loss pass) at each stage; as run against commit 99bd875
(``record``: its encoder, before the shapes' learned rounding).
"""
import json, math, os, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # pipelines/
import numpy as np
from _photos import budget_fit
from smartsplat_dist import api
from smartsplat_dist.codec import CodecConfig
from smartsplat_dist.codec.record import encode_record, decode_record, snap_means
from smartsplat_dist.codec.limits import UNLIMITED
from smartsplat_dist.config import EncodeConfig
from smartsplat_dist.fitting.optimize import image_loss
from smartsplat_dist.io.images import load_image
from smartsplat_dist.model import Gaussians as G

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
    rec, codec = api._encode_within_budget(g, meta, CodecConfig(), budget)
    snapped = snap_means(g, meta, codec)
    gs = G(snapped, g.scales, g.rotations, g.colors)
    T = api._tune(gs, px, config, "cpu", ("scales", "rotations", "colors"))
    T = T if T is not None else gs
    T2 = api._tune(T, px, config, "cpu", ("colors",)) or T
    Q1, _ = decode_record(encode_record(T, meta, codec), UNLIMITED)
    C1 = api._tune(Q1, px, config, "cpu", ("colors",)) or Q1
    r1, c1 = api._finetune_shapes(rec, codec, g, meta, px, config, "cpu", budget)
    r2, c2 = api._finetune_colors(r1, c1, meta, px, config, "cpu", budget)
    row = dict(image=name, cr=cr, fit=ps(g), snapped=ps(gs), shape_tuned=ps(T), shape_tuned_plus_colors=ps(T2),
               geom_rounded=ps(Q1), geom_rounded_color_tuned_float=ps(C1),
               record0=ps(decode_record(rec, UNLIMITED)[0]), record=ps(decode_record(r2, UNLIMITED)[0]))
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    out.write(json.dumps(row) + "\n"); out.flush()
