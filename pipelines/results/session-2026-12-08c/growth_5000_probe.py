"""Bamboo CR 50 at 5000 steps, N priced with other budget-mode constants (api.FIT_BYTES_GROWTH): the whole
record path without pruning, uint8 PSNR.

    FITS=DIR python growth_5000_probe.py 1.3 > OUT.jsonl
"""
import json, os, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # pipelines/
from _photos import saved_fits

for growth in [float(x) for x in sys.argv[1].split(",")]:
    for f in saved_fits(os.environ.get("PHOTOS", "../shared/data/photos-768"), os.environ.get("FITS", "fits"),
                        [("Bamboo.png", 50.0)], 5000, growth):
        (rec, _), _, (record, _) = f.records()
        print(json.dumps(dict(growth=growth, n=f.meta.n, fit=f.stats["psnr_last_step"], record0=f.score(rec),
                              record=f.score(record), bytes=len(record), budget=f.budget)), flush=True)
