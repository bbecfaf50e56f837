"""Record PSNR with the shapes' learned rounding off (0 iterations) and on (the default), same fit; the record
path without pruning, uint8 decode PSNR.

    FITS=DIR python shape_rounding_gain.py IMAGE:CR:STEPS,... OUT.jsonl

As run: ``flowers-div16k-like-crop.png:50:1000,../shared/data/photos-768/Bamboo.png:50:5000``. The crop is the
middle 768x512 of an 8x Lanczos upsample of photos-2k/flowers.png (PIL: the middle 96x64 px with an 8 px margin,
resized 8x with LANCZOS, the margin cut off).
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
out = open(sys.argv[2], "a")
default = api.SHAPE_ROUNDING_ITERS
for spec in sys.argv[1].split(","):
    path, cr, steps = spec.split(":"); cr = float(cr); steps = int(steps)
    px = load_image(Path(path)).pixels
    g, stats, meta, budget = budget_fit(px, cr, steps, "cpu", os.environ.get("FITS", "fits"), Path(path).name)
    config = EncodeConfig().with_overrides(cr=cr, steps=steps)
    row = {"image": Path(path).name, "cr": cr, "steps": steps, "psnr_unquantized": stats["psnr_last_step"], "budget": budget}
    for iters in (0, default):
        api.SHAPE_ROUNDING_ITERS = iters
        rec, codec = api._encode_within_budget(g, meta, CodecConfig(), budget)
        r1, c1 = api._finetune_shapes(rec, codec, g, meta, px, config, "cpu", budget)
        r2, c2 = api._finetune_colors(r1, c1, meta, px, config, "cpu", budget)
        row[f"psnr_{iters}"] = psnr(api.decode_image(r2, backend="cpu", limits=UNLIMITED), px)
        row[f"bytes_{iters}"] = len(r2)
    print(json.dumps(row), flush=True); out.write(json.dumps(row) + "\n"); out.flush()
