"""Bamboo CR 50 at 5000 steps, N priced with other budget-mode constants (api.FIT_BYTES_GROWTH): the whole
record path without pruning, uint8 PSNR.

    FITS=DIR python growth_5000_probe.py 1.3 > OUT.jsonl
"""
import json, os, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # pipelines/
from _photos import budget_fit
from smartsplat_dist import api
from smartsplat_dist.codec import CodecConfig
from smartsplat_dist.codec.limits import UNLIMITED
from smartsplat_dist.config import EncodeConfig
from smartsplat_dist.fitting import psnr
from smartsplat_dist.io.images import load_image
px = load_image(Path(os.environ.get("PHOTOS", "../shared/data/photos-768")) / "Bamboo.png").pixels
for growth in [float(x) for x in sys.argv[1].split(",")]:
    g, stats, meta, budget = budget_fit(px, 50.0, 5000, "cpu", os.environ.get("FITS", "fits"), "Bamboo.png", growth=growth)
    config = EncodeConfig().with_overrides(cr=50.0, steps=5000)
    rec, codec = api._encode_within_budget(g, meta, CodecConfig(), budget)
    r1, c1 = api._finetune_shapes(rec, codec, g, meta, px, config, "cpu", budget)
    r2, c2 = api._finetune_colors(r1, c1, meta, px, config, "cpu", budget)
    row = dict(growth=growth, n=meta.n, fit=stats["psnr_last_step"], record0=psnr(api.decode_image(rec, backend="cpu", limits=UNLIMITED), px),
               record=psnr(api.decode_image(r2, backend="cpu", limits=UNLIMITED), px), bytes=len(r2), budget=budget)
    print(json.dumps(row), flush=True)
