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
from _photos import saved_fits
from smartsplat_dist import api

out = open(sys.argv[2], "a")
default = api.SHAPE_ROUNDING_ITERS
for spec in sys.argv[1].split(","):
    path, cr, steps = spec.split(":")
    for f in saved_fits(Path(path).parent, os.environ.get("FITS", "fits"), [(Path(path).name, cr)], int(steps)):
        row = {"image": f.name, "cr": f.cr, "steps": int(steps), "psnr_unquantized": f.stats["psnr_last_step"],
               "budget": f.budget}
        for iters in (0, default):
            api.SHAPE_ROUNDING_ITERS = iters
            record = f.records()[-1][0]
            row[f"psnr_{iters}"], row[f"bytes_{iters}"] = f.score(record), len(record)
        print(json.dumps(row), flush=True); out.write(json.dumps(row) + "\n"); out.flush()
